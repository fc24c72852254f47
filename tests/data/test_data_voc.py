"""Tests for internet_tf/data/voc.py: XML parsing, 1-based coordinates, difficult, several
roots, classes, and every bad-input case (an error naming the path, or a counted skip)."""
import logging
import os

import numpy as np
import pytest
from voc_files import write_root, xml

from internet_tf.data.coco import DatasetError
from internet_tf.data.voc import (VOC_CLASSES, annotation_xml, found_classes, load_voc,
                                  parse_annotation, read_voc, voc_to_xywh, xywh_to_voc)


def test_parse_one_based_inclusive_and_difficult(tmp_path):
    root = write_root(tmp_path / "VOC", {"trainval": ["000005"]}, {"000005": xml(objects=[
        ("dog", 1, 1, 10, 5), ("cat", 3, 4, 3, 4, 1), ("dog", 20.5, 2, 40, 30, 0)])})
    voc = read_voc([root], "trainval", VOC_CLASSES)
    assert voc.data["categories"][11] == {"id": 12, "name": "dog", "supercategory": "voc"}
    assert [c["name"] for c in voc.data["categories"]] == list(VOC_CLASSES)
    (image,) = voc.data["images"]
    assert image == {"id": 1, "file_name": os.path.join(root, "JPEGImages", "000005.jpg"),
                     "width": 40, "height": 30, "voc_id": "000005"}
    assert os.path.isabs(image["file_name"])
    anns = voc.data["annotations"]
    # (1, 1)-(10, 5) inclusive covers pixels 0..9 x 0..4: [0, 0, 10, 5]; a one-pixel box
    # (3, 4)-(3, 4) is [2, 3, 1, 1], not empty.
    assert [a["bbox"] for a in anns] == [[0, 0, 10, 5], [2, 3, 1, 1], [19.5, 1, 20.5, 29]]
    assert [a["category_id"] for a in anns] == [12, 8, 12]
    assert [a["difficult"] for a in anns] == [0, 1, 0]
    assert [a["area"] for a in anns] == [50, 1, 20.5 * 29] and all(a["iscrowd"] == 0 for a in anns)
    assert not voc.skips and not voc.notes


def test_training_index_drops_difficult_evaluation_keeps_it(tmp_path):
    root = write_root(tmp_path / "VOC", {"trainval": ["a"]}, {"a": xml(objects=[
        ("dog", 1, 1, 10, 5), ("cat", 3, 4, 8, 9, 1)])})
    train = load_voc([root], "trainval", VOC_CLASSES, training=True, drop_difficult=True)
    assert dict(train.skips) == {"difficult_object": 1}
    np.testing.assert_array_equal(train.records[0]["boxes"], [[0, 0, 5, 10]])  # yxyx
    np.testing.assert_array_equal(train.records[0]["classes"], [12])
    both = load_voc([root], "trainval", VOC_CLASSES, training=True, drop_difficult=False)
    assert not both.skips and len(both.records[0]["classes"]) == 2
    evaluation = load_voc([root], "trainval", VOC_CLASSES, training=False)
    gt = evaluation.coco.loadAnns(evaluation.coco.getAnnIds())
    assert sorted((a["category_id"], a["difficult"]) for a in gt) == [(8, 1), (12, 0)]
    assert evaluation.coco.imgs[1]["voc_id"] == "a"


def test_missing_size_is_read_from_the_image(tmp_path):
    root = write_root(tmp_path / "VOC", {"train": ["a", "b"]},
                      {"a": xml(size=None, objects=[("cat", 1, 1, 5, 5)]),
                       "b": xml(size=(0, 30), objects=[("cat", 1, 1, 5, 5)])},
                      images={"a": (52, 17), "b": (40, 30)})
    voc = read_voc([root], "train", VOC_CLASSES)
    assert [(i["width"], i["height"]) for i in voc.data["images"]] == [(52, 17), (40, 30)]
    assert dict(voc.notes) == {"size_from_image": 2} and not voc.skips
    index = load_voc([root], "train", VOC_CLASSES, training=True)
    assert not index.skips and len(index) == 2


