"""Tests for internet_tf.methods.intertwiner.ot (paper Sec. 3.3, Alg. 1, Table 1)."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.intertwiner import ot
from internet_tf.ops.sinkhorn import cosine_cost, sinkhorn

C = 8


def small_pyramid(seed=0, batch=2, size=128):
    """FPN-like {2..6: P_l} for a size×size input (stride 2**l). With 128 the critic of level 4
    still sees 2×2 cells (at 64 it sees 1×1: the k features are all equal, and the cosine /
    softmax losses of that level become constant)."""
    rng = np.random.default_rng(seed)
    return {l: tf.constant(rng.normal(size=(batch, size // 2 ** l, size // 2 ** l, C)).astype(np.float32))
            for l in (2, 3, 4, 5, 6)}


def test_generator_upsamples_x2_and_fits_odd_targets():
    x = tf.random.normal([2, 4, 4, C])
    gen = ot.Generator(C)
    assert gen(x, training=True).shape == (2, 8, 8, C)
    assert gen(x, target_hw=(7, 7)).shape == (2, 7, 7, C)  # crop bottom/right
    np.testing.assert_allclose(gen(x, target_hw=(7, 7)).numpy(), gen(x).numpy()[:, :7, :7], atol=0)
    assert gen(x, target_hw=(9, 8)).shape == (2, 9, 8, C)  # resize when 2h < target
    dyn = tf.function(lambda t: gen(t, target_hw=tf.shape(t)[1:3] * 2 - 1),
                      input_signature=[tf.TensorSpec([None, None, None, C])])
    assert tuple(dyn(x).shape) == (2, 7, 7, C)


def test_bilinear_upsample():
    pyr = small_pyramid()
    up = ot.bilinear_upsample(pyr[3], pyr[2])
    assert up.shape == pyr[2].shape
    const = tf.fill([1, 3, 3, 2], 1.5)
    np.testing.assert_allclose(ot.bilinear_upsample(const, tf.zeros([1, 6, 6, 2])).numpy(), 1.5, atol=1e-6)


def test_adaptive_pool_matrix_hand_checked():
    m = ot._adaptive_pool_matrix(tf.constant(4), 2).numpy()
    np.testing.assert_allclose(m, [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    m = ot._adaptive_pool_matrix(tf.constant(5), 2).numpy()  # bins [0, 3) and [2, 5)
    np.testing.assert_allclose(m, np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]]) / 3.0, atol=1e-7)
    m = ot._adaptive_pool_matrix(tf.constant(2), 4).numpy()  # smaller input: cells repeat
    np.testing.assert_allclose(m, [[1, 0], [1, 0], [0, 1], [0, 1]])


def test_critic_output_shape_any_input_size():
    critic = ot.OTCritic(C, pool_size=8)
    for hw in (16, 4, 1, 13):
        out = critic(tf.random.normal([2, hw, hw, C]), training=True)
        assert out.shape == (2, C, 64), hw
        assert np.all(np.isfinite(out.numpy()))
    dyn = tf.function(lambda t: critic(t), input_signature=[tf.TensorSpec([None, None, None, C])])
    assert tuple(dyn(tf.random.normal([3, 10, 6, C])).shape) == (3, C, 64)


def test_alignment_loss_values():
    rng = np.random.default_rng(4)
    p = rng.normal(size=(2, C, 16)).astype(np.float32)
    q = rng.normal(size=(2, C, 16)).astype(np.float32)
    np.testing.assert_allclose(ot.alignment_loss(p, q, "l2").numpy(), np.mean((p - q) ** 2), rtol=1e-6)

    def log_softmax(x):
        x = x - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))
    kl = (np.exp(log_softmax(q)) * (log_softmax(q) - log_softmax(p))).sum(-1).mean()
    np.testing.assert_allclose(ot.alignment_loss(p, q, "kl").numpy(), kl, rtol=1e-5)
    assert abs(ot.alignment_loss(p, p, "kl").numpy()) < 1e-6
    w, _ = sinkhorn(cosine_cost(p, q), epsilon=0.2, num_iters=5)
    np.testing.assert_allclose(ot.alignment_loss(p, q, "ot", epsilon=0.2, num_iters=5).numpy(),
                               np.mean(w.numpy()), rtol=1e-6)
    np.testing.assert_allclose(ot.alignment_loss(p, q, "ot", log_domain=True).numpy(),
                               ot.alignment_loss(p, q, "ot").numpy(), atol=1e-5)
    assert abs(ot.alignment_loss(p, p, "ot_biased").numpy()) < 1e-6
    with pytest.raises(ValueError, match="bogus"):
        ot.alignment_loss(p, q, "bogus")


@pytest.mark.parametrize("kind", ["ot", "ot_biased", "l2", "kl"])
def test_ot_module_shapes_losses_and_gradients(kind):
    pyr = small_pyramid()
    module = ot.OTModule(levels=(2, 3, 4), channels=C, source="generator", kind=kind)
    with tf.GradientTape() as tape:
        up = module.upsampled(pyr, training=True)
        losses = module.alignment(pyr, up, training=True)
        total = tf.add_n(list(losses.values()))
    for l in (2, 3, 4):
        assert up[l].shape == pyr[l].shape, l
    assert sorted(losses) == [2, 3, 4]
    for l, value in losses.items():
        assert value.shape == () and np.isfinite(value.numpy()), (l, value)
    assert len(module.generators) == 3 and len(module.critics) == 3
    variables = module.trainable_variables
    grads = tape.gradient(total, variables)
    for v, g in zip(variables, grads):
        assert g is not None, v.path
        assert np.all(np.isfinite(g.numpy())), v.path
    for sub in module.generators + module.critics:  # every F_l and H_l receives gradient
        sub_grads = [g for v, g in zip(variables, grads) if v.path.startswith(sub.path + "/")]
        assert sub_grads and max(np.abs(g.numpy()).max() for g in sub_grads) > 0, sub.name


def test_ot_module_in_tf_function_and_bilinear_source():
    pyr = small_pyramid(1)
    module = ot.OTModule(channels=C, source="bilinear", kind="ot", log_domain=True)
    assert module.generators == [] and len(module.critics) == 3
    eager_up, eager_losses = module(pyr, training=False)
    graph_up, graph_losses = tf.function(lambda p: module(p, training=False))(pyr)
    for l in (2, 3, 4):
        assert graph_up[l].shape == pyr[l].shape
        np.testing.assert_allclose(graph_losses[l].numpy(), eager_losses[l].numpy(), atol=1e-5)


def test_ot_module_none_kind_and_bad_arguments():
    pyr = small_pyramid(2)
    module = ot.OTModule(channels=C, kind="none")
    assert module.critics == [] and len(module.generators) == 3
    up = module.upsampled(pyr, training=True)
    assert module.alignment(pyr, up) == {}
    with pytest.raises(ValueError, match="bogus"):
        ot.OTModule(channels=C, kind="bogus")
    with pytest.raises(ValueError, match="nearest"):
        ot.OTModule(channels=C, source="nearest")


def test_ot_module_checkpoint_roundtrip(tmp_path):
    pyr = small_pyramid(3)
    src = ot.OTModule(channels=C, levels=(2, 3))
    src.alignment(pyr, src.upsampled(pyr, training=True), training=True)  # moves BN stats too
    # 2 levels × (F: kernel, bias, 4 BN; H: 2 × (kernel, bias, 4 BN)), each variable once.
    assert len(src.variables) == 2 * (6 + 12) == len({id(v) for v in src.variables})
    path = tf.train.Checkpoint(ot=src).write(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if name.endswith("VARIABLE_VALUE")]
    assert len(saved) == len(src.variables)
    dst = ot.OTModule(channels=C, levels=(2, 3))
    dst.alignment(pyr, dst.upsampled(pyr))
    tf.train.Checkpoint(ot=dst).read(path).assert_consumed()
    restored = {v.path: v.numpy() for v in dst.variables}
    for v in src.variables:
        np.testing.assert_array_equal(restored[v.path], v.numpy(), err_msg=v.path)


def test_critic_size_pools_the_map_before_its_convs():
    """``size``: H on a 16×16 map equals H on the 4×4-averaged map; a map at or below the
    size passes unchanged; uneven and dynamic sizes pool into adaptive bins."""
    critic = ot.OTCritic(C, pool_size=2)
    x = tf.random.normal([2, 16, 16, C])
    np.testing.assert_allclose(critic(x, training=False, size=(4, 4)).numpy(),
                               critic(tf.nn.avg_pool2d(x, 4, 4, "VALID"), training=False).numpy(),
                               rtol=1e-5, atol=1e-6)
    small = tf.random.normal([2, 4, 3, C])
    assert ot.shrink(small, (4, 4)) is small
    dyn = tf.function(lambda t, hw: ot.shrink(t, hw),
                      input_signature=[tf.TensorSpec([None, None, None, C]), tf.TensorSpec([2], tf.int32)])
    y = tf.random.normal([1, 10, 3, C])
    expect = np.einsum("ph,bhwc->bpwc", ot._adaptive_pool_matrix(tf.constant(10), 4).numpy(), y.numpy())
    np.testing.assert_allclose(dyn(y, tf.constant([4, 4])).numpy(), expect, rtol=1e-5, atol=1e-6)
    assert critic(tf.random.normal([1, 10, 7, C]), training=True, size=(4, 4)).shape == (1, C, 4)


def test_input_level_gives_h_every_map_at_that_levels_size():
    """OTModule(input_level=4) computes W_l on P_l and P_{m|l} pooled to P4's size: the same
    numbers as input_level 0 on maps pooled by hand (P2 by 4, P3 by 2, P4 as it is)."""
    pyramid = {l: tf.random.normal([2, 64 // 2 ** (l - 2), 64 // 2 ** (l - 2), C]) for l in (2, 3, 4, 5)}
    pooled_module = ot.OTModule(channels=C, pool_size=2, input_level=4)
    plain_module = ot.OTModule(channels=C, pool_size=2)
    up = pooled_module.upsampled(pyramid, training=False)
    pooled_module.alignment(pyramid, up, training=False)
    plain_module.upsampled(pyramid, training=False)
    plain_module.alignment(pyramid, up, training=False)
    plain_module.set_weights(pooled_module.get_weights())
    factor = {2: 4, 3: 2, 4: 1}
    by_hand = lambda m: {l: tf.nn.avg_pool2d(m[l], factor[l], factor[l], "VALID") for l in factor}  # noqa: E731
    got = pooled_module.alignment(pyramid, up, training=False)
    want = plain_module.alignment(by_hand(pyramid), by_hand(up), training=False)
    for l in (2, 3, 4):
        np.testing.assert_allclose(got[l].numpy(), want[l].numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="input_level 6"):
        ot.OTModule(channels=C, pool_size=2, input_level=6).alignment(pyramid, up, training=False)
