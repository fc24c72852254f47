"""Tests for internet_tf.methods.intertwiner.class_buffer (paper Sec. 3.2, Tables 2d/2e).

Expectations are computed independently with numpy from the raw features/labels.
"""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.intertwiner.class_buffer import ClassBuffer

K, D = 4, 3


def _np_reps(feats, labels, k=K):
    """Numpy per-class means [k+1, D] and validity over rows with label in 1..k."""
    reps, valid = np.zeros((k + 1, feats.shape[1])), np.zeros(k + 1, bool)
    for c in range(1, k + 1):
        rows = feats[labels == c]
        if len(rows):
            reps[c], valid[c] = rows.mean(0), True
    return reps, valid


def _state(buf):
    return [v.numpy().copy() for v in buf.weights]


def test_all_mode_equals_mean_of_all_history():
    rng = np.random.default_rng(0)
    buf = ClassBuffer(K, D)
    seen_f, seen_l = [], []
    for n in (7, 5, 9):
        f = rng.normal(size=(n, D)).astype(np.float32)
        lab = rng.choice([-1, 0, 1, 2, 3], size=n).astype(np.int32)  # class 4 never appears
        reps, valid = buf.update(f, lab)
        seen_f.append(f)
        seen_l.append(lab)
        exp, exp_valid = _np_reps(np.concatenate(seen_f), np.concatenate(seen_l))
        np.testing.assert_allclose(reps.numpy(), exp, atol=1e-5)
        np.testing.assert_array_equal(valid.numpy(), exp_valid)
    reps, valid = buf.representatives()
    assert not valid.numpy()[0] and not valid.numpy()[4]
    np.testing.assert_array_equal(reps.numpy()[[0, 4]], 0.0)
    assert np.isfinite(reps.numpy()).all()
    before = _state(buf)
    reps0, _ = buf.update(np.zeros((0, D), np.float32), np.zeros((0,), np.int32))
    for a, b in zip(before, _state(buf)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(reps0.numpy(), reps.numpy(), atol=1e-6)


def test_empty_buffer_has_no_nan():
    for mode in ("all", "decay", "window"):
        buf = ClassBuffer(K, D, mode=mode, window=4)
        reps, valid = buf.representatives()
        assert not valid.numpy().any() and np.array_equal(reps.numpy(), np.zeros((K + 1, D)))
        assert int(buf.coverage()) == 0 and float(buf.mean_norm()) == 0.0
        assert buf.norms().shape == (0,)


def test_decay_mode_hand_checked():
    buf = ClassBuffer(K, 2, mode="decay", decay=0.9)
    reps, valid = buf.update([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]], [2, 2, -1])
    np.testing.assert_allclose(reps.numpy()[2], [2.0, 3.0], atol=1e-6)  # first: batch mean
    assert valid.numpy().tolist() == [False, False, True, False, False]
    reps, _ = buf.update([[10.0, 0.0]], [2])
    np.testing.assert_allclose(reps.numpy()[2], [0.9 * 2 + 0.1 * 10, 0.9 * 3 + 0.1 * 0], atol=1e-6)
    reps, _ = buf.update([[0.0, 5.0], [4.0, 5.0], [7.0, 7.0]], [2, 2, 1])  # mean (2, 5)
    np.testing.assert_allclose(reps.numpy()[2], [0.9 * 2.8 + 0.2, 0.9 * 2.7 + 0.5], atol=1e-6)
    np.testing.assert_allclose(reps.numpy()[1], [7.0, 7.0], atol=1e-6)  # class 1 first time
    reps2, _ = buf.update(np.zeros((0, 2), np.float32), np.zeros((0,), np.int32))
    np.testing.assert_allclose(reps2.numpy(), reps.numpy(), atol=1e-6)  # unseen: unchanged