def test_several_roots_sequential_ids_and_evaluation_split_where_present(tmp_path):
    r07 = write_root(tmp_path / "VOC2007", {"trainval": ["000005", "000007"], "test": ["000001"]},
                     {k: xml(objects=[("car", 2, 2, 9, 9)]) for k in ("000005", "000007", "000001")})
    r12 = write_root(tmp_path / "VOC2012", {"trainval": ["2008_000002"]},
                     {"2008_000002": xml(objects=[("bus", 1, 1, 4, 4)])}, seed=1)
    train = read_voc([r07, r12], "trainval", VOC_CLASSES)
    assert [(i["id"], i["voc_id"]) for i in train.data["images"]] == [
        (1, "000005"), (2, "000007"), (3, "2008_000002")]
    assert train.data["images"][2]["file_name"].startswith(r12)
    # The training split must be in every root; the evaluation split is read where it is.
    with pytest.raises(DatasetError, match=r"VOC2012.*test\.txt"):
        read_voc([r07, r12], "test", VOC_CLASSES)
    test = read_voc([r07, r12], "test", VOC_CLASSES, require_all=False)
    assert [i["voc_id"] for i in test.data["images"]] == ["000001"]
    with pytest.raises(DatasetError, match=r"val\.txt"):
        read_voc([r07, r12], "val", VOC_CLASSES, require_all=False)


def test_classes_voc_versus_found(tmp_path, caplog):
    root = write_root(tmp_path / "VOC", {"train": ["a"], "val": ["b"]},
                      {"a": xml(objects=[("zebra", 1, 1, 5, 5), ("cat", 2, 2, 6, 6)]),
                       "b": xml(objects=[("okapi", 1, 1, 5, 5), ("zebra", 2, 2, 6, 6)])})
    with caplog.at_level(logging.WARNING):
        voc = read_voc([root], "train", VOC_CLASSES)
    assert dict(voc.skips) == {"unknown_category": 1}
    assert "a.xml" in caplog.text and "zebra" in caplog.text
    found = read_voc([root], "train")
    assert found.classes == ["cat", "zebra"] == found_classes([root], "train")
    assert [c["name"] for c in found.data["categories"]] == ["cat", "zebra"]
    assert [a["category_id"] for a in found.data["annotations"]] == [2, 1]
    val = read_voc([root], "val", found.classes)  # val takes the training list
    assert dict(val.skips) == {"unknown_category": 1}
    assert [a["category_id"] for a in val.data["annotations"]] == [2]


def test_missing_root_folder_or_split_file_is_an_error_naming_the_path(tmp_path):
    with pytest.raises(DatasetError, match="nowhere"):
        read_voc([str(tmp_path / "nowhere")], "train")
    root = write_root(tmp_path / "VOC", {"train": ["a"]}, {"a": xml()})
    with pytest.raises(DatasetError, match=r"ImageSets/Main/trainval\.txt"):
        read_voc([root], "trainval")
    os.rename(os.path.join(root, "Annotations"), os.path.join(root, "Labels"))
    with pytest.raises(DatasetError, match="Annotations"):
        read_voc([root], "train")


