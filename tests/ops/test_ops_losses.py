"""Tests for internet_tf.ops.losses: hand-computed RPN and head losses on tiny inputs."""
import math

import numpy as np
import pytest
import tensorflow as tf

from internet_tf.ops import losses as L


def _bce(label, logit):
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def _sl1(d, beta):
    d = abs(d)
    return 0.5 * d * d / beta if d < beta else d - 0.5 * beta


def test_smooth_l1_values():
    d = tf.constant([0.0, 0.05, -0.05, 0.2, -3.0])
    np.testing.assert_allclose(L.smooth_l1(d, 1.0 / 9.0).numpy(),
                               [0.0, 0.01125, 0.01125, 0.2 - 1.0 / 18.0, 3.0 - 1.0 / 18.0], rtol=1e-5)
    np.testing.assert_allclose(L.smooth_l1(d, 1.0).numpy(), [0.0, 0.00125, 0.00125, 0.02, 2.5],
                               rtol=1e-5)
    np.testing.assert_allclose(L.smooth_l1(d, 0.0).numpy(), [0.0, 0.05, 0.05, 0.2, 3.0], rtol=1e-6)


def test_rpn_losses_hand_computed():
    labels = [1, 0, -1, 0]
    logits = [2.0, -1.0, 5.0, 0.5]
    pred = [[0.05, -0.2, 0.0, 1.0],      # positive
            [9.0, 9.0, 9.0, 9.0],        # negative: no box loss
            [-7.0, 7.0, 7.0, 7.0],       # ignored
            [3.0, 3.0, 3.0, 3.0]]        # negative
    target = [[0.0, 0.0, 0.0, 0.5], [0.0] * 4, [0.0] * 4, [0.0] * 4]
    out = L.rpn_losses(tf.constant([logits]), tf.constant([pred]),
                       {"labels": tf.constant([labels], tf.int32), "deltas": tf.constant([target])})
    # BCE over the 3 sampled anchors / 3.
    cls = (_bce(1, 2.0) + _bce(0, -1.0) + _bce(0, 0.5)) / 3.0
    assert cls == pytest.approx((0.126928 + 0.313262 + 0.974077) / 3.0, abs=1e-5)
    # smooth-L1 (beta 1/9) on the positive only: 0.01125 + (0.2 - 1/18) + 0 + (0.5 - 1/18), / 3.
    box = (0.01125 + (0.2 - 1.0 / 18.0) + 0.0 + (0.5 - 1.0 / 18.0)) / 3.0
    assert box == pytest.approx(sum(_sl1(p - t, 1.0 / 9.0) for p, t in zip(pred[0], target[0])) / 3.0)
    assert float(out["rpn_class"]) == pytest.approx(cls, rel=1e-5)
    assert float(out["rpn_box"]) == pytest.approx(box, rel=1e-5)


def test_rpn_losses_normalise_over_whole_batch_and_ignore_gradients():
    # Image 0: labels [1, -1]; image 1: labels [0, 0]  -> 3 sampled anchors in total.
    logits = tf.Variable([[1.0, 4.0], [-2.0, 0.0]])
    deltas = tf.Variable([[[0.5, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]],
                          [[2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]]])
    targets = {"labels": tf.constant([[1, -1], [0, 0]], tf.int32), "deltas": tf.zeros([2, 2, 4])}
    with tf.GradientTape() as tape:
        out = L.rpn_losses(logits, deltas, targets)
        total = out["rpn_class"] + out["rpn_box"]
    cls = (_bce(1, 1.0) + _bce(0, -2.0) + _bce(0, 0.0)) / 3.0
    assert float(out["rpn_class"]) == pytest.approx(cls, rel=1e-5)
    assert float(out["rpn_box"]) == pytest.approx((0.5 - 1.0 / 18.0) / 3.0, rel=1e-5)
    g_logits, g_deltas = tape.gradient(total, [logits, deltas])
    assert float(g_logits[0, 1]) == 0.0  # ignored anchor
    np.testing.assert_array_equal(g_deltas.numpy()[0, 1], 0.0)  # ignored anchor
    np.testing.assert_array_equal(g_deltas.numpy()[1], 0.0)  # negatives: no box gradient
    # d/dx BCE(1, x) = sigmoid(x) - 1, scaled by 1/3.
    assert float(g_logits[0, 0]) == pytest.approx((1 / (1 + math.exp(-1.0)) - 1) / 3.0, rel=1e-5)


