"""Tests for internet_tf.ops.postprocess.detect (the detector's inference output) on hand-built cases."""
import math

import numpy as np
import pytest
import tensorflow as tf

from internet_tf.ops.postprocess import detect
from reference import box_iou

# Image 0: original 100 x 50, scale 1.28 -> resized region 128 x 64 inside a 128 x 128 input.
INFO0 = [100.0, 50.0, 1.28, 7.0]
# Image 1: original 128 x 128, scale 1.
INFO1 = [128.0, 128.0, 1.0, 8.0]

# (roi, probabilities (bg, c1, c2)). All deltas zero, so the detected box is the clipped RoI.
ROIS0 = [
    ([10, 10, 50, 50], (0.17, 0.80, 0.03)),    # r0: c1 0.80 kept; c2 below 0.05
    ([12, 12, 52, 52], (0.36, 0.60, 0.04)),    # r1: c1 IoU 0.82 with r0 -> suppressed
    ([14, 14, 54, 54], (0.30, 0.02, 0.68)),    # r2: c2 kept although it overlaps r0 (other class)
    ([70, 20, 100, 40], (0.50, 0.04, 0.46)),   # r3: c2 kept
    ([20, 40, 60, 90], (0.655, 0.30, 0.045)),  # r4: c1 kept, clipped to x <= 64; c2 dropped
    ([72, 22, 102, 42], (0.58, 0.02, 0.40)),   # r5: c2 IoU 0.72 with r3 -> suppressed
    ([70, 32, 100, 52], (0.79, 0.01, 0.20)),   # r6: c2 IoU 0.25 with r3 -> kept
    ([0, 0, 30, 30], (0.952, 0.024, 0.024)),   # r7: everything below 0.05
]
# Expected detections for image 0, by descending score: (class, box, score).
EXPECTED0 = [
    (1, [10, 10, 50, 50], 0.80),
    (2, [14, 14, 54, 54], 0.68),
    (2, [70, 20, 100, 40], 0.46),
    (1, [20, 40, 60, 64], 0.30),
    (2, [70, 32, 100, 52], 0.20),
]




def test_hand_built_case_is_consistent():
    # The comments above, checked independently of the library.
    r = [b for b, _ in ROIS0]
    assert box_iou(r[0], r[1]) == pytest.approx(0.8223, abs=1e-3)
    assert box_iou(r[3], r[5]) == pytest.approx(504 / 696)
    assert box_iou(r[3], r[6]) == pytest.approx(0.25)
    assert box_iou([20, 40, 60, 64], r[0]) < 0.3
    assert box_iou(r[0], r[2]) > 0.3
    for _, p in ROIS0:
        assert sum(p) == pytest.approx(1.0)


def _inputs(rois_per_image, num_classes=2):
    """Logits = log(p) so softmax gives back p; zero deltas."""
    rois = np.asarray([[b for b, _ in img] for img in rois_per_image], np.float32)
    logits = np.log(np.asarray([[p for _, p in img] for img in rois_per_image], np.float64))
    deltas = np.zeros(rois.shape[:2] + (num_classes, 4), np.float32)
    return tf.constant(logits.astype(np.float32)), tf.constant(deltas), tf.constant(rois)


def _background_image():
    return [([i * 10.0, 0.0, i * 10.0 + 20.0, 20.0], (0.97, 0.02, 0.01)) for i in range(len(ROIS0))]


def test_detect_hand_built_two_images():
    logits, deltas, rois = _inputs([ROIS0, _background_image()])
    info = tf.constant([INFO0, INFO1])
    out = detect(logits, deltas, rois, info, max_detections=8)
    assert set(out) == {"detection_boxes", "detection_scores", "detection_classes", "num_detections"}
    assert out["detection_boxes"].shape == (2, 8, 4)
    assert out["detection_classes"].dtype == tf.int32
    assert out["num_detections"].dtype == tf.int32
    np.testing.assert_array_equal(out["num_detections"].numpy(), [len(EXPECTED0), 0])

    n = len(EXPECTED0)
    classes = out["detection_classes"].numpy()
    scores = out["detection_scores"].numpy()
    boxes = out["detection_boxes"].numpy()
    np.testing.assert_array_equal(classes[0, :n], [c for c, _, _ in EXPECTED0])
    np.testing.assert_allclose(scores[0, :n], [s for _, _, s in EXPECTED0], atol=1e-5)
    np.testing.assert_allclose(boxes[0, :n], [b for _, b, _ in EXPECTED0], atol=1e-3)
    # Padding: class -1, score 0, zero box.
    np.testing.assert_array_equal(classes[0, n:], -1)
    np.testing.assert_array_equal(scores[0, n:], 0.0)
    np.testing.assert_array_equal(boxes[0, n:], 0.0)
    np.testing.assert_array_equal(classes[1], -1)
    np.testing.assert_array_equal(scores[1], 0.0)
    np.testing.assert_array_equal(boxes[1], 0.0)


