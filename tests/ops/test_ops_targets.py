"""Tests for internet_tf.ops.targets: rpn_targets and roi_targets (hand-checked cases)."""
import math

import numpy as np
import tensorflow as tf

from internet_tf.ops import boxes as B
from internet_tf.ops import targets as T

ANCHORS = np.array([[0, 0, 10, 10],      # IoU 1 with gt A -> pos
                    [0, 0, 10, 12],      # IoU 100/120 with A -> pos
                    [0, 5, 10, 15],      # IoU 50/150 with A -> ignore
                    [20, 20, 30, 30],    # neg
                    [0, 0, 20, 20],      # IoU 100/400 with A -> neg
                    [50, 50, 60, 60]],   # IoU 100/144 = 0.69 with gt B -> best anchor of B
                   np.float32)
PAD = [-1.0] * 4
GT_BOXES = np.array([[[0, 0, 10, 10], PAD], [[50, 50, 62, 62], PAD]], np.float32)
GT_CLASSES = np.array([[1, -1], [2, -1]], np.int32)


def test_rpn_targets_hand_checked():
    out = T.rpn_targets(ANCHORS, GT_BOXES, GT_CLASSES)
    np.testing.assert_array_equal(out["labels"].numpy(), [[1, 1, -1, 0, 0, 0], [0, 0, 0, 0, 0, 1]])
    d = out["deltas"].numpy()
    assert d.shape == (2, 6, 4) and d.dtype == np.float32
    np.testing.assert_allclose(d[0, 0], [0, 0, 0, 0], atol=1e-6)
    # anchor 1: centre (5, 6), 10x12 vs gt centre (5, 5), 10x10.
    np.testing.assert_allclose(d[0, 1], [0.0, -1.0 / 12.0, 0.0, math.log(10.0 / 12.0)],
                               rtol=1e-5, atol=1e-6)
    # anchor 5 (low-quality positive): centre 55, size 10 vs gt centre 56, size 12.
    np.testing.assert_allclose(d[1, 5], [0.1, 0.1, math.log(1.2), math.log(1.2)], rtol=1e-5)
    assert not d[0, 2:].any() and not d[1, :5].any()  # zeros where not positive


def test_rpn_targets_sampling_budget():
    out = T.rpn_targets(ANCHORS, GT_BOXES, GT_CLASSES, num_samples=2, positive_fraction=0.5)
    labels = out["labels"].numpy()
    np.testing.assert_array_equal((labels == 1).sum(1), [1, 1])
    np.testing.assert_array_equal((labels == 0).sum(1), [1, 1])
    assert labels[0, 2] == -1  # the ignored anchor is never sampled
    no_gt = T.rpn_targets(ANCHORS, GT_BOXES, -np.ones_like(GT_CLASSES))["labels"].numpy()
    np.testing.assert_array_equal(no_gt, np.zeros((2, 6)))


def test_trim_padding_keeps_every_valid_column_and_the_targets():
    # Image 0's valid gt sits behind an invalid column; image 1 has one valid gt.
    boxes = np.full((2, 40, 4), -1.0, np.float32)
    classes = np.full((2, 40), -1, np.int32)
    boxes[0, 2], classes[0, 2] = [0, 0, 10, 10], 1
    boxes[1, 0], classes[1, 0] = [50, 50, 62, 62], 2
    trimmed_boxes, trimmed_classes = T.trim_padding(boxes, classes)
    np.testing.assert_array_equal(trimmed_classes.numpy(), classes[:, :3])
    np.testing.assert_array_equal(trimmed_boxes.numpy(), boxes[:, :3])
    none_boxes, none_classes = T.trim_padding(boxes, -np.ones_like(classes))
    assert none_boxes.shape == (2, 1, 4) and none_classes.shape == (2, 1)
    # With a sampling budget above the anchor count nothing is random: the targets of the
    # 40-column padding equal those of the 3 real columns (and of the hand-checked case).
    full = T.rpn_targets(ANCHORS, boxes, classes, num_samples=12, positive_fraction=0.5)
    short = T.rpn_targets(ANCHORS, boxes[:, :3], classes[:, :3], num_samples=12, positive_fraction=0.5)
    for key in ("labels", "deltas"):
        np.testing.assert_array_equal(full[key].numpy(), short[key].numpy())
    np.testing.assert_array_equal(full["labels"].numpy(), [[1, 1, -1, 0, 0, 0], [0, 0, 0, 0, 0, 1]])


# One image: gt A (class 4), gt B (class 2), one padded gt.
ROI_GT = np.array([[[0, 0, 10, 20], [100, 100, 120, 120], PAD]], np.float32)
ROI_CLS = np.array([[4, 2, -1]], np.int32)
PROPOSALS = np.array([[[0, 0, 10, 10],          # IoU 0.5 with A -> fg
                       [200, 200, 210, 210],    # bg
                       [100, 100, 120, 120]]],  # invalid proposal
                     np.float32)
PROP_VALID = np.array([[True, True, False]])


def test_roi_targets_hand_checked_without_gt():
    out = T.roi_targets(PROPOSALS, PROP_VALID, ROI_GT, ROI_CLS, num_samples=4,
                        foreground_fraction=0.5, add_gt_boxes=False)
    np.testing.assert_array_equal(out["classes"].numpy(), [[4, 0, -1, -1]])
    np.testing.assert_allclose(out["rois"].numpy()[0],
                               [[0, 0, 10, 10], [200, 200, 210, 210], [0] * 4, [0] * 4])
    np.testing.assert_array_equal(out["matched_gt_index"].numpy(), [[0, -1, -1, -1]])
    np.testing.assert_allclose(out["matched_iou"].numpy(), [[0.5, 0, 0, 0]], atol=1e-6)
    # roi centre (5, 5) 10x10 vs gt centre (5, 10) 10x20, weights (10, 10, 5, 5).
    d = out["deltas"].numpy()[0]
    np.testing.assert_allclose(d[0], [0.0, 5.0, 0.0, 5 * math.log(2.0)], rtol=1e-5, atol=1e-6)
    assert not d[1:].any()


