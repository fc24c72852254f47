"""Tests for internet_tf.methods.labelenc.distill and .adapt (L_dis of the LabelEnc appendix's
Eq. 1): the layer-normalised
MSE against numpy, the detached teacher and the shared adaptation (the replicas adding up:
tests/training/test_training_distribute.py)."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.labelenc.adapt import Adaptation
from internet_tf.methods.labelenc.distill import LAYER_NORM_EPSILON, distillation_loss, layer_norm

SHAPES = {2: (2, 6, 4, 3), 3: (2, 3, 2, 3)}  # two levels of different sizes


def _pyramid(rng, scale=1.0, shift=0.0):
    return {l: tf.constant(rng.normal(size=s).astype(np.float32) * scale + shift) for l, s in SHAPES.items()}


def reference_loss(student, teacher, eps=1e-5):
    """GroupNorm(1 group, no affine) per sample and level, levels flattened and concatenated
    per sample, one MSE over everything."""
    def norm(x):
        x = np.asarray(x, np.float64)
        flat = x.reshape(x.shape[0], -1)
        return (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + eps)
    s = np.concatenate([norm(student[l]) for l in sorted(student)], axis=1)
    t = np.concatenate([norm(teacher[l]) for l in sorted(teacher)], axis=1)
    return np.mean((s - t) ** 2)


def test_loss_matches_numpy_on_a_two_level_pyramid():
    rng = np.random.default_rng(0)
    student, teacher = _pyramid(rng), _pyramid(rng, scale=3.0, shift=1.0)
    got = float(distillation_loss(student, teacher))
    np.testing.assert_allclose(got, reference_loss(student, teacher), rtol=1e-5)
    assert LAYER_NORM_EPSILON == 1e-5
    # Levels weigh by element count: level 2 holds 72 of the 90 elements per sample.
    per_level = [reference_loss({l: student[l]}, {l: teacher[l]}) for l in (2, 3)]
    np.testing.assert_allclose(got, (72 * per_level[0] + 18 * per_level[1]) / 90, rtol=1e-5)


def test_layer_norm_is_per_sample_and_parameter_free():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 5, 5, 4)).astype(np.float32) * [[[[1.0]]], [[[10.0]]]])
    y = layer_norm(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2, 3)), 1.0, rtol=1e-3)  # eps: slightly below 1
    # Invariant to a positive affine change of one sample's map: an affine copy costs ~nothing.
    student = _pyramid(rng)
    teacher = {l: 4.0 * v + 2.5 for l, v in student.items()}
    assert float(distillation_loss(student, teacher)) < 1e-6


def test_gradient_reaches_the_student_only():
    rng = np.random.default_rng(2)
    student = {l: tf.Variable(v) for l, v in _pyramid(rng).items()}
    teacher = {l: tf.Variable(v) for l, v in _pyramid(rng).items()}
    with tf.GradientTape() as tape:
        loss = distillation_loss(student, teacher)
    grads = tape.gradient(loss, {"student": student, "teacher": teacher})
    for level in SHAPES:
        assert grads["teacher"][level] is None or not np.any(grads["teacher"][level].numpy())
        assert np.any(grads["student"][level].numpy())


def test_levels_must_match():
    rng = np.random.default_rng(3)
    student = _pyramid(rng)
    with pytest.raises(ValueError, match="levels"):
        distillation_loss(student, {2: student[2]})
    with pytest.raises(ValueError, match="levels"):
        distillation_loss({}, {})


# The replicas adding up to the whole batch's loss and gradients (2 logical CPUs) is checked in
# tests/training/test_training_distribute.py, in the one subprocess that serves every
# two-replica check.


def test_adaptation_is_shared_over_levels_and_keeps_shapes():
    adapt = Adaptation(channels=8)
    rng = np.random.default_rng(4)
    p2 = rng.normal(size=(2, 8, 8, 8)).astype(np.float32)
    pyramid = {2: tf.constant(p2), 3: tf.constant(p2[:, :4, :4]), 6: tf.constant(p2[:, :1, :1])}
    out = adapt(pyramid)
    assert {l: tuple(t.shape) for l, t in out.items()} == {l: tuple(t.shape) for l, t in pyramid.items()}
    assert len(adapt.convs) == 3 and len(adapt.weights) == 6  # one set of 3 convs for all levels
    assert all(c.kernel.shape == (3, 3, 8, 8) for c in adapt.convs)
    assert float(tf.reduce_min(out[2])) < 0.0  # no ReLU after the last conv
    # conv -> ReLU -> conv -> ReLU -> conv, the same three layers on every level.
    c1, c2, c3 = adapt.convs
    for level, features in pyramid.items():
        expected = c3(tf.nn.relu(c2(tf.nn.relu(c1(features)))))
        np.testing.assert_allclose(out[level].numpy(), expected.numpy(), atol=1e-6)
