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


def _op_types(layer, x, **kwargs):
    graph = tf.function(lambda t: layer(t, **kwargs)).get_concrete_function(x).graph
    return {op.type for op in graph.get_operations()}


def test_fused_kernel_computes_what_the_general_path_computes():
    """An unmasked NHWC batch on one replica takes TF's fused kernel: the same outputs,
    gradients and moving averages as the general (masked, synchronised) path, which an
    all-true mask selects; a masked batch never takes it."""
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(1.0, 2.0, (4, 3, 5, 6)), tf.float32)
    everywhere = tf.ones([4, 3, 5], tf.bool)
    fused, general = BatchNorm(momentum=0.7), BatchNorm(momentum=0.7)
    for layer in (fused, general):
        layer.build(x.shape)
        layer.gamma.assign(rng.normal(1.0, 0.3, 6))
        layer.beta.assign(rng.normal(0.0, 0.3, 6))
        layer.moving_mean.assign(rng.normal(size=6))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, 6))
    general.set_weights(fused.get_weights())
    assert "FusedBatchNormV3" in _op_types(fused, x, training=True)
    assert "FusedBatchNormV3" not in _op_types(general, x, training=True, mask=everywhere)
    weight = tf.constant(rng.normal(size=(4, 3, 5, 6)), tf.float32)  # a loss that is not flat
    start = fused.moving_mean.numpy().copy()
    for update in (True, False):
        results = []
        for layer, mask in ((fused, None), (general, everywhere)):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True, mask=mask, update_statistics=update)
                loss = tf.reduce_sum(y * weight)
            results.append([y, *tape.gradient(loss, [x, layer.gamma, layer.beta]),
                            layer.moving_mean, layer.moving_variance])
        for a, b in zip(*results):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert not np.allclose(fused.moving_mean.numpy(), start)  # the first pass moved them
    np.testing.assert_allclose(fused(x, training=False), general(x, training=False, mask=everywhere),
                               rtol=1e-4, atol=1e-5)


def test_bfloat16_map_enters_the_fused_kernel_without_casts():
    """Under a bfloat16 policy the fused kernel takes the map as it is (its statistics stay
    float32 inside it): the float32 layer's result rounded to bfloat16, with no Cast op."""
    rng = np.random.default_rng(3)
    x = tf.cast(tf.constant(rng.normal(1.0, 2.0, (2, 4, 5, 6)), tf.float32), tf.bfloat16)
    mixed, plain = BatchNorm(dtype="mixed_bfloat16"), BatchNorm()
    for layer in (mixed, plain):
        layer.build(x.shape)
    mixed.gamma.assign(rng.normal(1.0, 0.3, 6))
    mixed.moving_variance.assign(rng.uniform(0.5, 2.0, 6))
    plain.set_weights(mixed.get_weights())
    for training in (False, True):
        graph = tf.function(lambda t: mixed(t, training=training)).get_concrete_function(x).graph
        kernels = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
        assert [op.get_attr("T") for op in kernels] == [tf.bfloat16]
        assert not [op for op in graph.get_operations()
                    if op.type == "Cast" and tf.bfloat16 in (op.get_attr("SrcT"), op.get_attr("DstT"))]
        results = []
        for layer, t in ((mixed, x), (plain, tf.cast(x, tf.float32))):
            with tf.GradientTape() as tape:
                tape.watch(t)
                y = layer(t, training=training, update_statistics=False)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
            results.append([tf.cast(v, tf.float32) for v in (y, tape.gradient(loss, t))])
        for a, b in zip(*results):
            np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2)