def test_roi_targets_adds_gt_boxes_and_pads():
    out = T.roi_targets(PROPOSALS, PROP_VALID, ROI_GT, ROI_CLS, num_samples=8,
                        foreground_fraction=0.5)
    classes = out["classes"].numpy()[0]
    assert sorted(classes[:3]) == [2, 4, 4] and classes[3] == 0
    np.testing.assert_array_equal(classes[4:], [-1] * 4)
    rois, idx = out["rois"].numpy()[0], out["matched_gt_index"].numpy()[0]
    iou, deltas = out["matched_iou"].numpy()[0], out["deltas"].numpy()[0]
    fg_rois = {tuple(r) for r in rois[:3]}
    assert (0, 0, 10, 20) in fg_rois and (100, 100, 120, 120) in fg_rois
    for r in range(3):
        assert classes[r] == ROI_CLS[0, idx[r]]
        if tuple(rois[r]) != (0, 0, 10, 10):  # a gt box itself: IoU 1, zero deltas
            assert iou[r] == 1.0 and not deltas[r].any()
    assert not rois[4:].any()
    assert np.isfinite(deltas).all()


def _random_case(rng, batch=2, num_props=600, num_gt=10):
    gt = np.full((batch, num_gt, 4), -1.0, np.float32)
    cls = np.full((batch, num_gt), -1, np.int32)
    props = np.zeros((batch, num_props, 4), np.float32)
    for b in range(batch):
        k = 3 + 4 * b
        yx = rng.uniform(0, 400, (k, 2))
        gt[b, :k] = np.concatenate([yx, yx + rng.uniform(20, 100, (k, 2))], 1)
        cls[b, :k] = rng.integers(1, 6, k)
        src = gt[b, rng.integers(0, k, num_props)]
        props[b] = src + rng.normal(0, 15, (num_props, 4)).astype(np.float32)
    props = np.concatenate([np.minimum(props[..., :2], props[..., 2:]),
                            np.maximum(props[..., :2], props[..., 2:])], -1)
    return props, gt, cls


def test_roi_targets_random_properties():
    rng = np.random.default_rng(0)
    props, gt, cls = _random_case(rng)
    valid = rng.uniform(size=props.shape[:2]) < 0.9
    out = {k: v.numpy() for k, v in T.roi_targets(props, valid, gt, cls).items()}
    assert out["rois"].shape == (2, 200, 4) and out["classes"].shape == (2, 200)
    for b in range(2):
        c, idx, iou = out["classes"][b], out["matched_gt_index"][b], out["matched_iou"][b]
        fg = c > 0
        assert 0 < fg.sum() <= 50  # round(200 * 0.25)
        assert (c >= 0).sum() == 200  # enough candidates: no padding
        n_fg = fg.sum()
        assert fg[:n_fg].all() and not fg[n_fg:].any()  # fg first
        np.testing.assert_array_equal(c[fg], cls[b, idx[fg]])
        assert (iou[fg] >= 0.5).all() and (iou[~fg] < 0.5).all()
        assert (idx[~fg] == -1).all()
        # the stored IoU is the IoU of the roi with its matched gt
        ious = B.iou(out["rois"][b][fg], gt[b]).numpy()
        np.testing.assert_allclose(ious[np.arange(n_fg), idx[fg]], iou[fg], rtol=1e-5)
        # deltas decode back to the matched gt
        back = B.decode(out["deltas"][b][fg], out["rois"][b][fg], (10.0, 10.0, 5.0, 5.0))
        np.testing.assert_allclose(back.numpy(), gt[b, idx[fg]], atol=1e-3)


def test_roi_targets_no_gt_image_is_all_background():
    rng = np.random.default_rng(1)
    props, gt, cls = _random_case(rng, batch=1, num_props=300)
    out = T.roi_targets(props, np.ones((1, 300), bool), gt, -np.ones_like(cls), num_samples=64)
    np.testing.assert_array_equal(out["classes"].numpy(), np.zeros((1, 64)))
    np.testing.assert_array_equal(out["matched_gt_index"].numpy(), -np.ones((1, 64)))


def test_targets_in_tf_function_static_shapes():
    rng = np.random.default_rng(2)
    props, gt, cls = _random_case(rng)
    anchors = np.concatenate([props[0], props[1]])[:1000]

    @tf.function
    def run(anchors, props, valid, gt, cls):
        return (T.rpn_targets(anchors, gt, cls),
                T.roi_targets(props, valid, gt, cls, num_samples=128))

    args = [tf.constant(anchors), tf.constant(props), tf.ones(props.shape[:2], tf.bool),
            tf.constant(gt), tf.constant(cls)]
    graph = run.get_concrete_function(*args).structured_outputs
    rpn, roi = graph
    assert rpn["labels"].shape == (2, 1000) and rpn["deltas"].shape == (2, 1000, 4)
    assert roi["rois"].shape == (2, 128, 4) and roi["deltas"].shape == (2, 128, 4)
    for key in ("classes", "matched_gt_index", "matched_iou"):
        assert roi[key].shape == (2, 128)
    rpn, roi = run(*args)
    assert (rpn["labels"].numpy() == 1).sum() > 0 and (roi["classes"].numpy() > 0).sum() > 0
