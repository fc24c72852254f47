"""Tests for internet_tf/data/coco.py: validation rules and exact skip counts."""
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO

from internet_tf.data.coco import CocoIndex, DatasetError, load_coco


def ann(image_id, bbox, category_id=1, **extra):
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, "iscrowd": 0,
            **extra}


def img(image_id, width=40, height=30, **extra):
    return {"id": image_id, "width": width, "height": height, **extra}


def build(make_dataset, images, annotations, categories=None, *, training=True, **kwargs):
    path, image_dir = make_dataset(images, annotations, categories)
    return CocoIndex.from_files(path, image_dir, training=training, **kwargs)


def test_good_dataset_records_and_label_mapping(make_dataset):
    cats = [{"id": 20, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 11, "name": "emu"}]
    index = build(make_dataset, [img(1), img(2, 50, 20)],
                  [ann(1, [2, 3, 10, 5], 20), ann(1, [0, 0, 40, 30], 7),
                   ann(2, [1.5, 2.5, 3, 4], 11)], cats)
    assert index.cat_ids == [7, 11, 20]
    assert index.label_to_cat_id == {1: 7, 2: 11, 3: 20}
    assert index.cat_id_to_label == {7: 1, 11: 2, 20: 3}
    assert index.class_names == ["background", "dog", "emu", "cat"]
    assert index.num_classes == 3
    assert not index.skips and index.num_clipped == 0
    r0, r1 = index.records
    assert (r0["image_id"], r0["height"], r0["width"]) == (1, 30, 40)
    assert r0["path"].endswith("1.png") and os.path.isfile(r0["path"])
    assert r0["boxes"].dtype == np.float32 and r0["classes"].dtype == np.int32
    np.testing.assert_array_equal(r0["boxes"], [[3, 2, 8, 12], [0, 0, 30, 40]])
    np.testing.assert_array_equal(r0["classes"], [3, 1])
    np.testing.assert_allclose(r1["boxes"], [[2.5, 1.5, 6.5, 4.5]])
    np.testing.assert_array_equal(r1["classes"], [2])
    with pytest.raises(AttributeError, match="indexed for training"):
        index.coco  # a training index keeps only its records
    evaluation = build(make_dataset, [img(1), img(2, 50, 20)], [ann(1, [2, 3, 10, 5], 20)], cats,
                       training=False)
    assert isinstance(evaluation.coco, COCO) and sorted(evaluation.coco.getImgIds()) == [1, 2]
    assert "Nothing was skipped" in index.report()


def test_missing_image_file_is_skipped(make_dataset):
    index = build(make_dataset, [img(1), img(2, write=False)],
                  [ann(1, [0, 0, 5, 5]), ann(2, [0, 0, 5, 5])], training=False)
    assert dict(index.skips) == {"missing_image_file": 1}
    assert [r["image_id"] for r in index.records] == [1]
    assert index.coco.getImgIds() == [1]  # evaluation never sees the skipped image
    assert "missing image file" in index.report() and "2.png" in index.report()


def test_corrupt_image_is_skipped(make_dataset):
    path, image_dir = make_dataset([img(1), img(2, write=False)],
                                   [ann(1, [0, 0, 5, 5]), ann(2, [0, 0, 5, 5])])
    with open(os.path.join(image_dir, "2.png"), "wb") as f:
        f.write(np.random.default_rng(0).bytes(500))
    index = CocoIndex.from_files(path, image_dir, training=True)
    assert dict(index.skips) == {"corrupt_image": 1}
    # verify_images="none" trusts the json: only missing files are skipped.
    trusting = CocoIndex.from_files(path, image_dir, training=True, verify_images="none")
    assert not trusting.skips and len(trusting) == 2


