"""internet-convert end to end: a COCO split (JPEG and PNG images, non-contiguous category
ids, a non-integral box) to VOC and back gives the same boxes and classes; a bad input exits
with a message naming the path."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

CATEGORIES = [{"id": 17, "name": "lamp"}, {"id": 2, "name": "cup"}]
BOXES = {  # image id -> [(category id, COCO bbox)]
    1: [(17, [3, 4, 20, 10]), (2, [0, 0, 64, 48])],
    2: [(2, [10.25, 5.5, 7.5, 12.0])],  # VOC is integral: edges 10.25, 5.5, 17.75, 17.5 round
}


def run(*args):
    cmd = [sys.executable, "-m", "internet_tf.cli.convert", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_coco_to_voc_and_back(tmp_path):
    images_dir = tmp_path / "imgs"
    images_dir.mkdir()
    rng = np.random.default_rng(0)
    images = []
    for image_id, name in ((1, "one.jpg"), (2, "two.png")):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(images_dir / name)
        images.append({"id": image_id, "file_name": name, "width": 64, "height": 48})
    annotations = [{"id": len(images) * 10 + i, "image_id": image_id, "category_id": cat, "bbox": bbox}
                   for image_id, boxes in BOXES.items() for i, (cat, bbox) in enumerate(boxes)]
    source = tmp_path / "instances.json"
    source.write_text(json.dumps({"images": images, "annotations": annotations,
                                  "categories": CATEGORIES}))
    root, back = str(tmp_path / "VOC"), str(tmp_path / "back.json")
    proc = run("--to", "voc", "--annotations", str(source), "--images", str(images_dir),
               "--out", root, "--split", "trainval")
    assert proc.returncode == 0, proc.stderr
    assert "2 images (1 linked, 0 copied, 1 re-encoded as JPEG) with 3 boxes" in proc.stdout
    assert sorted(os.listdir(os.path.join(root, "JPEGImages"))) == ["one.jpg", "two.jpg"]
    proc = run("--to", "coco", "--voc_roots", root, "--split", "trainval", "--out", back)
    assert proc.returncode == 0, proc.stderr
    data = json.load(open(back))
    names = {c["id"]: c["name"] for c in data["categories"]}
    stems = {img["id"]: img["voc_id"] for img in data["images"]}
    got = sorted((stems[a["image_id"]], names[a["category_id"]], a["bbox"]) for a in data["annotations"])
    assert got == [("one", "cup", [0, 0, 64, 48]), ("one", "lamp", [3, 4, 20, 10]),
                   ("two", "cup", [10, 6, 8, 12])]
    assert all(os.path.isfile(img["file_name"]) for img in data["images"])

    proc = run("--to", "coco", "--voc_roots", str(tmp_path / "nowhere"), "--split", "trainval",
               "--out", back)
    assert proc.returncode == 2 and "nowhere" in proc.stderr
