"""Tests for internet_tf/data/convert.py: COCO -> VOC files (images linked or re-encoded,
boxes rounded to VOC's integer pixels, skips counted) and VOC -> COCO back."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from internet_tf.data.coco import CocoIndex, DatasetError
from internet_tf.data.convert import coco_to_voc, voc_to_coco
from internet_tf.data.voc import parse_annotation, split_ids

CATEGORIES = [{"id": 7, "name": "lamp"}, {"id": 3, "name": "cup"}]


def coco_split(make_dataset, file_names=("a.png", "b.jpg", "c.png", "gone.jpg")):
    """Four images (PNG, JPEG, PNG without boxes, one missing) and their boxes."""
    images = [{"id": 10 + i, "width": 40, "height": 30, "file": name,
               "fmt": "JPEG" if name.endswith("jpg") else "PNG", "write": name != "gone.jpg"}
              for i, name in enumerate(file_names)]
    annotations = [
        {"image_id": 10, "category_id": 7, "bbox": [0, 0, 10, 5], "iscrowd": 0},
        {"image_id": 10, "category_id": 3, "bbox": [12, 7, 9, 13], "iscrowd": 0, "difficult": 1},
        {"image_id": 11, "category_id": 3, "bbox": [0.4, 0.5, 10.2, 3.99], "iscrowd": 0},
        {"image_id": 11, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 1},
        {"image_id": 11, "category_id": 99, "bbox": [1, 1, 5, 5], "iscrowd": 0},
        {"image_id": 11, "category_id": 7, "bbox": [40, 1, 5, 5], "iscrowd": 0},
        {"image_id": 13, "category_id": 7, "bbox": [1, 1, 5, 5], "iscrowd": 0},
    ]
    return make_dataset(images, annotations, CATEGORIES)


def test_coco_to_voc_layout_images_and_boxes(make_dataset, tmp_path):
    ann_file, image_dir = coco_split(make_dataset)
    root = str(tmp_path / "voc")
    result = coco_to_voc(ann_file, image_dir, root, "train")
    assert (result.images, result.objects, result.linked + result.copied, result.reencoded) == (3, 3, 1, 2)
    assert dict(result.skips) == {"missing_image_file": 1, "crowd_annotation": 1,
                                  "unknown_category": 1, "box_outside_image": 1}
    assert split_ids(root, "train") == ["a", "b", "c"]
    jpeg = os.path.join(root, "JPEGImages", "b.jpg")
    assert open(jpeg, "rb").read() == open(os.path.join(image_dir, "b.jpg"), "rb").read()
    png_as_jpeg = os.path.join(root, "JPEGImages", "a.jpg")
    with Image.open(png_as_jpeg) as im:
        assert (im.format, im.size) == ("JPEG", (40, 30))
        # quality 95 without chroma subsampling: close to the PNG's pixels.
        diff = np.abs(np.asarray(im, np.float32) - np.asarray(Image.open(os.path.join(image_dir, "a.png")), np.float32))
        assert diff.mean() < 8
    a = parse_annotation(os.path.join(root, "Annotations", "a.xml"))
    assert a == {"filename": "a.jpg", "size": (40, 30), "objects": [
        {"name": "lamp", "box": (1, 1, 10, 5), "difficult": 0},
        {"name": "cup", "box": (13, 8, 21, 20), "difficult": 1}]}
    b = parse_annotation(os.path.join(root, "Annotations", "b.xml"))
    assert b["objects"] == [{"name": "cup", "box": (1, 2, 11, 4), "difficult": 0}]  # rounded
    assert parse_annotation(os.path.join(root, "Annotations", "c.xml"))["objects"] == []


def test_round_trip_coco_voc_coco_keeps_boxes_and_classes(make_dataset, tmp_path):
    ann_file, image_dir = coco_split(make_dataset)
    root = str(tmp_path / "voc")
    coco_to_voc(ann_file, image_dir, root, "train")
    out = str(tmp_path / "back" / "train.json")
    back = voc_to_coco([root], "train", out)
    data = json.load(open(out))
    assert data == json.loads(json.dumps(back.data)) and back.classes == ["cup", "lamp"]
    names = {c["id"]: c["name"] for c in data["categories"]}
    stems = {img["id"]: img["voc_id"] for img in data["images"]}
    got = sorted((stems[a["image_id"]], names[a["category_id"]], a["bbox"], a["difficult"])
                 for a in data["annotations"])
    assert got == [("a", "cup", [12, 7, 9, 13], 1), ("a", "lamp", [0, 0, 10, 5], 0),
                   ("b", "cup", [0, 1, 11, 3], 0)]  # b's edges rounded (0.4, 0.5, 10.6, 4.49)
    index = CocoIndex.from_files(out, "/nonexistent", training=False)  # absolute file names
    assert len(index) == 3 and not index.skips


def test_clashing_names_are_an_error(make_dataset, tmp_path):
    ann_file, image_dir = coco_split(make_dataset, ("x.png", "x.jpg", "c.png", "gone.jpg"))
    with pytest.raises(DatasetError, match=r"'x\.png' and 'x\.jpg'.*'x'"):
        coco_to_voc(ann_file, image_dir, str(tmp_path / "voc"), "train")
    ann_file, image_dir = coco_split(make_dataset)
    root = str(tmp_path / "voc2")
    coco_to_voc(ann_file, image_dir, root, "train")
    coco_to_voc(ann_file, image_dir, root, "train")  # the same split again: replaced
    with pytest.raises(DatasetError, match="already used by split 'train'"):
        coco_to_voc(ann_file, image_dir, root, "val")
    coco_to_voc(ann_file, image_dir, root, "val", prefix="val_")
    assert split_ids(root, "val") == ["val_a", "val_b", "val_c"]


def test_category_names(make_dataset, tmp_path):
    ann_file, image_dir = make_dataset([{"id": 1, "width": 9, "height": 9}], [],
                                       [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}])
    with pytest.raises(DatasetError, match=r"names \['a'\] repeat"):
        coco_to_voc(ann_file, image_dir, str(tmp_path / "voc"), "train")
    ann_file, image_dir = make_dataset([{"id": 1, "width": 9, "height": 9}], [],
                                       [{"id": 1, "name": " "}])
    with pytest.raises(DatasetError, match="category 1 has an empty name"):
        coco_to_voc(ann_file, image_dir, str(tmp_path / "voc"), "train")
    # COCO's names with a space ("traffic light") are fine as VOC names and come back.
    ann_file, image_dir = make_dataset([{"id": 1, "width": 9, "height": 9}],
                                       [{"image_id": 1, "category_id": 5, "bbox": [1, 1, 3, 3]}],
                                       [{"id": 5, "name": "traffic light"}])
    coco_to_voc(ann_file, image_dir, str(tmp_path / "voc"), "train")
    back = voc_to_coco([str(tmp_path / "voc")], "train", str(tmp_path / "back.json"))
    assert back.classes == ["traffic light"] and back.data["annotations"][0]["bbox"] == [1, 1, 3, 3]
