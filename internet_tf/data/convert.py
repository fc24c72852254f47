"""COCO <-> PASCAL VOC conversion of a whole split (Li et al. 2019, Table 5; ``internet-convert``).

``coco_to_voc`` writes a COCO-format split (json + image folder) into a VOC root laid out as
distributed: ``Annotations/<stem>.xml``, ``JPEGImages/<stem>.jpg`` and
``ImageSets/Main/<split>.txt``; ``voc_to_coco`` writes one split of one or several VOC roots
as a COCO json whose ``file_name`` entries are the images' absolute paths (the reader's
dict, ``data/voc.py``, including ``voc_id`` and ``difficult``).

Choices:

* Names: ``<stem>`` is ``prefix`` + the image file's name without its extension. Two images
  of one split with the same stem, or a stem another split file of the root already lists
  (so an earlier split's files would be overwritten), are a :class:`DatasetError`: give the
  splits distinct prefixes. Writing the same split again replaces it.
* Images: a JPEG file is hard-linked (copied when the link fails, e.g. across file systems)
  and stays byte-identical, EXIF orientation included (the annotations describe it as
  displayed, as the index expects). Any other format PIL reads (PNG, BMP, ...) is re-encoded
  as JPEG, quality 95 without chroma subsampling, after applying its EXIF orientation (so
  stored = displayed); this is lossy, so pixels differ slightly from the source.
* Boxes: VOC stores integer 1-based inclusive corners (``voc.xywh_to_voc``): edges clipped
  to the image and rounded to the nearest pixel boundary, halves up. Integral COCO boxes
  survive COCO -> VOC -> COCO exactly; others move each edge by at most half a pixel.
* Skipped and counted (:attr:`Conversion.skips`): a missing or unreadable image
  (``missing_image_file``, ``corrupt_image``: not written, not listed), and per box
  ``crowd_annotation`` (VOC has no crowd regions), ``unknown_category``, ``malformed_bbox``,
  ``zero_area_box``, ``box_outside_image``. A COCO ``difficult`` flag is kept.
"""
from __future__ import annotations

import collections
import dataclasses
import io
import os
from typing import Sequence

from absl import logging
from PIL import Image, ImageOps

from internet_tf.config import check_choice
from internet_tf.data import voc
from internet_tf.data.coco_format import DatasetError, parse_bbox, read_json
from internet_tf.files import place_atomic, write_atomic, write_json_atomic

JPEG_QUALITY = 95
_JPEG_FORMATS = ("JPEG", "MPO")


@dataclasses.dataclass
class Conversion:
    """What :func:`coco_to_voc` wrote: counts of images and boxes, how images were written,
    and the skip reasons (module docstring)."""
    root: str
    split: str
    images: int = 0
    objects: int = 0
    linked: int = 0
    copied: int = 0
    reencoded: int = 0
    skips: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def report(self) -> str:
        return (f"Wrote VOC split {self.split!r} to {self.root}: {self.images} images "
                f"({self.linked} linked, {self.copied} copied, {self.reencoded} re-encoded as "
                f"JPEG) with {self.objects} boxes. Skipped: {skip_text(self.skips)}.")


def skip_text(skips: dict) -> str:
    """``"2 crowd annotation, 1 missing image file"`` (or ``"nothing"``)."""
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(skips.items()) if n) or "nothing"


def _category_names(categories: list, origin: str) -> dict:
    names = {c["id"]: str(c["name"]).strip() for c in categories}
    for cat_id, name in names.items():
        if not name:
            raise DatasetError(f"{origin}: category {cat_id} has an empty name; VOC tells "
                               f"classes apart by name")
    repeated = [n for n, count in collections.Counter(names.values()).items() if count > 1]
    if repeated:
        raise DatasetError(f"{origin}: category names {repeated} repeat; VOC tells classes "
                           f"apart by name only")
    return names


def _stems(images: list, prefix: str, root: str, split: str, origin: str) -> list:
    stems, first = [], {}
    for img in images:
        stem = prefix + os.path.splitext(os.path.basename(img["file_name"]))[0]
        if stem in first:
            raise DatasetError(f"{origin}: images {first[stem]!r} and {img['file_name']!r} "
                               f"would both be written as {stem!r}; file names must differ")
        first[stem] = img["file_name"]
        stems.append(stem)
    sets = os.path.join(root, voc.IMAGE_SETS)
    for name in sorted(os.listdir(sets)):
        if name.endswith(".txt") and name != f"{split}.txt":
            taken = set(first) & set(voc.split_ids(root, name[:-4]))
            if taken:
                raise DatasetError(
                    f"{origin}: {len(taken)} image names (e.g. {sorted(taken)[0]!r}) are already "
                    f"used by split {name[:-4]!r} of {root}; write this split with another prefix")
    return stems


