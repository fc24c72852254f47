"""Tests for internet_tf.ops.roi_align: Eq. 6 level assignment (hand-checked) and
RoIAlign against an independent NumPy reference (loop-based bilinear sampling)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from internet_tf.ops import roi_align as R
from internet_tf.ops.levels import level_strides


def _square(side, y0=0.0, x0=0.0):
    return [y0, x0, y0 + side, x0 + side]


def _levels(boxes, **kw):
    return R.assign_levels(tf.constant(boxes, tf.float32), **kw).numpy().tolist()


# ---------------------------------------------------------------------------------------
# assign_levels (paper Eq. 6)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("box,expected", [
    (_square(224), 4),            # exactly canonical: 4 + log2(1) = 4
    (_square(223), 3),            # 4 + log2(223/224) = 3.9936 -> 3
    (_square(112), 3),            # 4 - 1 = 3 exactly
    (_square(111), 2),            # 3 + log2(111/112) = 2.987 -> 2
    (_square(448), 5),            # 4 + 1 = 5 exactly
    (_square(447), 4),            # 4.9968 -> 4
    (_square(1000), 5),           # 6.158 -> clamped to 5
    (_square(10), 2),             # -0.49 -> clamped to 2
    ([0.0, 0.0, 100.0, 400.0], 3),  # sqrt(40000) = 200: 4 + log2(200/224) = 3.84 -> 3
    ([0.0, 0.0, 400.0, 100.0], 3),  # transposed: same area
    ([5.0, 7.0, 5.0 + 56.0, 7.0 + 224.0], 3),  # sqrt(56*224) = 112 exactly -> 3
])
def test_assign_levels_floor_hand_checked(box, expected):
    assert _levels([box]) == [expected]


def test_assign_levels_batched_shape_and_dtype():
    boxes = tf.constant([[_square(224), _square(111)], [_square(448), _square(10)]], tf.float32)
    levels = R.assign_levels(boxes)
    assert levels.dtype == tf.int32
    assert levels.shape == (2, 2)
    np.testing.assert_array_equal(levels.numpy(), [[4, 2], [5, 2]])


def test_assign_levels_round_differs_from_floor():
    # 160: log2(160/224) = -0.485 -> raw 3.515: floor 3, round 4.
    # 200: log2(200/224) = -0.163 -> raw 3.837: floor 3, round 4.
    # 130: log2(130/224) = -0.785 -> raw 3.215: floor 3, round 3.
    # 300: log2(300/224) = +0.421 -> raw 4.421: floor 4, round 4.
    # 320: log2(320/224) = +0.515 -> raw 4.515: floor 4, round 5.
    boxes = [_square(s) for s in (160, 200, 130, 300, 320, 224)]
    for s in (160, 200, 130, 300, 320):
        raw = 4 + math.log2(s / 224)
        assert abs(raw - round(raw)) > 0.01  # far from the .5 tie and from integers
    assert _levels(boxes, rounding="floor") == [3, 3, 3, 4, 4, 4]
    assert _levels(boxes, rounding="round") == [4, 4, 3, 4, 5, 4]


def test_assign_levels_rejects_unknown_rounding():
    with pytest.raises(ValueError):
        R.assign_levels(tf.constant([_square(10)], tf.float32), rounding="ceil")


def test_assign_levels_base_40_more_on_higher():
    # l = floor(4 + log2(sqrt(wh) / 40)), clamped to [2, 5].
    #  40 -> 4;  39 -> 3.96 -> 3;  20 -> 3;  19 -> 2.93 -> 2;  80 -> 5;  79 -> 4.98 -> 4;
    #  10 -> 2;  112 -> 5.49 -> 5 (where base 224 gives 3);  224 -> 6.49 -> clamp 5.
    sides = (40, 39, 20, 19, 80, 79, 10, 112, 224)
    assert _levels([_square(s) for s in sides], base=40.0) == [4, 3, 3, 2, 5, 4, 2, 5, 5]
    # The same boxes with the default base land lower or equal everywhere.
    default = _levels([_square(s) for s in sides])
    assert default == [2, 2, 2, 2, 2, 2, 2, 3, 4]


def test_assign_levels_custom_clamp_range():
    boxes = [_square(s) for s in (10, 224, 1000)]
    assert _levels(boxes, min_level=3, max_level=4) == [3, 4, 4]


def test_assign_levels_zero_and_inverted_boxes_are_finite():
    boxes = tf.constant([[10.0, 10.0, 10.0, 10.0],      # zero area
                         [10.0, 10.0, 10.0, 50.0],      # zero height
                         [-1.0, -1.0, -1.0, -1.0],      # padding
                         [50.0, 50.0, 10.0, 10.0],      # inverted
                         [0.0, 0.0, 0.0, 0.0]], tf.float32)
    levels = R.assign_levels(boxes)
    np.testing.assert_array_equal(levels.numpy(), [2, 2, 2, 2, 2])
    levels_r = R.assign_levels(boxes, rounding="round")
    np.testing.assert_array_equal(levels_r.numpy(), [2, 2, 2, 2, 2])


# ---------------------------------------------------------------------------------------
# RoIAlign vs an independent NumPy reference
# ---------------------------------------------------------------------------------------

def _bilinear_zero_outside(fmap, y, x):
    """fmap [H, W, C]; (y, x) in pixel-index coords (centre of pixel i is i).

    Zero outside [0, H-1] x [0, W-1]; bilinear inside (including between the last two rows).
    """
    h, w, _ = fmap.shape
    if y < 0 or y > h - 1 or x < 0 or x > w - 1:
        return np.zeros(fmap.shape[-1], np.float64)
    y_lo, x_lo = int(math.floor(y)), int(math.floor(x))
    y_hi, x_hi = min(y_lo + 1, h - 1), min(x_lo + 1, w - 1)
    ly, lx = y - y_lo, x - x_lo
    return ((1 - ly) * (1 - lx) * fmap[y_lo, x_lo] + (1 - ly) * lx * fmap[y_lo, x_hi]
            + ly * (1 - lx) * fmap[y_hi, x_lo] + ly * lx * fmap[y_hi, x_hi])


def _ref_roi_align(fmap, box, stride, size, ratio):
    """fmap [H, W, C] float64, box (y0, x0, y1, x1) in input pixels -> [S, S, C]."""
    y0, x0, y1, x1 = [float(v) for v in box]
    bin_h = (y1 - y0) / (stride * size)
    bin_w = (x1 - x0) / (stride * size)
    out = np.zeros((size, size, fmap.shape[-1]), np.float64)
    for i in range(size):
        for j in range(size):
            acc = np.zeros(fmap.shape[-1], np.float64)
            for ky in range(ratio):
                for kx in range(ratio):
                    yy = y0 / stride + (i + (ky + 0.5) / ratio) * bin_h - 0.5
                    xx = x0 / stride + (j + (kx + 0.5) / ratio) * bin_w - 0.5
                    acc += _bilinear_zero_outside(fmap, yy, xx)
            out[i, j] = acc / (ratio * ratio)
    return out


def _test_boxes(stride, fsize, rng):
    """Boxes (input pixels) for a map of side ``fsize`` and ``stride``: well inside, touching
    each border, covering the whole image, and tiny / thin ones."""
    img = stride * fsize
    inside = []
    for _ in range(5):
        yx = rng.uniform(0.2 * img, 0.5 * img, 2)
        hw = rng.uniform(0.1 * img, 0.45 * img, 2)
        inside.append([yx[0], yx[1], yx[0] + hw[0], yx[1] + hw[1]])
    border = [
        [0.0, 0.0, 0.4 * img, 0.3 * img],                 # top-left corner
        [0.6 * img, 0.55 * img, img, img],                # bottom-right corner
        [0.0, 0.0, img, img],                             # whole image
        [0.3 * img, 0.0, 0.5 * img, img],                 # full-width strip
        [0.25 * img, 0.3 * img, 0.25 * img + 3.0, 0.3 * img + 5.0],  # smaller than a cell
    ]
    return np.asarray(inside + border, np.float32)


@pytest.mark.parametrize("stride", [4, 8])
def test_crop_level_matches_numpy_reference(stride):
    rng = np.random.default_rng(stride)
    feats = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    boxes = _test_boxes(stride, 16, rng)
    batch_idx = np.arange(len(boxes)) % 2
    out = R.crop_level(tf.constant(feats), tf.constant(boxes), tf.constant(batch_idx, tf.int32),
                       stride, output_size=14, sampling_ratio=2).numpy()
    assert out.shape == (len(boxes), 14, 14, 3)
    for k, (box, b) in enumerate(zip(boxes, batch_idx)):
        ref = _ref_roi_align(feats[b].astype(np.float64), box, stride, 14, 2)
        np.testing.assert_allclose(out[k], ref, atol=1e-4, err_msg=f"box {k} {box} stride {stride}")


def test_crop_level_sampling_ratio_1_and_other_sizes():
    rng = np.random.default_rng(7)
    feats = rng.normal(size=(1, 12, 10, 2)).astype(np.float32)  # non-square map
    boxes = np.asarray([[3.0, 5.0, 40.0, 33.0], [0.0, 0.0, 48.0, 40.0]], np.float32)
    for ratio, size in ((1, 7), (3, 5), (2, 4)):
        out = R.crop_level(tf.constant(feats), tf.constant(boxes), tf.zeros([2], tf.int32), 4,
                           output_size=size, sampling_ratio=ratio).numpy()
        for k, box in enumerate(boxes):
            ref = _ref_roi_align(feats[0].astype(np.float64), box, 4, size, ratio)
            np.testing.assert_allclose(out[k], ref, atol=1e-4, err_msg=f"ratio {ratio} size {size}")


def test_crop_level_constant_map_inside_gives_constant():
    # A box whose samples all lie inside the map returns the constant exactly; a
    # box starting at 0 has its first sample row/column outside (y = -0.25 for a
    # 1-cell-per-bin crop) and those samples are zero.
    feats = tf.fill([1, 8, 8, 1], 3.0)
    inner = R.crop_level(feats, tf.constant([[8.0, 8.0, 24.0, 24.0]]), tf.zeros([1], tf.int32), 4,
                         output_size=4, sampling_ratio=2).numpy()
    np.testing.assert_allclose(inner, 3.0, atol=1e-6)
    corner = R.crop_level(feats, tf.constant([[0.0, 0.0, 16.0, 16.0]]), tf.zeros([1], tf.int32), 4,
                          output_size=4, sampling_ratio=2).numpy()[0, ..., 0]
    # bin (0,0): samples at y, x in {-0.25, 0.25}: one of four inside -> 3/4.
    assert corner[0, 0] == pytest.approx(0.75, abs=1e-6)
    assert corner[0, 1] == pytest.approx(1.5, abs=1e-6)   # first row: half the samples
    assert corner[1, 1] == pytest.approx(3.0, abs=1e-6)


def test_multilevel_roi_align_picks_own_level_and_keeps_order():
    # Distinct constants per level: every output value must equal its RoI's level constant
    # (boxes are chosen so all samples lie inside their level's map).
    image = 256
    features = {l: tf.fill([2, image // 2 ** l, image // 2 ** l, 2], float(10 * l))
                for l in (2, 3, 4, 5, 6)}
    boxes = np.asarray([
        [[64.0, 64.0, 128.0, 128.0],   # 64 px
         [32.0, 32.0, 224.0, 224.0],   # 192 px
         [40.0, 40.0, 72.0, 72.0],     # 32 px
         [48.0, 48.0, 168.0, 168.0]],  # 120 px
        [[60.0, 60.0, 196.0, 196.0],   # 136 px
         [100.0, 100.0, 120.0, 120.0],  # 20 px
         [16.0, 16.0, 240.0, 240.0],   # 224 px
         [64.0, 64.0, 128.0, 128.0]],
    ], np.float32)
    levels = np.asarray([[2, 5, 3, 4], [4, 2, 5, 3]], np.int32)  # explicit, not from Eq. 6
    out = R.multilevel_roi_align(features, tf.constant(boxes), tf.constant(levels),
                                 output_size=4, sampling_ratio=2).numpy()
    assert out.shape == (2, 4, 4, 4, 2)
    # All samples lie inside the maps here, so each RoI is its level's constant; the
    # reference check also pins the exact values.
    for b in range(2):
        for r in range(4):
            l = int(levels[b, r])
            ref = _ref_roi_align(np.full((image // 2 ** l,) * 2 + (2,), 10.0 * l), boxes[b, r],
                                 2 ** l, 4, 2)
            np.testing.assert_allclose(out[b, r], ref, atol=1e-4, err_msg=f"roi ({b},{r})")
            assert np.max(out[b, r]) == pytest.approx(10.0 * l, abs=1e-4)


def test_multilevel_roi_align_random_features_batch_order():
    # Random per-level features differing across the batch: each RoI must be cropped from
    # its own image and level, outputs in input order.
    rng = np.random.default_rng(3)
    image = 128
    np_feats = {l: rng.normal(size=(2, image // 2 ** l, image // 2 ** l, 3)).astype(np.float32)
                for l in (2, 3, 4, 5)}
    boxes = np.asarray([
        # (0, 0, 128, 128) would put a sample exactly on the last column (x = 3.0 = W - 1 on
        # the 4x4 P5), where float32 rounding decides between "inside" and "zero": avoid it.
        [[10.0, 12.0, 60.0, 70.0], [0.0, 0.0, 126.0, 127.0], [30.0, 5.0, 50.0, 30.0]],
        [[20.0, 20.0, 100.0, 90.0], [5.0, 60.0, 25.0, 120.0], [64.0, 0.0, 128.0, 64.0]],
    ], np.float32)
    levels = np.asarray([[3, 5, 2], [2, 4, 3]], np.int32)
    out = R.multilevel_roi_align({l: tf.constant(f) for l, f in np_feats.items()},
                                 tf.constant(boxes), tf.constant(levels),
                                 output_size=14, sampling_ratio=2).numpy()
    assert out.shape == (2, 3, 14, 14, 3)
    for b in range(2):
        for r in range(3):
            l = int(levels[b, r])
            ref = _ref_roi_align(np_feats[l][b].astype(np.float64), boxes[b, r], 2 ** l, 14, 2)
            np.testing.assert_allclose(out[b, r], ref, atol=1e-4, err_msg=f"roi ({b},{r}) level {l}")


def test_multilevel_roi_align_with_eq6_levels_in_tf_function():
    # Graph mode with Eq. 6 levels; a level with no RoIs must not break dynamic_stitch.
    rng = np.random.default_rng(5)
    np_feats = {l: rng.normal(size=(1, 128 // 2 ** l, 128 // 2 ** l, 2)).astype(np.float32)
                for l in (2, 3, 4, 5, 6)}
    boxes = np.asarray([[[0.0, 0.0, 20.0, 20.0], [0.0, 0.0, 120.0, 128.0]]], np.float32)

    @tf.function
    def run(feats, b):
        lv = R.assign_levels(b)
        return lv, R.multilevel_roi_align(feats, b, lv, output_size=14, sampling_ratio=2)

    lv, out = run({l: tf.constant(f) for l, f in np_feats.items()}, tf.constant(boxes))
    # sqrt(20*20) = 20 -> 2;  sqrt(120*128) = 123.9 -> 4 + log2(0.553) = 3.14 -> 3.
    np.testing.assert_array_equal(lv.numpy(), [[2, 3]])
    for r, l in enumerate((2, 3)):
        ref = _ref_roi_align(np_feats[l][0].astype(np.float64), boxes[0, r], 2 ** l, 14, 2)
        np.testing.assert_allclose(out.numpy()[0, r], ref, atol=1e-4)


def test_multilevel_roi_align_reads_the_given_strides():
    # VGG-16's levels have strides 16-128 (level_strides(16)), not 2**l: each RoI is cropped
    # with its level's stride from the dict, as the NumPy reference does with that stride.
    rng = np.random.default_rng(11)
    image = 256
    strides = level_strides(16)
    np_feats = {l: rng.normal(size=(1, image // strides[l], image // strides[l], 2)).astype(np.float32)
                for l in (2, 3, 4, 5)}
    boxes = np.asarray([[[10.0, 20.0, 90.0, 140.0], [40.0, 30.0, 250.0, 200.0], [0.0, 0.0, 200.0, 250.0]]],
                       np.float32)
    levels = np.asarray([[2, 3, 4]], np.int32)
    feats = {l: tf.constant(f) for l, f in np_feats.items()}
    out = R.multilevel_roi_align(feats, tf.constant(boxes), tf.constant(levels), output_size=7,
                                 sampling_ratio=2, strides=strides).numpy()
    for r, l in enumerate((2, 3, 4)):
        ref = _ref_roi_align(np_feats[l][0].astype(np.float64), boxes[0, r], strides[l], 7, 2)
        np.testing.assert_allclose(out[0, r], ref, atol=1e-4, err_msg=f"level {l}")
    # With the default (2**l) the same call reads the maps at the wrong scale.
    default = R.multilevel_roi_align(feats, tf.constant(boxes), tf.constant(levels), output_size=7,
                                     sampling_ratio=2).numpy()
    assert not np.allclose(default, out, atol=1e-3)
