"""Tests for internet_tf.ops.proposals: proposal generation on hand-built
anchors (top-k per level, decode, clip, NMS per level, post-NMS top-k, padding)."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.ops import proposals
from internet_tf.ops import anchors as anchor_ops
from reference import box_iou

# Hand-built anchors per level for a 64 x 64 image, with their objectness logits.
ANCHORS = {
    2: [([0, 0, 16, 16], 5.0),       # a0  best overall
        ([1, 1, 17, 17], 4.0),       # a1  IoU 225/287 = 0.78 with a0 (same level) -> suppressed
        ([40, 40, 56, 56], -1.0),    # a2
        ([-8, -8, 24, 24], 3.0)],    # a3  clipped to (0, 0, 24, 24)
    3: [([0, 0, 16, 16], 4.5),       # b0  identical to a0 but on another level -> kept
        ([20, 20, 52, 52], -2.0),    # b1
        ([30, 30, 80, 80], 2.0)],    # b2  clipped to (30, 30, 64, 64)
    4: [([4, 4, 60, 60], 0.0)],
    5: [([-100, -100, 200, 200], -3.0)],  # clipped to the whole image
    6: [([10, 0, 30, 64], -4.0)],
}
# Expected proposals (clipped), by descending objectness.
EXPECTED = [
    [0, 0, 16, 16],     # a0 5.0
    [0, 0, 16, 16],     # b0 4.5
    [0, 0, 24, 24],     # a3 3.0
    [30, 30, 64, 64],   # b2 2.0
    [4, 4, 60, 60],     # l4 0.0
    [40, 40, 56, 56],   # a2 -1.0
    [20, 20, 52, 52],   # b1 -2.0
    [0, 0, 64, 64],     # l5 -3.0
    [10, 0, 30, 64],    # l6 -4.0
]
INFO_FULL = [64.0, 64.0, 1.0, 0.0]


def _inputs(batch_logits=None):
    anchors = {l: tf.constant([a for a, _ in v], tf.float32) for l, v in ANCHORS.items()}
    logits = [s for l in proposals.LEVELS for _, s in ANCHORS[l]]
    if batch_logits is None:
        batch_logits = [logits]
    n = len(logits)
    return anchors, tf.constant(batch_logits, tf.float32), tf.zeros([len(batch_logits), n, 4])




def test_hand_built_case_is_consistent():
    assert box_iou([0, 0, 16, 16], [1, 1, 17, 17]) == pytest.approx(225 / 287)
    # No other same-level pair overlaps above 0.7 after clipping.
    assert box_iou([0, 0, 16, 16], [0, 0, 24, 24]) == pytest.approx(256 / 576)


def test_generate_proposals_topk_clip_and_per_level_nms():
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([INFO_FULL]),
                                          pre_nms_topk=10, post_nms_topk=12, nms_iou=0.7)
    assert props.shape == (1, 12, 4) and valid.shape == (1, 12)
    assert valid.dtype == tf.bool
    n = len(EXPECTED)
    np.testing.assert_array_equal(valid.numpy()[0], [True] * n + [False] * (12 - n))
    np.testing.assert_allclose(props.numpy()[0, :n], EXPECTED, atol=1e-4)
    np.testing.assert_array_equal(props.numpy()[0, n:], 0.0)  # zero padding


def test_generate_proposals_post_nms_topk_cap():
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([INFO_FULL]),
                                          pre_nms_topk=10, post_nms_topk=3, nms_iou=0.7)
    assert props.shape == (1, 3, 4)
    assert valid.numpy().all()
    np.testing.assert_allclose(props.numpy()[0], EXPECTED[:3], atol=1e-4)


def test_generate_proposals_pre_nms_topk_is_per_level():
    # pre_nms_topk=2: level 2 keeps a0, a1 (a1 then suppressed), so a3 (3.0) is gone even
    # though it outscores b2; level 3 keeps b0, b2.
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([INFO_FULL]),
                                          pre_nms_topk=2, post_nms_topk=8, nms_iou=0.7)
    expected = [[0, 0, 16, 16], [0, 0, 16, 16], [30, 30, 64, 64], [4, 4, 60, 60],
                [0, 0, 64, 64], [10, 0, 30, 64]]
    np.testing.assert_array_equal(valid.numpy()[0], [True] * 6 + [False] * 2)
    np.testing.assert_allclose(props.numpy()[0, :6], expected, atol=1e-4)


def test_generate_proposals_nms_threshold_is_used():
    # At NMS 0.8 the 0.78 overlap of a1 with a0 survives.
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([INFO_FULL]),
                                          pre_nms_topk=10, post_nms_topk=12, nms_iou=0.8)
    assert int(tf.reduce_sum(tf.cast(valid, tf.int32))) == 10
    np.testing.assert_allclose(props.numpy()[0, 2], [1, 1, 17, 17], atol=1e-4)


def test_generate_proposals_batch_with_own_image_sizes_and_deltas():
    # Image 1: different logits (l6 best), resized region 32 x 48 (orig 16 x 24, scale 2),
    # and a delta moving a2 (dy = 0.5 -> +8 px).
    base = [s for l in proposals.LEVELS for _, s in ANCHORS[l]]
    second = list(base)
    second[-1] = 10.0   # l6 anchor first
    anchors, logits, _ = _inputs([base, second])
    deltas = np.zeros((2, len(base), 4), np.float32)
    deltas[1, 2] = [0.5, 0.0, 0.0, 0.0]  # a2 of image 1: (48, 40, 64, 56) -> clipped (32, 40, 32, 48)
    deltas[1, 1] = [0.0, 0.0, np.log(2.0), 0.0]  # a1 of image 1: centre 9, h 32 -> (-7, 1, 25, 17)
    info = tf.constant([INFO_FULL, [16.0, 24.0, 2.0, 1.0]])
    props, valid = proposals.generate_proposals(logits, tf.constant(deltas), anchors, info,
                                          pre_nms_topk=10, post_nms_topk=12, nms_iou=0.7)
    # Image 0 is unchanged by image 1's inputs.
    np.testing.assert_allclose(props.numpy()[0, :len(EXPECTED)], EXPECTED, atol=1e-4)
    p1 = props.numpy()[1]
    np.testing.assert_allclose(p1[0], [10, 0, 30, 48], atol=1e-4)           # l6, clipped to width 48
    np.testing.assert_allclose(p1[1], [0, 0, 16, 16], atol=1e-4)            # a0
    np.testing.assert_allclose(p1[2], [0, 0, 16, 16], atol=1e-4)            # b0 (other level)
    # a1 decoded to (-7, 1, 25, 17) -> clipped (0, 1, 25, 17): IoU with a0 = 240/(256+400-240) < 0.7
    np.testing.assert_allclose(p1[3], [0, 1, 25, 17], atol=1e-4)
    for box in p1[valid.numpy()[1]]:
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= 32 + 1e-4 and box[3] <= 48 + 1e-4


def test_generate_proposals_min_size_removes_small_boxes():
    # min_size=20: boxes with a side < 20 px (a0, a1, a2, b0 are 16 px; l6 is 20 px high and
    # stays) must not be valid proposals.
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([INFO_FULL]),
                                          pre_nms_topk=10, post_nms_topk=12, nms_iou=0.7,
                                          min_size=20.0)
    kept = props.numpy()[0][valid.numpy()[0]]
    expected = [[0, 0, 24, 24], [30, 30, 64, 64], [4, 4, 60, 60], [20, 20, 52, 52],
                [0, 0, 64, 64], [10, 0, 30, 64]]
    np.testing.assert_allclose(kept, expected, atol=1e-4)


def test_generate_proposals_real_anchors_shapes_and_no_gradient():
    # Real FPN anchors for a 64 image: 16x16, 8x8, 4x4, 2x2, 1x1 cells x 3 ratios.
    anchors = anchor_ops.generate_anchors(64)
    n = sum(int(a.shape[0]) for a in anchors.values())
    assert n == 3 * (256 + 64 + 16 + 4 + 1)
    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(2, n)).astype(np.float32))
    deltas = tf.Variable(rng.normal(scale=0.1, size=(2, n, 4)).astype(np.float32))
    info = tf.constant([INFO_FULL, [40.0, 64.0, 1.0, 1.0]])
    with tf.GradientTape() as tape:
        props, valid = proposals.generate_proposals(logits, deltas, anchors, info, pre_nms_topk=50,
                                              post_nms_topk=40, nms_iou=0.7)
        s = tf.reduce_sum(props)
    assert tape.gradient(s, [logits, deltas]) == [None, None]
    assert props.shape == (2, 40, 4) and valid.shape == (2, 40)
    p, v = props.numpy(), valid.numpy()
    assert v[:, 0].all()
    np.testing.assert_array_equal(p[~v], 0.0)
    assert (p[..., 2] >= p[..., 0]).all() and (p[..., 3] >= p[..., 1]).all()
    assert p[1, :, 2].max() <= 40 + 1e-4 and p[0, :, 2].max() <= 64 + 1e-4
    # Valid-first layout: once invalid, always invalid.
    for b in range(2):
        nv = int(v[b].sum())
        assert v[b, :nv].all() and not v[b, nv:].any()


def test_generate_proposals_zero_area_boxes_in_padding_are_not_valid():
    # Resized region 32 x 48 (orig 16 x 24, scale 2) inside the 64 x 64 input: a2
    # (40, 40, 56, 56) and b1's lower part lie in the padding. a2 clips to (32, 40, 32, 48),
    # an empty box; an empty proposal carries no image content and must not be marked valid
    # (Detectron drops empty boxes even with min_size 0).
    anchors, logits, deltas = _inputs()
    props, valid = proposals.generate_proposals(logits, deltas, anchors, tf.constant([[16.0, 24.0, 2.0, 0.0]]),
                                          pre_nms_topk=10, post_nms_topk=12, nms_iou=0.7)
    p = props.numpy()[0][valid.numpy()[0]]
    area = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    assert (area > 0).all(), f"empty proposals marked valid: {p[area <= 0].tolist()}"
    assert len(p) == 8  # all but a1 (suppressed) and a2 (empty)