def test_window_mode_keeps_last_n_of_any_class():
    rng = np.random.default_rng(1)
    buf = ClassBuffer(K, D, mode="window", window=5)
    f1 = rng.normal(size=(4, D)).astype(np.float32)
    l1 = np.array([1, 2, 0, 1], np.int32)  # the background row takes no slot
    f2 = rng.normal(size=(5, D)).astype(np.float32)
    l2 = np.array([3, -1, 3, 2, 4], np.int32)
    reps, valid = buf.update(f1, l1)
    assert valid.numpy().tolist() == [False, True, True, False, False]
    reps, valid = buf.update(f2, l2)
    kept_f = np.concatenate([f1[[0, 1, 3]], f2[[0, 2, 3, 4]]])[-5:]
    kept_l = np.concatenate([l1[[0, 1, 3]], l2[[0, 2, 3, 4]]])[-5:]  # [1, 3, 3, 2, 4]
    exp, exp_valid = _np_reps(kept_f, kept_l)
    np.testing.assert_allclose(reps.numpy(), exp, atol=1e-6)
    np.testing.assert_array_equal(valid.numpy(), exp_valid)
    # push two more class-4 rows: the oldest two entries (labels 1 and 3) fall out
    f3 = rng.normal(size=(2, D)).astype(np.float32)
    reps, valid = buf.update(f3, [4, 4])
    kept_f, kept_l = np.concatenate([kept_f, f3])[-5:], np.concatenate([kept_l, [4, 4]])[-5:]
    exp, exp_valid = _np_reps(kept_f, kept_l)
    assert not exp_valid[1] and not valid.numpy()[1]  # class 1 was pushed out
    np.testing.assert_allclose(reps.numpy(), exp, atol=1e-6)
    np.testing.assert_array_equal(valid.numpy(), exp_valid)
    # a batch larger than the window keeps only its last N rows
    f4 = rng.normal(size=(7, D)).astype(np.float32)
    l4 = np.array([1, 1, 2, 2, 3, 3, 4], np.int32)
    reps, valid = buf.update(f4, l4)
    exp, exp_valid = _np_reps(f4[-5:], l4[-5:])
    np.testing.assert_allclose(reps.numpy(), exp, atol=1e-6)
    np.testing.assert_array_equal(valid.numpy(), exp_valid)
    np.testing.assert_allclose(buf.representatives()[0].numpy(), exp, atol=1e-6)


@pytest.mark.parametrize("mode", ["all", "decay", "window"])
def test_per_level_buffers_are_independent(mode):
    buf = ClassBuffer(K, D, mode=mode, num_buffers=3, window=6)
    buf.update(np.ones((2, D), np.float32), [1, 2], buffer_index=0)
    before = [buf.representatives(i) for i in (0, 2)]
    reps, valid = buf.update(np.full((3, D), 5.0, np.float32), [3, 3, 1], buffer_index=1)
    assert valid.numpy().tolist() == [False, True, False, True, False]
    np.testing.assert_allclose(buf.representatives(1)[0].numpy()[3], [5.0] * D, atol=1e-6)
    for i, (r, v) in zip((0, 2), before):
        np.testing.assert_array_equal(buf.representatives(i)[0].numpy(), r.numpy())
        np.testing.assert_array_equal(buf.representatives(i)[1].numpy(), v.numpy())
    assert int(buf.coverage(0)) == 2 and int(buf.coverage(2)) == 0
    assert [buf.buffer_for_level(lv) for lv in (2, 3, 4, 5)] == [0, 1, 2, 0]
    assert ClassBuffer(K, D).buffer_for_level(4) == 0
    with pytest.raises(ValueError, match="buffer_index"):
        buf.update(np.ones((1, D), np.float32), [1], buffer_index=3)


def _grad(buf, feats, labels):
    x = tf.constant(feats)
    with tf.GradientTape() as tape:
        tape.watch(x)
        reps, _ = buf.update(x, labels)
        total = tf.reduce_sum(reps)
    return tape.gradient(total, x)


def test_detach_blocks_gradient():
    for mode in ("all", "decay", "window"):
        g = _grad(ClassBuffer(K, D, mode=mode, window=8), np.ones((3, D), np.float32), [1, 2, 1])
        assert g is None or not np.any(g.numpy())


def test_not_detached_gradient_hand_checked():
    buf = ClassBuffer(K, D, detach=False)
    buf.update(np.ones((2, D), np.float32), [1, 1])  # history: class 1 has count 2
    # class 1 count after = 2 + 2 = 4 -> 1/4; class 2 count = 1 -> 1; label 0/-1 rows -> 0
    g = _grad(buf, np.ones((5, D), np.float32), [1, 2, 1, 0, -1])
    np.testing.assert_allclose(g.numpy(), np.array([[.25], [1.], [.25], [0.], [0.]]) * np.ones(D))
    assert not buf.trainable_weights and len(buf.non_trainable_weights) == 2
    dec = ClassBuffer(K, D, mode="decay", decay=0.9, detach=False)
    g = _grad(dec, np.ones((2, D), np.float32), [1, 1])  # first appearance: 1/n
    np.testing.assert_allclose(g.numpy(), 0.5 * np.ones((2, D)), atol=1e-7)
    g = _grad(dec, np.ones((2, D), np.float32), [1, 3])  # class 1 again: 0.1/1; class 3: 1
    np.testing.assert_allclose(g.numpy(), [[0.1] * D, [1.0] * D], atol=1e-7)
    win = ClassBuffer(K, D, mode="window", window=4, detach=False)
    win.update(np.ones((1, D), np.float32), [2])
    g = _grad(win, np.ones((2, D), np.float32), [2, 0])  # window count of class 2 = 2
    np.testing.assert_allclose(g.numpy(), [[0.5] * D, [0.0] * D], atol=1e-7)


