"""Feature intertwiner pieces: Eq. 7 splits, make-up/critic shapes (Tables 6, 7), Eq. 3
distances and the per-level loss, the Table 2c merge."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.intertwiner import critic as critic_lib, loss, make_up as make_up_lib, merge as merge_lib, sets


def test_eq7_level_split_hand_checked():
    classes = tf.constant([[3, 0, 2, 1, 4, -1, 2]])
    levels = tf.constant([[2, 2, 3, 4, 5, 3, 2]])
    expected = {  # (small, large): small = fg at l; large = fg at m > l; bg and padding never
        2: ([1, 0, 0, 0, 0, 0, 1], [0, 0, 1, 1, 1, 0, 0]),
        3: ([0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0]),
        4: ([0, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0]),
        5: ([0, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0]),
    }
    for level, (small, large) in expected.items():
        s, l = sets.small_large_masks(classes, levels, level)
        np.testing.assert_array_equal(s.numpy()[0], np.array(small, bool), err_msg=f"small {level}")
        np.testing.assert_array_equal(l.numpy()[0], np.array(large, bool), err_msg=f"large {level}")


def test_by_roi_size_split_hand_checked():
    # On level 2 the RoI output (14 cells of stride 4) spans 56 px: a 40 px RoI is small,
    # a 60 px RoI on the same level is large, every foreground RoI above level 2 is large.
    rois = tf.constant([[[0, 0, 40, 40], [0, 0, 60, 60], [0, 0, 120, 120], [0, 0, 10, 10]]], tf.float32)
    classes = tf.constant([[1, 2, 3, 0]])
    levels = tf.constant([[2, 2, 3, 2]])
    small, large = sets.small_large_masks(classes, levels, 2, split="roi_size", rois=rois)
    np.testing.assert_array_equal(small.numpy()[0], [True, False, False, False])
    np.testing.assert_array_equal(large.numpy()[0], [False, True, True, False])
    with pytest.raises(ValueError, match="split"):
        sets.small_large_masks(classes, levels, 2, split="random")


def test_make_up_and_critic_shapes_follow_tables_6_and_7():
    make_up = make_up_lib.MakeUp(8)
    x = tf.random.normal([2, 5, 14, 14, 8])
    levels = tf.constant([[2, 3, 4, 5, 2], [5, 5, 2, 3, 3]])
    y = make_up(x, levels, training=True)
    assert y.shape == x.shape and float(tf.reduce_min(y)) >= 0.0  # ReLU output
    assert len(make_up.units) == 4 and len(make_up_lib.MakeUp(8, shared=True).units) == 1
    critic = critic_lib.Critic(hidden=16, dim=32)
    out = critic.on_rois(y, training=True)
    assert out.shape == (2, 5, 32)
    assert float(tf.reduce_min(out)) >= 0.5 and float(tf.reduce_max(out)) < 1.0  # sigmoid(ReLU)
    assert critic(tf.zeros([0, 14, 14, 8])).shape == (0, 32)  # no RoIs: empty, no crash


def test_whole_window_conv_is_the_conv_as_a_matrix_product():
    from internet_tf.methods.intertwiner.units import WindowConv2D

    window = WindowConv2D(6, 7, padding="valid", use_bias=False)
    x = tf.random.normal([3, 7, 7, 5])
    y = window(x)
    reference = tf.nn.conv2d(x, window.kernel, 1, "VALID")
    assert window.kernel.shape == (7, 7, 5, 6) and y.shape == (3, 1, 1, 6)  # the conv's layout
    np.testing.assert_allclose(y.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    # Hand-checked: a one-hot input reads that kernel row.
    one_hot = np.zeros([1, 7, 7, 5], np.float32)
    one_hot[0, 2, 4, 1] = 2.0
    np.testing.assert_allclose(window(one_hot).numpy()[0, 0, 0], 2.0 * window.kernel.numpy()[2, 4, 1], rtol=1e-6)
    larger = tf.random.normal([2, 9, 9, 5])  # another window size: the ordinary conv
    np.testing.assert_allclose(window(larger).numpy(), tf.nn.conv2d(larger, window.kernel, 1, "VALID").numpy(),
                               rtol=1e-5, atol=1e-5)
    critic = critic_lib.Critic(hidden=8, dim=4, extra_conv=True)
    assert [type(u[0]) for u in (critic.reduce, critic.embed, critic.extra)] == [
        keras.layers.Conv2D, WindowConv2D, WindowConv2D]


def test_make_up_uses_each_levels_own_layer():
    make_up = make_up_lib.MakeUp(4)
    x = tf.random.normal([1, 2, 14, 14, 4])
    make_up(x, tf.constant([[2, 3]]))
    # Zero the level-3 conv: only the RoI on level 3 changes.
    before = make_up(x, tf.constant([[2, 3]])).numpy()
    conv3 = make_up.units[1][0]
    conv3.kernel.assign(tf.zeros_like(conv3.kernel))
    after = make_up(x, tf.constant([[2, 3]])).numpy()
    np.testing.assert_allclose(before[0, 0], after[0, 0])
    assert not np.allclose(before[0, 1], after[0, 1])


def test_distances_hand_checked():
    f = tf.constant([[0.5, 0.5], [0.6, 0.8]])
    b = tf.constant([[0.5, 1.0], [0.6, 0.8]])
    # l2 / l1 are means over the feature dimensions: (0.5² + 0) / 2 and (0.5 + 0) / 2.
    np.testing.assert_allclose(loss.intertwiner_distance(f, b, "l2").numpy(), [0.125, 0.0], atol=1e-7)
    np.testing.assert_allclose(loss.intertwiner_distance(f, b, "l1").numpy(), [0.25, 0.0], atol=1e-7)
    # KL = sum b_n log(b_n / f_n) on features normalised to sum 1: b_n = (1/3, 2/3), f_n = (1/2, 1/2).
    kl = (1 / 3) * np.log((1 / 3) / 0.5) + (2 / 3) * np.log((2 / 3) / 0.5)
    np.testing.assert_allclose(loss.intertwiner_distance(f, b, "kl").numpy(), [kl, 0.0], atol=1e-5)
    with pytest.raises(ValueError):
        loss.intertwiner_distance(f, b, "cosine")


def test_level_loss_skips_empty_classes_and_never_nans():
    critic = tf.constant([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    classes = tf.constant([[1, 2, 1]])
    small = tf.constant([[True, True, False]])
    reps = tf.constant([[0.0, 0.0], [0.0, 0.0], [9.0, 9.0]])
    valid = tf.constant([False, True, False])  # class 1 has an entry, class 2 does not
    # Only RoI 0 (class 1) counts: mean squared distance of (1, 0) to (0, 0) is 0.5.
    assert float(loss.level_loss(critic, classes, small, reps, valid, "l2")) == pytest.approx(0.5)
    nothing = tf.constant([False, False, False])
    value = loss.level_loss(critic, classes, small, reps, nothing, "kl")
    assert float(value) == 0.0 and np.isfinite(float(value))
    empty = loss.level_loss(critic, classes, tf.zeros_like(small), reps, valid, "l2")
    assert float(empty) == 0.0


def test_merge_modes():
    h, c = tf.constant([2.0, 4.0]), tf.constant([1.0, 0.0])
    np.testing.assert_allclose(merge_lib.merge(h, c, "linear").numpy(), [1.5, 2.0])
    np.testing.assert_allclose(merge_lib.merge(h, c, "separate").numpy(), [2.0, 4.0])
    np.testing.assert_allclose(merge_lib.merge(h, c, "naive_add").numpy(), [3.0, 4.0])
    with pytest.raises(ValueError):
        merge_lib.merge(h, c, "concat")