def _cut(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


@pytest.mark.parametrize("verify", ["header", "full"])
def test_truncated_jpeg_and_png_are_counted_and_named(make_dataset, verify):
    images = [img(1), img(2, 64, 64, file="2.jpg"), img(3, 64, 64), img(4, 64, 48, file="4.jpg")]
    path, image_dir = make_dataset(images, [ann(i, [0, 0, 5, 5]) for i in range(1, 5)])
    _cut(os.path.join(image_dir, "2.jpg"))
    _cut(os.path.join(image_dir, "3.png"))
    index = CocoIndex.from_files(path, image_dir, training=True, verify_images=verify)
    assert dict(index.skips) == {"corrupt_image": 2}
    assert [r["image_id"] for r in index.records] == [1, 4]
    report = index.report()
    assert "2 images (corrupt image)" in report
    assert "Corrupt image: " in report and "2.jpg" in report and "3.png" in report


def test_size_mismatch_and_unsupported_format(make_dataset, write_image):
    path, image_dir = make_dataset(
        [img(1), img(2, write=False), img(3, write=False, file="3.tif")],
        [ann(1, [0, 0, 5, 5]), ann(2, [0, 0, 5, 5]), ann(3, [0, 0, 5, 5])])
    write_image(os.path.join(image_dir, "2.png"), 41, 30)  # json says 40 x 30
    write_image(os.path.join(image_dir, "3.tif"), 40, 30, fmt="TIFF")
    index = CocoIndex.from_files(path, image_dir, training=True)
    assert dict(index.skips) == {"size_mismatch": 1, "unsupported_format": 1}
    assert len(index) == 1


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA"])
def test_grayscale_rgba_palette_images_are_fine(make_dataset, mode):
    index = build(make_dataset, [img(1, mode=mode)], [ann(1, [0, 0, 5, 5])])
    assert not index.skips and len(index) == 1


def test_image_without_annotations_training_vs_eval(make_dataset):
    images, anns = [img(1), img(2)], [ann(1, [0, 0, 5, 5])]
    train = build(make_dataset, images, anns, training=True)
    assert dict(train.skips) == {"image_without_annotations": 1}
    assert [r["image_id"] for r in train.records] == [1]
    evaluation = build(make_dataset, images, anns, training=False)
    assert not evaluation.skips
    assert [r["image_id"] for r in evaluation.records] == [1, 2]
    assert evaluation.records[1]["boxes"].shape == (0, 4)
    assert evaluation.records[1]["classes"].shape == (0,)
    assert sorted(evaluation.coco.getImgIds()) == [1, 2]


def test_zero_area_and_outside_boxes(make_dataset):
    anns = [ann(1, [0, 0, 0, 5]), ann(1, [0, 0, 5, -1]),          # zero / negative size
            ann(1, [40, 0, 5, 5]), ann(1, [0, 30, 5, 5]),          # starts at right/bottom edge
            ann(1, [-10, 0, 10, 5]), ann(1, [0, -7, 5, 6]),        # ends before left/top
            ann(1, [1, 1, 5, 5])]
    index = build(make_dataset, [img(1)], anns)
    assert dict(index.skips) == {"zero_area_box": 2, "box_outside_image": 4}
    np.testing.assert_array_equal(index.records[0]["boxes"], [[1, 1, 6, 6]])


def test_partly_outside_box_is_clipped_exactly(make_dataset):
    index = build(make_dataset, [img(1, 40, 30)],
                  [ann(1, [-5.5, 20, 15, 20]), ann(1, [30, -2, 20, 4.25])])
    assert not index.skips and index.num_clipped == 2
    np.testing.assert_array_equal(index.records[0]["boxes"],
                                  [[20, 0, 30, 9.5], [0, 30, 2.25, 40]])
    assert "clipped" in index.report()


def test_unknown_category_crowd_and_orphan_annotations(make_dataset):
    anns = [ann(1, [0, 0, 5, 5], category_id=99), ann(1, [0, 0, 5, 5], iscrowd=1),
            ann(1, [0, 0, 5, 5], iscrowd=1, category_id=99), ann(5, [0, 0, 5, 5]),
            ann(1, [2, 2, 5, 5])]
    index = build(make_dataset, [img(1)], anns, training=False)
    assert dict(index.skips) == {"unknown_category": 1, "crowd_annotation": 2,
                                 "annotation_without_image": 1}
    np.testing.assert_array_equal(index.records[0]["classes"], [1])
    # The evaluation ground truth keeps the (known-category) crowd region, as COCOeval
    # uses it to ignore detections, and drops the unknown category.
    eval_anns = index.coco.loadAnns(index.coco.getAnnIds())
    assert sorted(a["iscrowd"] for a in eval_anns) == [0, 1]


def test_polygons_are_not_kept(make_dataset):
    """Box detection never reads COCO's segmentation: it is dropped while the json is parsed."""
    polygon = {"segmentation": [[0, 0, 5, 0, 5, 5]]}
    rle = {"segmentation": {"counts": [0, 25, 5], "size": [30, 40]}}
    index = build(make_dataset, [img(1)], [ann(1, [0, 0, 5, 5], **polygon),
                                           ann(1, [1, 1, 5, 5], iscrowd=1, **rle)], training=False)
    anns = index.coco.loadAnns(index.coco.getAnnIds())
    assert len(anns) == 2 and not any("segmentation" in a for a in anns)


def test_malformed_bboxes(make_dataset):
    path, image_dir = make_dataset([img(1)], [ann(1, [0, 0, 5, 5])])
    data = json.load(open(path))
    base = data["annotations"][0]
    bad = [[1, 2, 3], "0 0 5 5", [0, 0, "5", 5], [0, 0, float("nan"), 5],
           [0, float("inf"), 5, 5], [True, 0, 5, 5], None]
    data["annotations"] += [dict(base, id=10 + i, bbox=b) for i, b in enumerate(bad)]
    data["annotations"].append({k: v for k, v in base.items() if k != "bbox"} | {"id": 30})
    with open(path, "w") as f:
        json.dump(data, f)  # writes NaN / Infinity, which Python's json reads back
    index = CocoIndex.from_files(path, image_dir, training=False)
    assert dict(index.skips) == {"malformed_bbox": len(bad) + 1}
    assert len(index.records[0]["classes"]) == 1
    assert index.coco.getAnnIds() == [1]  # malformed boxes would break COCOeval


def test_all_skip_reasons_counted_together(make_dataset):
    cats = [{"id": 3, "name": "a"}, {"id": 9, "name": "b"}]
    images = [img(1), img(2, write=False), img(3, mode="L"), img(4)]
    anns = [ann(1, [0, 0, 10, 10], 3), ann(1, [0, 0, 0, 10], 9), ann(1, [50, 0, 5, 5], 3),
            ann(1, [0, 0, 5, 5], 4), ann(2, [0, 0, 5, 5], 3), ann(3, [1, 1, 2, 2], 9),
            ann(4, [0, 0, 5, 5], 3, iscrowd=1), ann(8, [0, 0, 5, 5], 3)]
    index = build(make_dataset, images, anns, cats)
    assert dict(index.skips) == {
        "zero_area_box": 1, "box_outside_image": 1, "unknown_category": 1,
        "missing_image_file": 1, "crowd_annotation": 1, "image_without_annotations": 1,
        "annotation_without_image": 1}
    assert [r["image_id"] for r in index.records] == [1, 3]
    report = index.report()
    assert "kept 2 of 4 images" in report and "1 image (missing image file)" in report


def test_all_images_bad_raises(make_dataset):
    path, image_dir = make_dataset([img(1, write=False), img(2)], [ann(1, [0, 0, 5, 5])])
    with pytest.raises(DatasetError, match="No usable image"):
        CocoIndex.from_files(path, image_dir, training=True)


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "broken_annotations.json"
    path.write_text('{"images": [], "annotations": [,]}')
    with pytest.raises(DatasetError, match=r"broken_annotations\.json.*line 1 column"):
        load_coco(str(path))
    with pytest.raises(DatasetError, match="broken_annotations"):
        CocoIndex.from_files(str(path), str(tmp_path), training=True)


def test_missing_file_and_missing_key(tmp_path):
    with pytest.raises(DatasetError, match="nope.json"):
        load_coco(str(tmp_path / "nope.json"))
    path = tmp_path / "no_cats.json"
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DatasetError, match="'categories'"):
        load_coco(str(path))


