"""Tests for internet_tf.ops.sampling: match() on a hand-built IoU matrix, balanced_sample()."""
import numpy as np
import tensorflow as tf

from internet_tf.ops import sampling as S

# [B=3, N=5, M=4]; rows = anchors, columns = gt.
SIM = np.array([
    # image 0: gt 2 and 3 invalid. gt 1's best IoU 0.6 is shared by anchors 3 and 4.
    [[0.8, 0.1, 0.95, 0.0],   # pos (0.8 >= 0.7), invalid 0.95 ignored -> gt 0
     [0.5, 0.2, 0.0, 0.0],    # ignore
     [0.1, 0.2, 0.9, 0.0],    # neg -> gt 1
     [0.0, 0.6, 0.0, 0.0],    # ignore; low-quality best of gt 1
     [0.6, 0.6, 0.0, 0.0]],   # ignore (argmax gt 0); low-quality best of gt 1 -> gt 1
    # image 1: no valid gt at all.
    [[0.9, 0.9, 0.9, 0.9]] * 5,
    # image 2: all gt valid; gt 3 has best IoU 0 (no low-quality match).
    [[0.0, 0.0, 0.0, 0.0],    # neg
     [0.25, 0.0, 0.0, 0.0],   # neg; low-quality best of gt 0
     [0.1, 0.72, 0.0, 0.0],   # pos -> gt 1
     [0.0, 0.3, 0.0, 0.0],    # exactly neg_threshold -> ignore
     [0.0, 0.0, 0.7, 0.0]],   # exactly pos_threshold -> pos -> gt 2
], np.float32)
VALID = np.array([[True, True, False, False], [False] * 4, [True] * 4])


def test_match_without_low_quality():
    idx, labels = S.match(SIM, VALID, 0.7, 0.3, allow_low_quality=False)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, -1, -1], [0] * 5, [0, 0, 1, -1, 1]])
    np.testing.assert_array_equal(idx.numpy(), [[0, 0, 1, 1, 0], [0] * 5, [0, 0, 1, 1, 2]])
    assert labels.dtype == tf.int32 and idx.dtype == tf.int32


def test_match_with_low_quality():
    idx, labels = S.match(SIM, VALID, 0.7, 0.3, allow_low_quality=True)
    np.testing.assert_array_equal(labels.numpy(), [[1, -1, 0, 1, 1], [0] * 5, [0, 1, 1, -1, 1]])
    np.testing.assert_array_equal(idx.numpy(), [[0, 0, 1, 1, 1], [0] * 5, [0, 0, 1, 1, 2]])


def test_match_in_tf_function():
    fn = tf.function(lambda s, v: S.match(s, v, 0.7, 0.3, True))
    idx, labels = fn(tf.constant(SIM), tf.constant(VALID))
    assert idx.shape == (3, 5) and labels.shape == (3, 5)
    np.testing.assert_array_equal(labels.numpy()[0], [1, -1, 0, 1, 1])


def test_gather_rows():
    params = tf.reshape(tf.range(2 * 3 * 2), [2, 3, 2])
    out = S.gather_rows(params, tf.constant([[2, 0], [1, -1]]))
    np.testing.assert_array_equal(out.numpy(), [[[4, 5], [0, 1]], [[8, 9], [6, 7]]])


def _masks(num_pos, num_neg, n=2000):
    pos = np.zeros((len(num_pos), n), bool)
    neg = np.zeros((len(num_pos), n), bool)
    rng = np.random.default_rng(0)
    for b, (p, q) in enumerate(zip(num_pos, num_neg)):
        perm = rng.permutation(n)
        pos[b, perm[:p]] = True
        neg[b, perm[p:p + q]] = True
    return pos, neg


def test_balanced_sample_exact_counts_and_inside_masks():
    pos, neg = _masks([300, 10, 0, 10], [1000, 1000, 1000, 50])
    sp, sn = S.balanced_sample(pos, neg, 256, 0.5)
    sp, sn = sp.numpy(), sn.numpy()
    np.testing.assert_array_equal(sp.sum(1), [128, 10, 0, 10])
    np.testing.assert_array_equal(sn.sum(1), [128, 246, 256, 50])
    assert not (sp & ~pos).any() and not (sn & ~neg).any()


def test_balanced_sample_fraction_floor_and_randomness():
    pos, neg = _masks([300, 300], [1000, 1000])
    sp, sn = S.balanced_sample(pos, neg, 10, 0.25)  # floor(2.5) = 2 positives
    np.testing.assert_array_equal(sp.numpy().sum(1), [2, 2])
    np.testing.assert_array_equal(sn.numpy().sum(1), [8, 8])
    a, _ = S.balanced_sample(pos, neg, 256, 0.5)
    b, _ = S.balanced_sample(pos, neg, 256, 0.5)
    assert (a.numpy() != b.numpy()).any()
    fn = tf.function(lambda p, q: S.balanced_sample(p, q, 256, 0.5))
    c, d = fn(tf.constant(pos), tf.constant(neg))
    e, _ = fn(tf.constant(pos), tf.constant(neg))
    assert c.shape == (2, 2000) and d.shape == (2, 2000)
    assert (c.numpy() != e.numpy()).any()


def test_balanced_sample_is_uniform():
    pos, neg = _masks([40], [0], n=100)
    hits = np.zeros(100)
    for _ in range(50):
        hits += S.balanced_sample(pos, neg, 20, 0.5)[0].numpy()[0]
    # each of the 40 positives is drawn with p = 10/40 -> mean 12.5 hits over 50 draws.
    assert hits[~pos[0]].sum() == 0
    assert hits[pos[0]].min() > 2 and hits[pos[0]].max() < 25


def test_balanced_sample_fewer_entries_than_samples():
    pos = np.array([[True, False, False, True, False]])
    sp, sn = S.balanced_sample(pos, ~pos, 256, 0.5)
    np.testing.assert_array_equal(sp.numpy(), pos)
    np.testing.assert_array_equal(sn.numpy(), ~pos)
