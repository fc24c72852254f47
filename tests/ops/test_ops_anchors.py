"""Tests for internet_tf.ops.anchors (hand-checked coordinates and counts)."""
import numpy as np
import tensorflow as tf

from internet_tf.ops import anchors as A
from internet_tf.ops.levels import FPN_STRIDES, level_strides


def test_feature_size():
    assert A.feature_size(512, 2) == 128
    assert A.feature_size(512, 6) == 8
    assert A.feature_size(100, 3) == 13  # ceil(12.5)
    assert A.feature_size(100, 6) == 2


def test_tiny_image_level5_exact_coordinates():
    out = A.generate_anchors(64, levels=(5,), sizes=(256,))
    a = out[5].numpy()
    assert a.shape == (2 * 2 * 3, 4) and a.dtype == np.float32
    s2 = 256 / np.sqrt(2.0)  # 181.019...: h of ratio 0.5, w of ratio 2
    # location (y=0, x=0), centre (16, 16): ratios 0.5, 1, 2.
    np.testing.assert_allclose(a[0], [16 - s2 / 2, 16 - s2, 16 + s2 / 2, 16 + s2], rtol=1e-6)
    np.testing.assert_allclose(a[0], [-74.50967, -165.01934, 106.50967, 197.01934], rtol=1e-6)
    np.testing.assert_allclose(a[1], [-112.0, -112.0, 144.0, 144.0])
    np.testing.assert_allclose(a[2], [-165.01934, -74.50967, 197.01934, 106.50967], rtol=1e-6)
    # (y=0, x=1): centre (16, 48); (y=1, x=0): centre (48, 16); (y=1, x=1): (48, 48).
    np.testing.assert_allclose(a[4], [-112.0, -80.0, 144.0, 176.0])
    np.testing.assert_allclose(a[7], [-80.0, -112.0, 176.0, 144.0])
    np.testing.assert_allclose(a[10], [-80.0, -80.0, 176.0, 176.0])
    # ratio r = h / w.
    h, w = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(h / w, np.tile([0.5, 1.0, 2.0], 4), rtol=1e-5)


def test_counts_per_level_default():
    out = A.generate_anchors(512)
    assert sorted(out) == [2, 3, 4, 5, 6]
    counts = {l: int(v.shape[0]) for l, v in out.items()}
    assert counts == {2: 49152, 3: 12288, 4: 3072, 5: 768, 6: 192}
    assert counts == {l: A.feature_size(512, l) ** 2 * 3 for l in out} and sum(counts.values()) == 65472
    # Level 2 first anchor: size 32 ratio 0.5 centred at (2, 2).
    s2 = 32 / np.sqrt(2.0)
    np.testing.assert_allclose(out[2][0].numpy(), [2 - s2 / 2, 2 - s2, 2 + s2 / 2, 2 + s2],
                               rtol=1e-6)


def test_concat_levels_unbatched_and_batched():
    image_size = 96
    anchors = A.generate_anchors(image_size)
    total = sum(int(a.shape[0]) for a in anchors.values())
    flat = A.concat_levels(anchors)
    assert flat.shape == (total, 4)
    np.testing.assert_array_equal(flat.numpy(), np.concatenate([anchors[l].numpy() for l in sorted(anchors)]))
    # Batched [B, n_l, k] per level (e.g. RPN outputs), inserted in non-sorted order.
    per_level = {l: tf.fill([2, int(anchors[l].shape[0]), 1], float(l)) for l in (6, 2, 4, 3, 5)}
    cat = A.concat_levels(per_level)
    assert cat.shape == (2, total, 1)
    assert cat[0, 0, 0].numpy() == 2.0 and cat[1, -1, 0].numpy() == 6.0
    np.testing.assert_array_equal(cat.numpy(), np.concatenate([per_level[l].numpy() for l in sorted(per_level)], 1))
    scores = {l: tf.zeros([2, int(anchors[l].shape[0])]) for l in anchors}  # [B, n_l]
    assert A.concat_levels(scores).shape == (2, total)
    assert A.concat_levels(scores, axis=1).shape == (2, total)


def test_vgg_strides_grids_and_centres():
    # VGG-16's levels (ops/levels.py: level 2 at stride 16, each next one twice): a 192-px
    # input gives 12, 6, 3, 2 (ceil(1.5)) and 1 cells; centres at (i + 0.5) * stride.
    strides = level_strides(16)
    assert strides == {2: 16, 3: 32, 4: 64, 5: 128, 6: 256}
    assert [A.feature_size(192, l, strides) for l in (2, 3, 4, 5, 6)] == [12, 6, 3, 2, 1]
    out = A.generate_anchors(192, sizes=(32, 64, 128, 256, 512), aspect_ratios=(1.0,), strides=strides)
    assert {l: int(a.shape[0]) for l, a in out.items()} == {2: 144, 3: 36, 4: 9, 5: 4, 6: 1}
    a5 = out[5].numpy()  # 2 x 2 grid of 256-px squares centred at 64 and 192
    np.testing.assert_allclose(a5, [[-64, -64, 192, 192], [-64, 64, 192, 320],
                                    [64, -64, 320, 192], [64, 64, 320, 320]])
    np.testing.assert_allclose(out[2].numpy()[13], [8, 8, 40, 40])  # (y=1, x=1): centre (24, 24)
    # The default is the ResNets' stride 2**l.
    assert FPN_STRIDES == {l: 2 ** l for l in (2, 3, 4, 5, 6)}
    np.testing.assert_array_equal(A.generate_anchors(96)[3].numpy(),
                                  A.generate_anchors(96, strides=level_strides(4))[3].numpy())
