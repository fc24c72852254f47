"""Tests for internet_tf.evaluation.voc_eval (Li et al. 2019, Table 5): hand-computed AP both ways,
difficult and duplicate detections, classes without ground truth, the devkit files, and the
agreement with COCOeval's AP50 on the same predictions."""
import contextlib
import io
import json
import os

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from internet_tf.evaluation.voc_eval import (FP, IGNORED, RESULTS_DIR, TP, VocEvaluator,
                                             ap_11_point, ap_all_point, class_average_precision,
                                             coco_to_voc_boxes, format_metrics, match_detections,
                                             voc_iou)

NAMES = ["cat", "dog", "bird", "cow", "horse"]   # labels 1..5 = category ids 1..5
SIZE = (200, 100)                               # (width, height) of every image
INPUT = 400                                      # model input size: scale 2 for 200 x 100
# image id -> (voc_id, [(category, [x, y, w, h] 0-based continuous, difficult), ...])
IMAGES = {
    11: ("000011", [(1, [10, 10, 50, 40], 0),       # A
                    (1, [100, 20, 60, 60], 1)]),    # B (difficult)
    12: ("000012", [(1, [20, 20, 40, 40], 0),       # C
                    (1, [120, 30, 50, 50], 0),      # D
                    (4, [60, 60, 30, 30], 1)]),     # the only cow: difficult
    13: ("000013", [(1, [50, 20, 40, 40], 0),       # E
                    (3, [120, 10, 60, 60], 0),      # the bird
                    (5, [0, 0, 30, 30], 0)]),       # a horse nobody detects
}
# image id -> [(label, score, [x, y, w, h]), ...], in the order the model returns them.
DETECTIONS = {
    11: [(1, 0.90, [12, 10, 50, 40]),   # 2nd: A again (IoU 1920/2080), a duplicate: FP
         (1, 0.95, [10, 10, 50, 40]),   # 1st: A: TP
         (2, 0.90, [10, 10, 50, 40]),   # a dog where there is no dog
         (1, 0.85, [100, 20, 60, 60])],  # 3rd: B, difficult: ignored
    12: [(1, 0.60, [120, 30, 50, 50]),  # 6th: D: TP
         (4, 0.70, [60, 60, 30, 30]),   # the difficult cow: ignored
         (1, 0.80, [20, 20, 40, 40])],  # 4th: C: TP
    13: [(1, 0.70, [0, 70, 20, 20]),    # 5th: nothing there: FP
         (1, 0.50, [70, 20, 40, 40]),   # 7th: E at IoU 800/2400 = 1/3 < 0.5: FP
         (3, 0.80, [120, 10, 60, 60])],  # the bird: TP
}
# cat, ranked: TP FP (ignored) TP FP TP FP; 4 non-difficult cats (A, C, D, E), B not counted.
#   recall    .25  .25  .50  .50  .75  .75
#   precision 1    1/2  2/3  1/2  3/5  1/2
#   envelope  1    2/3  2/3  3/5  3/5  1/2   (max precision at this recall or beyond)
# all-point: .25 * 1 + .25 * 2/3 + .25 * 3/5 (+ .25 * 0 up to recall 1) = 17/30
# 11-point: t = 0, .1, .2 -> 1; t = .3, .4, .5 -> 2/3; t = .6, .7 -> 3/5; t = .8, .9, 1 -> 0
#   (3 + 2 + 1.2) / 11 = 6.2 / 11
CAT_AP, CAT_AP07 = 17 / 30, 6.2 / 11
# bird 1.0 both ways; horse 0.0 (missed); dog (no ground truth) and cow (only a difficult
# one) have nothing to measure: -1.0 and left out of the means.