def _write_image(source: str, target: str, result: Conversion) -> int | None:
    """Writes ``source`` as the JPEG ``target`` (``files.write_atomic`` / ``place_atomic``:
    readers never see a part); returns its channel count (None: skipped)."""
    if not os.path.isfile(source):
        result.skips["missing_image_file"] += 1
        return None
    jpeg = None  # the re-encoded bytes of a non-JPEG source
    try:
        with Image.open(source) as im:
            depth = 1 if im.mode in ("1", "L", "I", "I;16", "F") else 3
            if im.format not in _JPEG_FORMATS:
                buf = io.BytesIO()
                im = ImageOps.exif_transpose(im).convert("L" if depth == 1 else "RGB")
                im.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
                jpeg = buf.getvalue()
    except Exception as e:  # PIL raises many types for a damaged file.
        logging.warning("internet-convert: skipped unreadable image %s: %s", source, e)
        result.skips["corrupt_image"] += 1
        return None
    if jpeg is not None:
        write_atomic(target, jpeg, fsync=False)
        result.reencoded += 1
    elif place_atomic(source, target) == "linked":
        result.linked += 1
    else:
        result.copied += 1
    return depth


def _voc_objects(anns: list, names: dict, width: int, height: int, skips) -> list:
    objects = []
    for ann in anns:
        box = parse_bbox(ann.get("bbox"))
        if ann.get("iscrowd", 0):
            reason = "crowd_annotation"
        elif ann["category_id"] not in names:
            reason = "unknown_category"
        elif box is None:
            reason = "malformed_bbox"
        elif box[2] <= 0 or box[3] <= 0:
            reason = "zero_area_box"
        else:
            corners = voc.xywh_to_voc(box, width, height)
            reason = "box_outside_image" if corners is None else None
        if reason:
            skips[reason] += 1
            continue
        objects.append((names[ann["category_id"]], corners, 1 if ann.get("difficult", 0) else 0))
    return objects


def coco_to_voc(annotation_file: str, image_dir: str, out_root: str, split: str, *,
                prefix: str = "") -> Conversion:
    """Writes the COCO split ``annotation_file`` (images under ``image_dir``) as split
    ``split`` of the VOC root ``out_root`` (created if needed). See the module docstring.

    Raises:
      DatasetError: an invalid COCO file, unusable category names, or clashing image names.
    """
    origin = f"Annotation file {annotation_file!r}"
    data = read_json(annotation_file)
    names = _category_names(data["categories"], origin)
    for sub in (voc.ANNOTATIONS, voc.IMAGES, voc.IMAGE_SETS):
        os.makedirs(os.path.join(out_root, sub), exist_ok=True)
    stems = _stems(data["images"], prefix, out_root, split, origin)
    anns_by_image = collections.defaultdict(list)
    for ann in data["annotations"]:
        anns_by_image[ann["image_id"]].append(ann)
    result, listed = Conversion(out_root, split), []
    for img, stem in zip(data["images"], stems):
        target = os.path.join(out_root, voc.IMAGES, f"{stem}.jpg")
        depth = _write_image(os.path.join(image_dir, img["file_name"]), target, result)
        if depth is None:
            continue
        width, height = int(img["width"]), int(img["height"])
        objects = _voc_objects(anns_by_image.get(img["id"], []), names, width, height, result.skips)
        xml = voc.annotation_xml(f"{stem}.jpg", width, height, depth, objects)
        write_atomic(os.path.join(out_root, voc.ANNOTATIONS, f"{stem}.xml"), xml, fsync=False)
        listed.append(stem)
        result.images += 1
        result.objects += len(objects)
    write_atomic(os.path.join(out_root, voc.IMAGE_SETS, f"{split}.txt"),
                 "".join(f"{stem}\n" for stem in listed), fsync=False)
    logging.info("%s", result.report())
    return result


def voc_to_coco(roots: Sequence[str], split: str, out_file: str, *,
                classes: str = "found") -> voc.VocData:
    """Writes ``split`` of the VOC ``roots`` as a COCO json (``classes``: ``"found"``, the
    names in the XML sorted, or ``"voc"``, the 20 VOC classes in their usual order)."""
    check_choice("data.voc.classes", classes)
    data = voc.read_voc(roots, split, voc.VOC_CLASSES if classes == "voc" else None)
    os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
    write_json_atomic(out_file, data.data)
    return data