@pytest.mark.parametrize("record, message", [
    ({"id": 1, "file_name": "a.png", "height": 3}, r"images\[0\] \(id=1\).*width"),
    ({"id": 1, "file_name": "a.png", "height": 3, "width": 0}, "positive integer"),
    ({"file_name": "a.png", "height": 3, "width": 3}, r"images\[0\].*'id'"),
])
def test_bad_image_record_is_named(tmp_path, record, message):
    path = tmp_path / "bad_image.json"
    path.write_text(json.dumps({"images": [record], "annotations": [],
                                "categories": [{"id": 1, "name": "x"}]}))
    with pytest.raises(DatasetError, match=message):
        load_coco(str(path))


def test_bad_annotation_record_is_named(tmp_path):
    path = tmp_path / "bad_ann.json"
    base = {"images": [{"id": 1, "file_name": "a.png", "width": 9, "height": 9}],
            "categories": [{"id": 1, "name": "x"}]}
    path.write_text(json.dumps(dict(base, annotations=[{"id": 3, "image_id": 1,
                                                        "bbox": [0, 0, 1, 1]}])))
    with pytest.raises(DatasetError, match=r"annotations\[0\] \(id=3\).*'category_id'"):
        load_coco(str(path))
    path.write_text(json.dumps(dict(base, annotations=[{"id": 3, "image_id": [1],
                                                        "category_id": 1}])))
    with pytest.raises(DatasetError, match="'image_id' must be an integer"):
        load_coco(str(path))


def test_load_coco_fills_optional_annotation_fields(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 9, "height": 9}],
        "annotations": [{"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 3]},
                        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
        "categories": [{"id": 1, "name": "x"}]}))
    coco = load_coco(str(path))
    anns = coco.loadAnns(sorted(coco.getAnnIds()))
    assert [a["id"] for a in anns] == [4, 5]
    assert [a["area"] for a in anns] == [6.0, 4.0] and all(a["iscrowd"] == 0 for a in anns)


def test_bad_verify_mode(make_dataset):
    path, image_dir = make_dataset([img(1)], [ann(1, [0, 0, 5, 5])])
    with pytest.raises(ValueError, match="verify_images"):
        CocoIndex.from_files(path, image_dir, training=True, verify_images="deep")