def make_gt(images=IMAGES, names=NAMES, size=SIZE):
    imgs, anns = [], []
    for img_id, (voc_id, objects) in images.items():
        imgs.append({"id": img_id, "file_name": f"/data/JPEGImages/{voc_id}.jpg", "width": size[0],
                     "height": size[1], "voc_id": voc_id})
        for cat, box, difficult in objects:
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                         "bbox": [float(v) for v in box], "area": float(box[2] * box[3]),
                         "iscrowd": 0, "difficult": difficult})
    coco = COCO()
    coco.dataset = {"images": imgs, "annotations": anns,
                    "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def as_model_outputs(detections, max_dets=None, size=SIZE):
    """{image: [(label, score, xywh)]} -> the detector's padded batch (yxyx input pixels)."""
    ids, scale = sorted(detections), INPUT / max(size)
    max_dets = max_dets or max(len(d) for d in detections.values())
    boxes = np.zeros([len(ids), max_dets, 4], np.float32)
    scores = np.zeros([len(ids), max_dets], np.float32)
    classes = np.full([len(ids), max_dets], -1, np.int32)
    nums = np.zeros([len(ids)], np.int32)
    info = np.zeros([len(ids), 4], np.float32)
    for b, img_id in enumerate(ids):
        info[b] = (size[1], size[0], scale, img_id)
        nums[b] = len(detections[img_id])
        for j, (label, score, (x, y, w, h)) in enumerate(detections[img_id]):
            boxes[b, j] = np.array([y, x, y + h, x + w]) * scale
            scores[b, j], classes[b, j] = score, label
    return boxes, scores, classes, nums, info


@pytest.fixture
def evaluator():
    ev = VocEvaluator(make_gt(), {i + 1: i + 1 for i in range(len(NAMES))}, NAMES)
    ev.update(*as_model_outputs(DETECTIONS))
    return ev


def test_hand_computed_case_both_metrics(evaluator):
    m = evaluator.evaluate()
    assert m["AP/cat"] == pytest.approx(CAT_AP) and m["AP07/cat"] == pytest.approx(CAT_AP07)
    assert m["AP/bird"] == m["AP07/bird"] == pytest.approx(1.0)
    assert m["AP/horse"] == m["AP07/horse"] == 0.0
    assert m["AP/dog"] == m["AP07/dog"] == m["AP/cow"] == m["AP07/cow"] == -1.0
    assert m["mAP"] == pytest.approx((CAT_AP + 1.0 + 0.0) / 3)
    assert m["mAP_07"] == pytest.approx((CAT_AP07 + 1.0 + 0.0) / 3)
    assert m["AP50"] == m["mAP"]
    assert list(m)[:3] == ["mAP", "mAP_07", "AP50"]
    assert [k for k in m if k.startswith("AP/")] == [f"AP/{n}" for n in NAMES]
    assert "mAP" in evaluator.summary_text and "AP[cat] 0.5667  AP07[cat] 0.5636" in format_metrics(m)


def test_outcomes_of_the_ranked_cat_detections():
    gt = {11: (coco_to_voc_boxes([[10, 10, 50, 40], [100, 20, 60, 60]]), np.array([False, True])),
          12: (coco_to_voc_boxes([[20, 20, 40, 40], [120, 30, 50, 50]]), np.array([False, False])),
          13: (coco_to_voc_boxes([[50, 20, 40, 40]]), np.array([False]))}
    ranked = [(11, [10, 10, 50, 40]), (11, [12, 10, 50, 40]), (11, [100, 20, 60, 60]),
              (12, [20, 20, 40, 40]), (13, [0, 70, 20, 20]), (12, [120, 30, 50, 50]),
              (13, [70, 20, 40, 40])]
    outcomes = match_detections([i for i, _ in ranked], coco_to_voc_boxes([b for _, b in ranked]), gt)
    assert outcomes.tolist() == [TP, FP, IGNORED, TP, FP, TP, FP]


def test_difficult_boxes_are_neither_tp_nor_fp():
    # One normal and one difficult box; both difficult hits rank above the true positive.
    gt = {1: (coco_to_voc_boxes([[0, 0, 50, 50], [100, 0, 50, 50]]), np.array([False, True]))}
    boxes = coco_to_voc_boxes([[100, 0, 50, 50], [102, 0, 50, 50], [0, 0, 50, 50]])
    assert match_detections([1, 1, 1], boxes, gt).tolist() == [IGNORED, IGNORED, TP]
    # Had they been FPs the precision at the TP would be 1/3; ignored, AP is 1 and the
    # difficult box is not a missed object either (recall 1 with 1 of 2 boxes found).
    assert class_average_precision([1, 1, 1], [0.9, 0.8, 0.7], boxes, gt) == (1.0, 1.0)
    # Only difficult ground truth: nothing to measure.
    only_difficult = {1: (gt[1][0][1:], np.array([True]))}
    assert class_average_precision([1], [0.9], boxes[:1], only_difficult) is None


def test_duplicate_detections_are_false_positives():
    gt = {1: (coco_to_voc_boxes([[0, 0, 50, 50], [100, 0, 50, 50]]), np.array([False, False]))}
    boxes = coco_to_voc_boxes([[0, 0, 50, 50], [1, 1, 50, 50], [100, 0, 50, 50]])
    assert match_detections([1, 1, 1], boxes, gt).tolist() == [TP, FP, TP]
    # recall .5 .5 1, precision 1 1/2 2/3: all-point .5 * 1 + .5 * 2/3 = 5/6;
    # 11-point: t <= .5 -> 1 (6 points), t >= .6 -> 2/3 (5 points).
    all_point, eleven = class_average_precision([1, 1, 1], [0.9, 0.8, 0.7], boxes, gt)
    assert all_point == pytest.approx(5 / 6) and eleven == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_best_iou_box_already_matched_is_a_duplicate_even_with_another_box_above_half():
    # The devkit looks only at the best-IoU box: G2 overlaps the detection at IoU 9/11 but
    # the best box G1 is taken, so the second detection is an FP (COCOeval would match G2).
    gt = {1: (coco_to_voc_boxes([[0, 0, 100, 100], [10, 0, 100, 100]]), np.array([False, False]))}
    boxes = coco_to_voc_boxes([[0, 0, 100, 100], [0, 0, 100, 100]])
    assert match_detections([1, 1], boxes, gt).tolist() == [TP, FP]


def test_iou_uses_one_based_inclusive_coordinates():
    # Pixels 1..10 x 1..10 and 6..15 x 1..10: 10x10 boxes sharing 5 columns -> 50 / 150.
    assert voc_iou([1, 1, 10, 10], [[6, 1, 15, 10]])[0] == pytest.approx(1 / 3)
    # The same boxes 0-based continuous, [0, 10) and [5, 15): converted, the devkit's +1
    # widths are the continuous widths, so the IoU is the plain one.
    a, b = coco_to_voc_boxes([[0, 0, 10, 10], [5, 0, 10, 10]])
    assert a.tolist() == [1, 1, 10, 10] and b.tolist() == [6, 1, 15, 10]
    assert voc_iou(a, b[None])[0] == pytest.approx(1 / 3)
    assert voc_iou([1, 1, 10, 10], [[11, 1, 20, 10], [1, 1, 10, 10]]).tolist() == [0.0, 1.0]


def test_ap_functions_edges():
    assert ap_all_point([], []) == 0.0 and ap_11_point([], []) == 0.0
    # Recall exactly 3/10 reaches the threshold 0.3: t = 0, .1, .2, .3 -> 4 of 11 points.
    recall = np.cumsum(np.ones(3)) / 10
    assert ap_11_point(recall, [1.0, 1.0, 1.0]) == pytest.approx(4 / 11)
    assert ap_all_point(recall, [1.0, 1.0, 1.0]) == pytest.approx(0.3)
    # The envelope lifts an earlier dip: precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3.
    assert ap_all_point([1 / 3, 1 / 3, 2 / 3], [1, 0.5, 2 / 3]) == pytest.approx(1 / 3 + 2 / 9)


def test_no_ground_truth_anywhere_gives_minus_one_not_nan(tmp_path):
    gt = make_gt({11: ("000011", [])})
    ev = VocEvaluator(gt, {i + 1: i + 1 for i in range(len(NAMES))}, NAMES)
    ev.update(*as_model_outputs({11: DETECTIONS[11]}))
    met_path, _ = ev.write(str(tmp_path))
    metrics = json.load(open(met_path))   # strict JSON: NaN would not even be written
    assert metrics["mAP"] == metrics["mAP_07"] == metrics["AP50"] == -1.0
    assert all(v == -1.0 for v in metrics.values())


def test_no_detections_gives_zero(tmp_path):
    ev = VocEvaluator(make_gt(), {i + 1: i + 1 for i in range(len(NAMES))}, NAMES)
    ev.update(*as_model_outputs({i: [] for i in IMAGES}, max_dets=1))
    m = ev.evaluate()
    assert m["mAP"] == m["mAP_07"] == 0.0 and m["AP/dog"] == -1.0
    ev.write(str(tmp_path))
    files = os.listdir(tmp_path / RESULTS_DIR)
    assert sorted(files) == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)
    assert all(os.path.getsize(tmp_path / RESULTS_DIR / f) == 0 for f in files)


