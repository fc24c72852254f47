"""Hand-written PASCAL VOC roots for the data tests (XML as the devkit lays it out, written
here as text so the reader is tested against files it did not write)."""
import os

import numpy as np
from PIL import Image


def xml(filename="x.jpg", size=(40, 30), objects=(), raw_objects=""):
    """A VOC annotation; ``objects`` = ``(name, xmin, ymin, xmax, ymax[, difficult])``,
    ``size`` None leaves ``<size>`` out; ``raw_objects`` is appended as given."""
    parts = ["<annotation>", "\t<folder>VOC2007</folder>", f"\t<filename>{filename}</filename>"]
    if size is not None:
        parts.append(f"\t<size><width>{size[0]}</width><height>{size[1]}</height>"
                     "<depth>3</depth></size>")
    for name, x0, y0, x1, y1, *flag in objects:
        difficult = f"<difficult>{flag[0]}</difficult>" if flag else ""
        parts.append(f"\t<object><name>{name}</name><pose>Left</pose><truncated>0</truncated>"
                     f"{difficult}<bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                     f"<ymax>{y1}</ymax></bndbox></object>")
    parts += [raw_objects, "</annotation>"]
    return "\n".join(parts)


def write_root(root, splits, annotations, images=None, seed=0):
    """Writes a VOC root: ``splits`` {name: [ids]}, ``annotations`` {id: xml text or None
    (no file)}, ``images`` {id: (width, height) or None (no file)}; an id missing from
    ``images`` gets a 40 x 30 JPEG. Returns the root as a string."""
    images = images or {}
    for sub in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for split, ids in splits.items():
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in ids))
    rng = np.random.default_rng(seed)
    for voc_id, text in annotations.items():
        if text is not None:
            with open(os.path.join(root, "Annotations", f"{voc_id}.xml"), "w") as f:
                f.write(text)
        size = images.get(voc_id, (40, 30))
        if size is not None:
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, "JPEGImages", f"{voc_id}.jpg"))
    return str(root)
