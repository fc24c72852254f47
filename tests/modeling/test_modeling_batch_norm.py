"""modeling/batch_norm.py: masked statistics, and a globally empty batch leaves the moving
averages alone (the cross-replica synchronisation itself is checked against a single
device in tests/training/test_training_distribute.py)."""
import numpy as np
import tensorflow as tf

from internet_tf.modeling.batch_norm import BatchNorm


def _layer(channels=3, momentum=0.5):
    layer = BatchNorm(momentum=momentum, center=False, scale=False)
    layer.build((None, 2, 2, channels))
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 5.0, 6.0])
    return layer


def test_masked_rows_are_left_out_of_the_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (5, 2, 2, 3)).astype(np.float32)
    x[4] = 1000.0  # a stand-in row that must not count
    mask = np.ones((5, 2, 2), bool)
    mask[4] = False
    layer = _layer()
    y = layer(tf.constant(x), training=True, mask=tf.constant(mask)).numpy()
    real = x[:4].reshape(-1, 3)
    mean, var = real.mean(0), real.var(0)
    np.testing.assert_allclose(y[:4], (x[:4] - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * np.array([1.0, 2.0, 3.0]) + 0.5 * mean,
                               rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 * np.array([4.0, 5.0, 6.0]) + 0.5 * var,
                               rtol=1e-4)


def test_unmasked_call_matches_plain_batch_norm():
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 2, 2, 3)), tf.float32)
    ours = _layer()
    plain = tf.keras.layers.BatchNormalization(momentum=0.5, center=False, scale=False, epsilon=1e-5)
    plain.build((None, 2, 2, 3))
    plain.moving_mean.assign([1.0, 2.0, 3.0])
    plain.moving_variance.assign([4.0, 5.0, 6.0])
    np.testing.assert_allclose(ours(x, training=True), plain(x, training=True), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-5)


def test_empty_batch_leaves_moving_statistics_unchanged_and_gives_finite_gradients():
    layer = BatchNorm(momentum=0.5)
    layer.build((None, 2, 2, 3))
    layer.moving_mean.assign([1.0, 2.0, 3.0])
    layer.moving_variance.assign([4.0, 5.0, 6.0])
    for x, mask in ((tf.zeros([0, 2, 2, 3]), None),
                    (tf.fill([1, 2, 2, 3], 7.0), tf.zeros([1, 2, 2], tf.bool))):  # all masked
        with tf.GradientTape() as tape:
            y = layer(x, training=True, mask=mask)
            loss = tf.reduce_sum(y)
        grads = tape.gradient(loss, layer.trainable_variables)
        assert all(np.all(np.isfinite(g.numpy())) for g in grads)
        np.testing.assert_allclose(layer.moving_mean.numpy(), [1.0, 2.0, 3.0], rtol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), [4.0, 5.0, 6.0], rtol=1e-6)


def test_update_statistics_false_normalises_by_the_batch_but_keeps_moving_averages():
    bn = BatchNorm()
    x = tf.random.normal([6, 3, 3, 4]) * 3.0 + 1.0
    bn(x, training=True)  # builds and moves the averages once
    mean, var = bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy()
    kept = bn(x, training=True, update_statistics=False)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)
    np.testing.assert_array_equal(bn.moving_variance.numpy(), var)
    m, v = tf.nn.moments(x, [0, 1, 2])
    np.testing.assert_allclose(kept.numpy(), ((x - m) / tf.sqrt(v + bn.epsilon)).numpy(), atol=1e-4)
    updated = bn(x, training=True)  # the default path gives the same output and moves them
    np.testing.assert_allclose(kept.numpy(), updated.numpy(), atol=1e-5)
    assert not np.allclose(bn.moving_mean.numpy(), mean)