def test_rpn_losses_no_sampled_anchors_is_zero_not_nan():
    out = L.rpn_losses(tf.constant([[3.0, -3.0]]), tf.ones([1, 2, 4]),
                       {"labels": tf.constant([[-1, -1]], tf.int32), "deltas": tf.zeros([1, 2, 4])})
    assert float(out["rpn_class"]) == 0.0
    assert float(out["rpn_box"]) == 0.0


def _ce(logits, label):
    m = max(logits)
    return -(logits[label] - m - math.log(sum(math.exp(v - m) for v in logits)))


def test_head_losses_hand_computed():
    # K = 2 foreground classes; rows: fg class 1, background, fg class 2, padding.
    classes = [1, 0, 2, -1]
    logits = [[0.5, 2.0, -1.0],
              [1.0, 0.0, 0.0],
              [0.0, 0.3, 1.2],
              [50.0, -50.0, 0.0]]   # padding: would dominate the mean if counted
    big = [30.0, -30.0, 30.0, 30.0]
    deltas = np.zeros((4, 2, 4), np.float32)
    deltas[0, 0] = [0.5, -2.0, 0.0, 0.25]   # class 1 slot of a class-1 RoI
    deltas[0, 1] = big                        # other class: ignored
    deltas[1, 0] = big                        # background row: ignored
    deltas[1, 1] = big
    deltas[2, 0] = big                        # class 1 slot of a class-2 RoI: ignored
    deltas[2, 1] = [1.5, 0.0, -0.5, 0.0]
    deltas[3] = big                           # padding
    target = np.zeros((4, 4), np.float32)
    target[0] = [0.0, 0.0, 0.0, 1.25]
    target[2] = [0.0, 0.5, 0.0, 0.0]
    out = L.head_losses(tf.constant([logits]), tf.constant(deltas[None]),
                        {"classes": tf.constant([classes], tf.int32), "deltas": tf.constant(target[None])})
    cls = (_ce(logits[0], 1) + _ce(logits[1], 0) + _ce(logits[2], 2)) / 3.0
    # smooth-L1 beta 1: row 0 diffs (0.5, -2, 0, -1): 0.125 + 1.5 + 0 + 0.5 = 2.125;
    # row 2 diffs (1.5, -0.5, -0.5, 0): 1.0 + 0.125 + 0.125 + 0 = 1.25.  (2.125 + 1.25) / 3.
    box = (2.125 + 1.25) / 3.0
    assert float(out["head_class"]) == pytest.approx(cls, rel=1e-5)
    assert float(out["head_box"]) == pytest.approx(box, rel=1e-5)


def test_head_losses_batch_and_all_padding():
    # Image 0 all padding, image 1 one background row: normaliser 1 (over the whole batch).
    logits = tf.constant([[[9.0, 0.0], [9.0, 0.0]], [[0.0, 1.0], [9.0, 0.0]]])
    deltas = tf.fill([2, 2, 1, 4], 7.0)
    targets = {"classes": tf.constant([[-1, -1], [0, -1]], tf.int32), "deltas": tf.zeros([2, 2, 4])}
    out = L.head_losses(logits, deltas, targets)
    assert float(out["head_class"]) == pytest.approx(_ce([0.0, 1.0], 0), rel=1e-5)
    assert float(out["head_box"]) == 0.0
    empty = L.head_losses(logits, deltas, {"classes": tf.fill([2, 2], -1), "deltas": tf.zeros([2, 2, 4])})
    assert float(empty["head_class"]) == 0.0 and float(empty["head_box"]) == 0.0
