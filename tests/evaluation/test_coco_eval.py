"""Tests for internet_tf.evaluation.coco_eval (pycocotools' COCOeval), hand-checked numbers."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from internet_tf.evaluation import CocoEvaluator, format_metrics
from internet_tf.evaluation.coco_eval import MAX_IMAGE_ID, METRIC_KEYS

IMAGE_SIZE = 512
BIG_ID = 2 ** 24  # largest id that float32 image_info carries exactly
LABEL_TO_CAT = {1: 5, 2: 9}  # non-contiguous dataset category ids
NAMES = ["cat", "dog"]

# (image_id, width, height, [(category_id, [x, y, w, h]), ...]); areas: small < 32², large > 96².
IMAGES = [
    (101, 640, 480, [(5, [10, 20, 20, 15]),        # 300   small
                     (9, [100, 50, 60, 80])]),     # 4800  medium
    (202, 300, 500, [(9, [50, 100, 200, 300]),     # 60000 large
                     (5, [5, 5, 25, 30])]),        # 750   small
    (BIG_ID, 1000, 800, [(5, [300, 200, 400, 350]),  # 140000 large
                         (9, [700, 600, 90, 70])]),  # 6300 medium
]


def _make_gt():
    images, anns = [], []
    for img_id, w, h, objs in IMAGES:
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id}.jpg"})
        for cat, box in objs:
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                         "bbox": list(map(float, box)), "area": float(box[2] * box[3]),
                         "iscrowd": 0})
    coco = COCO()
    coco.dataset = {"images": images, "annotations": anns,
                    "categories": [{"id": 5, "name": "cat"}, {"id": 9, "name": "dog"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


@pytest.fixture
def gt():
    return _make_gt()


def _gt_as_outputs(images=IMAGES, swap_labels=False, max_dets=5, empty_ids=()):
    """Ground truth turned into model outputs: yxyx resized pixels, labels 1..K, padded."""
    cat_to_label = {c: l for l, c in LABEL_TO_CAT.items()}
    b = len(images)
    boxes = np.zeros([b, max_dets, 4], np.float32)
    scores = np.zeros([b, max_dets], np.float32)
    classes = np.full([b, max_dets], -1, np.int32)
    nums = np.zeros([b], np.int32)
    info = np.zeros([b, 4], np.float32)
    for i, (img_id, w, h, objs) in enumerate(images):
        scale = IMAGE_SIZE / max(w, h)
        info[i] = (h, w, scale, img_id)
        if img_id in empty_ids:
            continue
        nums[i] = len(objs)
        for j, (cat, (x, y, bw, bh)) in enumerate(objs):
            boxes[i, j] = np.array([y, x, y + bh, x + bw]) * scale
            scores[i, j] = 0.9 - 0.1 * j
            label = cat_to_label[cat]
            classes[i, j] = (3 - label) if swap_labels else label
    return boxes, scores, classes, nums, info


def _evaluator(gt):
    return CocoEvaluator(gt, LABEL_TO_CAT, class_names=NAMES)


def test_perfect_detections_give_ap_one(gt, capsys):
    ev = _evaluator(gt)
    ev.update(*_gt_as_outputs())
    m = ev.evaluate()
    assert m["AP"] == m["AP50"] == m["AP75"] == pytest.approx(1.0)
    for k in ("APs", "APm", "APl", "ARmax100", "ARs", "ARm", "ARl"):
        assert m[k] == pytest.approx(1.0), k
    assert m["per_class_AP"] == {"cat": pytest.approx(1.0), "dog": pytest.approx(1.0)}
    # pycocotools' own prints are captured; a line per COCOeval phase remains (then its time).
    phases = [line.split("  ") for line in capsys.readouterr().out.splitlines()]
    assert [p[:-1] for p in phases] == [["COCOeval: load detections", "6 detections"],
                                        ["COCOeval: match", "3 images"], ["COCOeval: accumulate"]]
    assert "Average Precision" in ev.summary_text
    assert ev.image_ids == [101, 202, BIG_ID]       # float32 id 2**24 round-trips exactly


def test_tf_tensors_accepted(gt):
    tf = pytest.importorskip("tensorflow")
    ev = _evaluator(gt)
    ev.update(*[tf.constant(a) for a in _gt_as_outputs()])
    assert ev.evaluate()["AP"] == pytest.approx(1.0)


def test_wrong_category_gives_zero(gt):
    ev = _evaluator(gt)
    ev.update(*_gt_as_outputs(swap_labels=True))
    m = ev.evaluate()
    assert m["AP"] == 0.0 and m["AP50"] == 0.0
    assert m["per_class_AP"] == {"cat": 0.0, "dog": 0.0}


def test_only_seen_images_evaluated_and_missed_images_count(gt):
    # Only image 101 seen, perfectly detected: the other images are not evaluated.
    ev = _evaluator(gt)
    ev.update(*_gt_as_outputs(images=IMAGES[:1]))
    assert ev.evaluate()["AP"] == pytest.approx(1.0)
    # Image 202 seen with no detections: each class finds 1 of 2 objects at precision 1,
    # so precision is 1 at the 51 recall thresholds 0.00..0.50 and 0 at the other 50.
    ev.update(*_gt_as_outputs(images=IMAGES[1:2], empty_ids=(202,)))
    m = ev.evaluate()
    assert m["AP"] == pytest.approx(51 / 101)
    assert m["per_class_AP"]["cat"] == pytest.approx(51 / 101)
    assert m["ARmax100"] == pytest.approx(0.5)


def test_duplicate_images_counted_once(gt):
    ev = _evaluator(gt)
    ev.update(*_gt_as_outputs())
    ev.update(*_gt_as_outputs())
    assert ev.num_duplicate_images == 3 and len(ev.detections) == 6
    assert ev.evaluate()["AP"] == pytest.approx(1.0)


def test_box_back_to_original_pixels_hand_checked(gt):
    ev = _evaluator(gt)
    # image 101 is 640x480 -> scale 512/640 = 0.8.
    boxes = np.array([[[16.0, 8.0, 28.0, 24.0],          # -> x 10, y 20, w 20, h 15
                       [-8.0, 500.0, 100.0, 540.0]]],    # -> y -10..125, x 625..675: clipped
                     np.float32)
    ev.update(boxes, np.array([[0.75, 0.5]]), np.array([[1, 2]]), np.array([2]),
              np.array([[480, 640, 0.8, 101]], np.float32))
    d0, d1 = ev.detections
    assert d0["image_id"] == 101 and type(d0["image_id"]) is int
    assert d0["category_id"] == 5 and d0["score"] == pytest.approx(0.75)
    np.testing.assert_allclose(d0["bbox"], [10, 20, 20, 15], atol=1e-4)
    assert d1["category_id"] == 9
    np.testing.assert_allclose(d1["bbox"], [625, 0, 15, 125], atol=1e-4)


def test_padding_and_num_detections_respected(gt):
    ev = _evaluator(gt)
    boxes, scores, classes, nums, info = _gt_as_outputs()
    classes[0, 1] = 0               # a background/padding label inside num_detections is skipped
    ev.update(boxes, scores, classes, nums, info)
    assert len(ev.detections) == 5
    with pytest.raises(ValueError, match="label 7"):
        classes[0, 1] = 7
        ev.reset()
        ev.update(boxes, scores, classes, nums, info)


def test_bad_image_ids_raise(gt):
    ev = _evaluator(gt)
    boxes, scores, classes, nums, info = _gt_as_outputs()
    info64 = info.astype(np.float64)
    info64[0, 3] = MAX_IMAGE_ID + 2
    with pytest.raises(ValueError, match="2\\*\\*24"):
        ev.update(boxes, scores, classes, nums, info64)
    info[0, 3] = 7
    with pytest.raises(ValueError, match="not in the ground-truth"):
        ev.update(boxes, scores, classes, nums, info)


def test_empty_detections_zero_metrics(gt, tmp_path):
    ev = _evaluator(gt)
    m = ev.evaluate()                     # nothing seen at all
    assert all(m[k] == 0.0 for k in METRIC_KEYS)
    ev.update(*_gt_as_outputs(empty_ids=(101, 202, BIG_ID)))
    m = ev.evaluate()
    assert all(m[k] == 0.0 for k in METRIC_KEYS)
    assert m["per_class_AP"] == {"cat": 0.0, "dog": 0.0}
    _, det_path = ev.write(str(tmp_path))
    assert json.load(open(det_path)) == []


def test_write_roundtrip_and_metrics_keys(gt, tmp_path):
    ev = CocoEvaluator(gt, LABEL_TO_CAT)  # no class names: keys are category ids
    ev.update(*_gt_as_outputs())
    met_path, det_path = ev.write(str(tmp_path / "eval"))
    assert sorted(os.listdir(tmp_path / "eval")) == ["detections.json", "metrics.json"]
    metrics = json.load(open(met_path))
    assert set(metrics) == set(METRIC_KEYS) | {"per_class_AP"}
    assert set(metrics["per_class_AP"]) == {"5", "9"}
    assert metrics["AP"] == pytest.approx(1.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(det_path)
        e = COCOeval(gt, dt, iouType="bbox")
        e.evaluate(), e.accumulate(), e.summarize()
    assert len(dt.getAnnIds()) == 6 and set(dt.getCatIds()) >= {5, 9}
    assert e.stats[0] == pytest.approx(1.0)
    table = format_metrics(metrics)
    assert len(table.splitlines()) == 14 and table.splitlines()[0].startswith("AP ")