def test_devkit_files_in_one_based_coordinates(evaluator, tmp_path):
    met_path, det_path = evaluator.write(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["detections.json", "metrics.json", RESULTS_DIR]
    results = tmp_path / RESULTS_DIR
    assert sorted(os.listdir(results)) == sorted(f"comp4_det_test_{n}.txt" for n in NAMES)
    cat = (results / "comp4_det_test_cat.txt").read_text().splitlines()
    # Image 11's first cat, 0-based continuous x 12..62, y 10..50 -> pixels 13..62, 11..50.
    assert cat[0] == "000011 0.900000 13.00 11.00 62.00 50.00"
    assert len(cat) == 7 and {line.split()[0] for line in cat} == {"000011", "000012", "000013"}
    assert (results / "comp4_det_test_bird.txt").read_text() == "000013 0.800000 121.00 11.00 180.00 70.00\n"
    assert (results / "comp4_det_test_horse.txt").read_text() == ""
    # Read back as the devkit would, the boxes are the detections.json boxes (COCO xywh).
    dets = json.load(open(det_path))
    cat_dets = [d for d in dets if d["category_id"] == 1]
    for line, d in zip(cat, cat_dets):
        _, score, xmin, ymin, xmax, ymax = line.split()
        assert float(score) == pytest.approx(d["score"], abs=1e-6)
        back = [float(xmin) - 1, float(ymin) - 1, float(xmax) - float(xmin) + 1, float(ymax) - float(ymin) + 1]
        np.testing.assert_allclose(back, d["bbox"], atol=0.01)
    assert json.load(open(met_path))["AP/cat"] == pytest.approx(CAT_AP)


def test_reset_and_repeated_images(evaluator):
    evaluator.update(*as_model_outputs(DETECTIONS))   # the same images again count once
    assert len(evaluator.detections) == 10
    assert evaluator.evaluate()["AP/cat"] == pytest.approx(CAT_AP)
    evaluator.reset()
    assert evaluator.detections == [] and evaluator.image_ids == []
    assert evaluator.evaluate()["mAP"] == -1.0        # no image seen: nothing to find


def _generated_set(seed=0, num_images=40, num_classes=3):
    """Ground truth on a 3x3 grid of 100-px cells (one object per used cell, 40-90 px, so no
    two boxes overlap) and detections: most objects found with a jitter (some twice, some
    with the wrong class), a few missed, and some boxes on empty background; scores drawn
    at random (no ties)."""
    rng = np.random.default_rng(seed)
    images, detections = {}, {}
    for img_id in range(1, num_images + 1):
        objects, dets = [], []
        for cell in rng.permutation(9)[:rng.integers(1, 6)]:
            w, h = rng.uniform(40, 90, 2)
            x = 100 * (cell % 3) + rng.uniform(0, 100 - w)
            y = 100 * (cell // 3) + rng.uniform(0, 100 - h)
            label = int(rng.integers(1, num_classes + 1))
            objects.append((label, [x, y, w, h], 0))
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                jitter = rng.normal(0, 0.12, 4) * [w, h, w, h]
                wrong = rng.random() < 0.15
                dets.append((label % num_classes + 1 if wrong else label, float(rng.random()),
                             [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]]))
        for _ in range(rng.integers(0, 3)):
            dets.append((int(rng.integers(1, num_classes + 1)), float(rng.random() * 0.6),
                         [float(v) for v in rng.uniform(0, 250, 2)] + [30.0, 30.0]))
        images[img_id] = (f"{img_id:06d}", objects)
        detections[img_id] = dets
    return images, detections


def test_voc_map_equals_coco_ap50_within_interpolation_difference():
    """Our all-point mAP against COCOeval's AP50 on the same predictions.

    What can differ, and why it does not here beyond the interpolation:
    - IoU: COCO computes it on continuous boxes without "+1"; the devkit adds 1 to widths of
      1-based inclusive boxes. Our 1-based boxes are x0 + 1 .. x1, whose "+1" width is the
      continuous width, so both IoUs are the same number (the boxes are 40-90 px anyway).
    - Matching: COCO matches a detection to the best *unmatched* box at IoU >= 0.5, the devkit
      to the best box (FP if taken). Here no two ground-truth boxes overlap, and a detection
      cannot reach IoU 0.5 with two disjoint boxes (each would hold over half of it), so the
      two rules pick the same box. Ranks have no ties; fewer than 100 detections per image
      (COCO's maxDets); no difficult or crowd boxes; COCO's area range 'all' keeps every box.
    - AP: COCO averages the precision envelope env(r) (the max precision at recall >= r) at
      the 101 recall points 0, .01, ..., 1; VOC integrates the same non-increasing envelope
      over [0, 1]. For such a function (1/100) sum_{i=1..100} env(i/100) <= integral <=
      (1/100) sum_{i=0..99} env(i/100), which gives |COCO - VOC| <= 1/101 per class, so for
      the mean too. That bound is the tolerance.
    """
    images, detections = _generated_set()
    gt = make_gt(images, ["a", "b", "c"], size=(300, 300))
    ev = VocEvaluator(gt, {1: 1, 2: 2, 3: 3}, ["a", "b", "c"])
    ev.update(*as_model_outputs(detections, size=(300, 300)))
    ours = ev.evaluate()

    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = COCOeval(gt, gt.loadRes([dict(d) for d in ev.detections]), iouType="bbox")
        coco_eval.params.imgIds = sorted(images)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    # precision[T, R, K, A, M]: IoU .5, every recall point, class k, area 'all', 100 dets
    per_class = coco_eval.eval["precision"][0, :, :, 0, 2].mean(axis=0)
    for k, name in enumerate("abc"):
        assert abs(ours[f"AP/{name}"] - per_class[k]) <= 1 / 101, (name, ours[f"AP/{name}"], per_class[k])
    assert abs(ours["mAP"] - coco_eval.stats[1]) <= 1 / 101
    # A meaningful case: neither perfect nor empty, and the two numbers are not identical.
    assert 0.3 < ours["mAP"] < 0.95 and ours["mAP"] != coco_eval.stats[1]
