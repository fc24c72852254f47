"""Tests for internet_tf.ops.boxes (hand-checked numbers + pycocotools IoU)."""
import math

import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as mask_utils

from internet_tf.ops import boxes as B


def _random_boxes(rng, n, size=100.0):
    yx = rng.uniform(0, size, (n, 2))
    hw = rng.uniform(2.0, size / 2, (n, 2))  # size ratios < 1000/16: no clip
    return np.concatenate([yx, yx + hw], axis=1).astype(np.float32)


def test_yxyx_to_coco_xywh_and_numpy_input():
    xywh = B.yxyx_to_xywh(np.array([[20.0, 10.0, 60.0, 40.0]]))
    np.testing.assert_allclose(xywh.numpy(), [[10.0, 20.0, 30.0, 40.0]])
    assert xywh.dtype == tf.float32


def test_area_and_hand_iou():
    a = tf.constant([[0.0, 0.0, 10.0, 10.0]])
    b = tf.constant([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(B.area(b).numpy(), [100.0, 100.0, 100.0])
    # inter 5*5 = 25, union 100 + 100 - 25 = 175.
    np.testing.assert_allclose(B.iou(a, b).numpy(), [[25.0 / 175.0, 1.0, 0.0]], rtol=1e-6)


def test_iou_padded_and_zero_area_give_zero_not_nan():
    boxes = tf.constant([[-1.0, -1.0, -1.0, -1.0], [5.0, 5.0, 5.0, 5.0],
                         [0.0, 0.0, 10.0, 10.0], [3.0, 3.0, 3.0, 9.0]])
    out = B.iou(boxes, boxes).numpy()
    assert np.isfinite(out).all()
    expected = np.zeros((4, 4), np.float32)
    expected[2, 2] = 1.0
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(B.area(boxes).numpy(), [0.0, 0.0, 100.0, 0.0])


def test_iou_matches_pycocotools():
    rng = np.random.default_rng(0)
    b1, b2 = _random_boxes(rng, 40), _random_boxes(rng, 30)
    ours = B.iou(b1, b2).numpy()
    ref = mask_utils.iou(B.yxyx_to_xywh(b1).numpy().astype(np.float64).tolist(),
                         B.yxyx_to_xywh(b2).numpy().astype(np.float64).tolist(), [0] * 30)
    assert (ref > 0).sum() > 20  # the test actually exercises overlaps
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_iou_batch_broadcast():
    rng = np.random.default_rng(1)
    anchors = _random_boxes(rng, 7)
    gt = np.stack([_random_boxes(rng, 3), _random_boxes(rng, 3)])
    out = B.iou(anchors, gt).numpy()
    assert out.shape == (2, 7, 3)
    for b in range(2):
        np.testing.assert_allclose(out[b], B.iou(anchors, gt[b]).numpy(), rtol=1e-6)


def test_encode_hand_example():
    anchor = tf.constant([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), h 10, w 20
    box = tf.constant([[2.0, 4.0, 22.0, 14.0]])  # centre (12, 9), h 20, w 10
    np.testing.assert_allclose(B.encode(box, anchor).numpy(),
                               [[0.7, -0.05, math.log(2.0), -math.log(2.0)]], rtol=1e-5)
    np.testing.assert_allclose(B.encode(box, anchor, (10.0, 10.0, 5.0, 5.0)).numpy(),
                               [[7.0, -0.5, 5 * math.log(2.0), -5 * math.log(2.0)]], rtol=1e-5)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip(weights):
    rng = np.random.default_rng(2)
    boxes, anchors = _random_boxes(rng, 500), _random_boxes(rng, 500)
    back = B.decode(B.encode(boxes, anchors, weights), anchors, weights).numpy()
    np.testing.assert_allclose(back, boxes, atol=1e-4)


def test_encode_degenerate_is_finite():
    pad = tf.constant([[-1.0, -1.0, -1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    anchors = tf.constant([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 8.0, 8.0]])
    assert np.isfinite(B.encode(pad, anchors, (10.0, 10.0, 5.0, 5.0)).numpy()).all()


def test_decode_clips_dh_dw():
    anchor = tf.constant([[0.0, 0.0, 16.0, 16.0]])
    out = B.decode(tf.constant([[0.0, 0.0, 10.0, 10.0]]), anchor).numpy()
    # exp(log(1000 / 16)) * 16 = 1000 around centre 8.
    np.testing.assert_allclose(out, [[-492.0, -492.0, 508.0, 508.0]], rtol=1e-5)
    out = B.decode(tf.constant([[0.0, 0.0, 50.0, 0.0]]), anchor, (1.0, 1.0, 5.0, 5.0)).numpy()
    np.testing.assert_allclose(out, [[-492.0, 0.0, 508.0, 16.0]], rtol=1e-5)  # 50/5 > clip
    out = B.decode(tf.constant([[0.0, 0.0, -3.0, 0.0]]), anchor).numpy()  # no lower clip
    h = 16 * math.exp(-3.0)
    np.testing.assert_allclose(out, [[8 - h / 2, 0.0, 8 + h / 2, 16.0]], rtol=1e-5)


def test_clip_flip_scale():
    boxes = tf.constant([[[-5.0, -5.0, 50.0, 70.0]], [[10.0, 10.0, 200.0, 200.0]]])
    np.testing.assert_allclose(B.clip_boxes(boxes, 40, 60).numpy(),
                               [[[0, 0, 40, 60]], [[10, 10, 40, 60]]])
    hw = tf.constant([[100.0], [150.0]])  # [B, 1]
    np.testing.assert_allclose(B.clip_boxes(boxes, hw, hw).numpy(),
                               [[[0, 0, 50, 70]], [[10, 10, 150, 150]]])
    flipped = B.flip_horizontal(tf.constant([[1.0, 2.0, 3.0, 10.0]]), 100)
    np.testing.assert_allclose(flipped.numpy(), [[1.0, 90.0, 3.0, 98.0]])
    np.testing.assert_allclose(B.scale_boxes(boxes, 0.5).numpy()[1], [[5, 5, 100, 100]])
    np.testing.assert_allclose(B.scale_boxes(boxes, tf.constant([[1.0], [2.0]])).numpy()[1],
                               [[20, 20, 400, 400]])