@pytest.mark.parametrize("mode", ["all", "decay", "window"])
def test_checkpoint_round_trip(mode, tmp_path):
    rng = np.random.default_rng(2)
    buf = ClassBuffer(K, D, mode=mode, window=4, num_buffers=2)
    buf.update(rng.normal(size=(6, D)).astype(np.float32), [1, 2, 3, 1, -1, 0], buffer_index=1)
    saved = _state(buf)
    path = tf.train.Checkpoint(buf=buf).save(str(tmp_path / "ckpt"))
    buf.update(rng.normal(size=(3, D)).astype(np.float32), [4, 2, 2], buffer_index=1)
    assert any(not np.array_equal(a, b) for a, b in zip(saved, _state(buf)))
    tf.train.Checkpoint(buf=buf).restore(path).assert_consumed()
    for a, b in zip(saved, _state(buf)):
        np.testing.assert_array_equal(a, b)
    fresh = ClassBuffer(K, D, mode=mode, window=4, num_buffers=2)
    tf.train.Checkpoint(buf=fresh).restore(path).assert_consumed()
    for a, b in zip(saved, _state(fresh)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["all", "window"])
def test_tf_function_dynamic_n_traces_once(mode):
    buf = ClassBuffer(K, D, mode=mode, window=16)
    traces = []

    @tf.function(input_signature=[tf.TensorSpec([None, D], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def step(f, lab):
        traces.append(1)
        return buf.update(f, lab)

    rng = np.random.default_rng(3)
    all_f, all_l = [], []
    for n in (4, 0, 7):
        f = rng.normal(size=(n, D)).astype(np.float32)
        lab = rng.integers(-1, K + 1, size=n).astype(np.int32)
        reps, valid = step(f, lab)
        all_f.append(f)
        all_l.append(lab)
    assert len(traces) == 1
    exp, exp_valid = _np_reps(np.concatenate(all_f), np.concatenate(all_l))
    np.testing.assert_allclose(reps.numpy(), exp, atol=1e-5)
    np.testing.assert_array_equal(valid.numpy(), exp_valid)


@pytest.mark.parametrize("mode", ["all", "decay"])
def test_split_statistics_equal_whole_batch(mode):
    rng = np.random.default_rng(4)
    f = rng.normal(size=(10, D)).astype(np.float32)
    lab = rng.integers(-1, K + 1, size=10).astype(np.int32)
    whole, split = ClassBuffer(K, D, mode=mode), ClassBuffer(K, D, mode=mode)
    whole.update(f[:3], lab[:3])
    split.update(f[:3], lab[:3])
    reps_w, valid_w = whole.update(f, lab)
    s1, c1 = split.batch_statistics(f[:6], lab[:6])
    s2, c2 = split.batch_statistics(f[6:], lab[6:])
    assert c1.numpy()[0] == 0 and np.all(s1.numpy()[0] == 0)
    reps_s, valid_s = split.apply_statistics(s1 + s2, c1 + c2)
    np.testing.assert_allclose(reps_s.numpy(), reps_w.numpy(), atol=1e-6)
    np.testing.assert_array_equal(valid_s.numpy(), valid_w.numpy())
    for a, b in zip(_state(whole), _state(split)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="window"):
        ClassBuffer(K, D, mode="window").apply_statistics(s1, c1)


def test_monitoring_hand_checked():
    buf = ClassBuffer(K, 2)
    buf.update([[3.0, 4.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]], [1, 1, 3, -1])
    assert int(buf.coverage()) == 2
    np.testing.assert_allclose(np.sort(buf.norms().numpy()), [5.0, 10.0], atol=1e-6)
    np.testing.assert_allclose(float(buf.mean_norm()), 7.5, atol=1e-6)
    assert buf.coverage().dtype == tf.int32


@pytest.mark.parametrize("kwargs,arg", [({"mode": "median"}, "mode"), ({"decay": 1.0}, "decay"),
                                        ({"decay": 0.0}, "decay"), ({"window": 0}, "window"),
                                        ({"num_buffers": 0}, "num_buffers")])
def test_constructor_validation(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        ClassBuffer(K, D, **kwargs)


# The buffer under a 2-replica MirroredStrategy (all-reduced statistics, all-gathered rows)
# is checked against one device in tests/training/test_training_distribute.py, in the one
# subprocess that splits the CPU into two devices for every two-replica check.