def test_bad_files_and_objects_are_counted_skips_naming_the_file(tmp_path, caplog):
    good = ("cat", 2, 2, 9, 9)
    annotations = {
        "good": xml(objects=[good]),
        "noimage": xml(objects=[good]),
        "noxml": None,
        "broken": "<annotation><object><name>cat</nam></object>",
        "wrongroot": "<html><body/></html>",
        "boxes": xml(objects=[good, ("cat", 9, 2, 3, 9), ("cat", 41, 2, 45, 9)], raw_objects=(
            "<object><name>cat</name></object>"
            "<object><name>cat</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>4</xmax>"
            "<ymax>4</ymax></bndbox></object>"
            "<object><name>cat</name><difficult>maybe</difficult><bndbox><xmin>1</xmin>"
            "<ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object>"
            "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax><ymax>4</ymax>"
            "</bndbox></object>")),
        "nosize_noimage": xml(size=None, objects=[good]),
    }
    ids = list(annotations) + ["good"]
    root = write_root(tmp_path / "VOC", {"train": ids}, annotations,
                      images={"noimage": None, "nosize_noimage": None, "noxml": None})
    with caplog.at_level(logging.WARNING):
        index = load_voc([root], "train", VOC_CLASSES, training=True)
    assert dict(index.skips) == {
        "missing_annotation_file": 1, "malformed_xml": 2, "duplicate_image": 1,
        "missing_image_file": 2, "malformed_bbox": 2, "malformed_object": 1,
        "unknown_category": 1, "zero_area_box": 1, "box_outside_image": 1}
    for name in ("noxml.xml", "broken.xml", "wrongroot.xml", "boxes.xml", "nosize_noimage.jpg"):
        assert name in caplog.text
    assert [r["path"].endswith(n) for r, n in zip(index.records, ("good.jpg", "boxes.jpg"))] == [True] * 2
    assert [len(r["classes"]) for r in index.records] == [1, 1]
    report = index.report()
    assert "kept 2 of 8 images" in report and "2 images (malformed xml)" in report


def test_no_usable_image_is_an_error_naming_the_split(tmp_path):
    root = write_root(tmp_path / "VOC", {"train": ["a"]}, {"a": "<annotation"})
    with pytest.raises(DatasetError, match=r"No usable image in \"VOC split 'train'.*malformed xml"):
        load_voc([root], "train", VOC_CLASSES, training=True)


def test_image_named_by_the_xml_filename(tmp_path):
    root = write_root(tmp_path / "VOC", {"train": ["a"]}, {"a": xml("IMG_1.JPG", objects=[("cat", 1, 1, 5, 5)])},
                      images={"a": None})
    write_root(tmp_path / "VOC", {}, {"IMG_1": None})  # writes JPEGImages/IMG_1.jpg
    os.rename(os.path.join(root, "JPEGImages", "IMG_1.jpg"), os.path.join(root, "JPEGImages", "IMG_1.JPG"))
    (image,) = read_voc([root], "train", VOC_CLASSES).data["images"]
    assert image["file_name"].endswith("IMG_1.JPG") and image["voc_id"] == "a"


def test_box_conversions_round_trip_and_rounding():
    assert voc_to_xywh(1, 1, 10, 5) == [0, 0, 10, 5]
    assert xywh_to_voc([0, 0, 10, 5], 40, 30) == (1, 1, 10, 5)
    for bbox in ([3, 4, 1, 1], [0, 0, 40, 30], [12, 7, 9, 13]):  # integral: exact both ways
        assert voc_to_xywh(*xywh_to_voc(bbox, 40, 30)) == bbox
    # Edges round to the nearest pixel boundary, halves up: x0 0.4 -> 0, x1 10.6 -> 11,
    # y0 0.5 -> 1, y1 4.49 -> 4.
    assert xywh_to_voc([0.4, 0.5, 10.2, 3.99], 40, 30) == (1, 2, 11, 4)
    assert xywh_to_voc([2.2, 3.6, 0.2, 0.2], 40, 30) == (3, 4, 3, 4)  # sub-pixel: 1 pixel
    assert xywh_to_voc([-5, 28, 10, 10], 40, 30) == (1, 29, 5, 30)   # clipped to the image
    assert xywh_to_voc([40, 0, 5, 5], 40, 30) is None                # outside
    assert xywh_to_voc([1, 1, 0, 5], 40, 30) is None                 # no area


def test_written_xml_parses_back(tmp_path):
    path = tmp_path / "a.xml"
    path.write_bytes(annotation_xml("a.jpg", 40, 30, 3, [("cat", (1, 2, 10, 5), 0), ("dog", (3, 3, 4, 4), 1)]))
    parsed = parse_annotation(str(path))
    assert parsed == {"filename": "a.jpg", "size": (40, 30), "objects": [
        {"name": "cat", "box": (1, 2, 10, 5), "difficult": 0},
        {"name": "dog", "box": (3, 3, 4, 4), "difficult": 1}]}