def test_detect_max_detections_cap():
    logits, deltas, rois = _inputs([ROIS0])
    out = detect(logits, deltas, rois, tf.constant([INFO0]), max_detections=3)
    assert out["detection_boxes"].shape == (1, 3, 4)
    assert int(out["num_detections"][0]) == 3
    np.testing.assert_array_equal(out["detection_classes"].numpy()[0], [1, 2, 2])
    np.testing.assert_allclose(out["detection_scores"].numpy()[0], [0.80, 0.68, 0.46], atol=1e-5)


def test_detect_nms_threshold_and_score_threshold_are_configurable():
    logits, deltas, rois = _inputs([ROIS0])
    # NMS 0.9: r1 (IoU 0.82) and r5 (IoU 0.72) survive too.
    loose = detect(logits, deltas, rois, tf.constant([INFO0]), nms_iou=0.9, max_detections=10)
    assert int(loose["num_detections"][0]) == 7
    # Score threshold 0.35: only 0.80, 0.68, 0.46 (0.40 of r5 is suppressed by r3).
    strict = detect(logits, deltas, rois, tf.constant([INFO0]), score_threshold=0.35, max_detections=10)
    assert int(strict["num_detections"][0]) == 3


def test_detect_rois_valid_masks_invalid_rois():
    logits, deltas, rois = _inputs([ROIS0])
    valid = np.ones((1, len(ROIS0)), bool)
    valid[0, 0] = False  # drop r0: r1 (c1 0.60) is no longer suppressed
    out = detect(logits, deltas, rois, tf.constant([INFO0]), max_detections=10,
                 rois_valid=tf.constant(valid))
    classes = out["detection_classes"].numpy()[0]
    scores = out["detection_scores"].numpy()[0]
    n = int(out["num_detections"][0])
    assert n == 5
    np.testing.assert_allclose(scores[:n], [0.68, 0.60, 0.46, 0.30, 0.20], atol=1e-5)
    np.testing.assert_array_equal(classes[:n], [2, 1, 2, 1, 2])
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 1], [12, 12, 52, 52], atol=1e-3)


def test_detect_class_specific_decode_and_clip_to_resized_region():
    # One RoI, two classes with different deltas (weights 10, 10, 5, 5).
    roi = [40.0, 10.0, 60.0, 30.0]       # centre (50, 20), h = w = 20
    deltas = np.zeros((1, 1, 2, 4), np.float32)
    deltas[0, 0, 0] = [10 * 0.5, 0.0, 0.0, 0.0]                 # class 1: cy += 0.5 * 20 = 60
    deltas[0, 0, 1] = [0.0, 10 * 1.0, 5 * math.log(2.0), 0.0]   # class 2: cx += 20 -> 40, h -> 40
    logits = np.log(np.asarray([[[0.2, 0.5, 0.3]]], np.float32))
    # Original 60 x 100, scale 1.28 -> resized region 76.8 -> round 77 rows, 128 columns.
    info = tf.constant([[60.0, 100.0, 1.28, 0.0]])
    out = detect(tf.constant(logits), tf.constant(deltas), tf.constant([[roi]]), info,
                 max_detections=4)
    assert int(out["num_detections"][0]) == 2
    np.testing.assert_array_equal(out["detection_classes"].numpy()[0, :2], [1, 2])
    # class 1: cy 60, cx 20, h = w = 20 -> (50, 10, 70, 30), inside the 77 x 128 region.
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 0], [50.0, 10.0, 70.0, 30.0], atol=1e-3)
    # class 2: cy 50, cx 40, h 40, w 20 -> (30, 30, 70, 50).
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 1], [30.0, 30.0, 70.0, 50.0], atol=1e-3)
    # Push class 1's box past the bottom: cy += 1.5 * 20 -> (70, 10, 90, 30); the resized
    # region has round(60 * 1.28) = round(76.8) = 77 rows (conventions.md), so ymax -> 77.
    deltas[0, 0, 0] = [10 * 1.5, 0.0, 0.0, 0.0]
    out = detect(tf.constant(logits), tf.constant(deltas), tf.constant([[roi]]), info, max_detections=4)
    np.testing.assert_allclose(out["detection_boxes"].numpy()[0, 0], [70.0, 10.0, 77.0, 30.0], atol=1e-3)


def test_detect_in_tf_function_static_shapes():
    logits, deltas, rois = _inputs([ROIS0, _background_image()])
    fn = tf.function(lambda *a: detect(*a, max_detections=6))
    out = fn(logits, deltas, rois, tf.constant([INFO0, INFO1]))
    assert out["detection_boxes"].shape == (2, 6, 4)
    np.testing.assert_array_equal(out["num_detections"].numpy(), [5, 0])
