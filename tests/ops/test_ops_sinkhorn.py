"""Tests for internet_tf.ops.sinkhorn (paper Alg. 1, Sec. 6.3)."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.ops.sinkhorn import biased_sinkhorn_divergence, cosine_cost, sinkhorn


def np_sinkhorn(cost, eps, num_iters):
    """NumPy (float64) transcription of Alg. 1 as internet_tf/ops/sinkhorn.py reads it: b⁰ = 1/C, then
    a = (1/C)/(Kᵀb), b = (1/C)/(K a) sequentially; P = diag(b) K diag(a); W = <Q, P>."""
    q = np.asarray(cost, np.float64)
    c1, c2 = q.shape
    k = np.exp(-q / eps)
    a, b = np.full(c2, 1.0 / c2), np.full(c1, 1.0 / c1)
    for _ in range(num_iters):
        a = (1.0 / c2) / (k.T @ b)
        b = (1.0 / c1) / (k @ a)
    plan = b[:, None] * k * a[None, :]
    return float((q * plan).sum()), plan


def np_cosine_cost(p, q):
    pn = p / np.linalg.norm(p, axis=-1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return 1.0 - pn @ qn.T


def random_cost(rng, c, k=16, c2=None):
    return np_cosine_cost(rng.normal(size=(c, k)), rng.normal(size=(c2 or c, k))).astype(np.float32)


def marginal_error(plan):
    plan = np.asarray(plan, np.float64)
    return (np.abs(plan.sum(0) - 1.0 / plan.shape[1]).max()
            + np.abs(plan.sum(1) - 1.0 / plan.shape[0]).max())


@pytest.mark.parametrize("c", [8, 32])
@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_matches_numpy_alg1_unbatched_and_batched(c, eps):
    rng = np.random.default_rng(c + int(eps * 10))
    costs = np.stack([random_cost(rng, c) for _ in range(3)])
    refs = [np_sinkhorn(q, eps, 10) for q in costs]
    for i, q in enumerate(costs):
        w, p = sinkhorn(q, epsilon=eps, num_iters=10)
        assert w.shape == () and p.shape == (c, c)
        np.testing.assert_allclose(w.numpy(), refs[i][0], atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(p.numpy(), refs[i][1], atol=1e-5, rtol=1e-4)
    wb, pb = sinkhorn(costs, epsilon=eps, num_iters=10)
    assert wb.shape == (3,) and pb.shape == (3, c, c)
    np.testing.assert_allclose(wb.numpy(), [r[0] for r in refs], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(pb.numpy(), np.stack([r[1] for r in refs]), atol=1e-5, rtol=1e-4)
    # Log domain gives the same iterates.
    wl, pl = sinkhorn(costs, epsilon=eps, num_iters=10, log_domain=True)
    np.testing.assert_allclose(wl.numpy(), wb.numpy(), atol=1e-5)
    np.testing.assert_allclose(pl.numpy(), pb.numpy(), atol=1e-5)


def test_rectangular_cost_uses_both_marginals():
    q = random_cost(np.random.default_rng(3), 5, c2=7)
    w_ref, p_ref = np_sinkhorn(q, 0.2, 10)
    for log_domain in (False, True):
        w, p = sinkhorn(q, epsilon=0.2, num_iters=10, log_domain=log_domain)
        np.testing.assert_allclose(w.numpy(), w_ref, atol=1e-5)
        np.testing.assert_allclose(p.numpy(), p_ref, atol=1e-5)


def test_log_domain_stable_for_small_epsilon():
    q = random_cost(np.random.default_rng(1), 8)
    for eps in (0.01, 0.001):
        w, p = sinkhorn(q, epsilon=eps, num_iters=300, log_domain=True)
        assert np.isfinite(w.numpy()) and np.all(np.isfinite(p.numpy()))
        assert marginal_error(p.numpy()) < 0.02
        # Small ε approaches the unregularised OT: W is near the best permutation's cost/C.
        assert w.numpy() >= 0.0


def test_marginals_converge_with_iterations():
    rng = np.random.default_rng(7)
    q = rng.uniform(0.0, 2.0, size=(8, 8)).astype(np.float32)
    err = {n: marginal_error(sinkhorn(q, epsilon=0.1, num_iters=n)[1].numpy()) for n in (1, 10, 100)}
    assert err[100] < err[10] < err[1], err
    q = random_cost(rng, 8)
    assert marginal_error(sinkhorn(q, epsilon=0.5, num_iters=200)[1].numpy()) < 1e-4


def test_two_by_two_hand_checked():
    # Q = [[0, 1], [1, 0]]: K = [[1, d], [d, 1]], d = e^(-1/ε); from b⁰ = 1/2 the first
    # iterate is already the fixed point a = 1/(1+d), b = 1/2, so
    # P = [[1, d], [d, 1]] / (2 (1+d)) and W = d / (1 + d).
    q = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    for eps in (0.5, 0.05):
        d = np.exp(-1.0 / eps)
        for log_domain in (False, True):
            w, p = sinkhorn(q, epsilon=eps, num_iters=10, log_domain=log_domain)
            np.testing.assert_allclose(p.numpy(), np.array([[1, d], [d, 1]]) / (2 * (1 + d)), atol=1e-6)
            np.testing.assert_allclose(w.numpy(), d / (1 + d), atol=1e-6)
    w, p = sinkhorn(q, epsilon=0.05, num_iters=10)
    assert w.numpy() < 1e-8 and np.allclose(p.numpy(), np.diag([0.5, 0.5]), atol=1e-8)
    # A cost constant down each column gives the independent coupling 1/C² and W = mean cost.
    q = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    w, p = sinkhorn(q, epsilon=0.1, num_iters=3)
    np.testing.assert_allclose(p.numpy(), np.full((2, 2), 0.25), atol=1e-6)
    np.testing.assert_allclose(w.numpy(), 0.5, atol=1e-6)


@pytest.mark.parametrize("eps,log_domain", [(0.01, True), (0.01, False), (0.1, False), (0.1, True),
                                            (1.0, False)])
def test_gradients_finite(eps, log_domain):
    rng = np.random.default_rng(11)
    feats_p = tf.constant(rng.normal(size=(2, 8, 16)).astype(np.float32) * np.array([0.0] + [1.0] * 7,
                                                                                   np.float32)[:, None])
    feats_q = tf.constant(rng.normal(size=(2, 8, 16)).astype(np.float32))
    extreme = np.full((8, 8), 2.0, np.float32)
    extreme[0, 0], extreme[3] = 0.0, 0.3  # most of K underflows in the plain domain at ε = 0.01
    for cost in (rng.uniform(0.0, 2.0, size=(8, 8)).astype(np.float32), extreme):
        cost = tf.constant(cost)
        with tf.GradientTape() as tape:
            tape.watch(cost)
            w, p = sinkhorn(cost, epsilon=eps, num_iters=10, log_domain=log_domain)
        g = tape.gradient(w, cost)
        assert np.isfinite(w.numpy()) and np.all(np.isfinite(p.numpy()))
        assert np.all(np.isfinite(g.numpy()))
    # Through cosine_cost, p has an all-zero channel row (eps-guarded normalisation).
    with tf.GradientTape() as tape:
        tape.watch([feats_p, feats_q])
        w, _ = sinkhorn(cosine_cost(feats_p, feats_q), epsilon=eps, num_iters=10, log_domain=log_domain)
        loss = tf.reduce_mean(w)
    gp, gq = tape.gradient(loss, [feats_p, feats_q])
    assert np.all(np.isfinite(gp.numpy())) and np.all(np.isfinite(gq.numpy()))
    assert np.abs(gq.numpy()).max() > 0


@pytest.mark.parametrize("log_domain", [False, True])
def test_detach_plan_gradient_is_the_plan(log_domain):
    cost = tf.constant(random_cost(np.random.default_rng(5), 8))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(cost)
        w_det, p_det = sinkhorn(cost, epsilon=0.1, num_iters=10, log_domain=log_domain, detach_plan=True)
        w, _ = sinkhorn(cost, epsilon=0.1, num_iters=10, log_domain=log_domain)
    np.testing.assert_allclose(w_det.numpy(), w.numpy(), atol=0)
    g_det = tape.gradient(w_det, cost).numpy()
    np.testing.assert_array_equal(g_det, p_det.numpy())
    assert np.abs(tape.gradient(w, cost).numpy() - g_det).max() > 1e-3


@pytest.mark.parametrize("log_domain", [False, True])
def test_jit_compile_matches_eager(log_domain):
    costs = tf.constant(np.stack([random_cost(np.random.default_rng(i), 8) for i in range(2)]))

    def value_and_grad(q):
        with tf.GradientTape() as tape:
            tape.watch(q)
            w, p = sinkhorn(q, epsilon=0.1, num_iters=10, log_domain=log_domain)
            loss = tf.reduce_sum(w)
        return w, p, tape.gradient(loss, q)

    eager = value_and_grad(costs)
    jitted = tf.function(value_and_grad, jit_compile=True)(costs)
    for e, j in zip(eager, jitted):
        np.testing.assert_allclose(j.numpy(), e.numpy(), atol=1e-5)


def test_dynamic_size():
    fn = tf.function(lambda q: sinkhorn(q, epsilon=0.1, num_iters=10),
                     input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    for c in (5, 8):
        q = random_cost(np.random.default_rng(c), c)[None]
        w, p = fn(tf.constant(q))
        w_ref, p_ref = np_sinkhorn(q[0], 0.1, 10)
        np.testing.assert_allclose(w.numpy()[0], w_ref, atol=1e-5)
        np.testing.assert_allclose(p.numpy()[0], p_ref, atol=1e-5)


def test_biased_divergence():
    rng = np.random.default_rng(2)
    p = rng.normal(size=(2, 8, 16)).astype(np.float32)
    q = rng.normal(size=(2, 8, 16)).astype(np.float32)
    same = biased_sinkhorn_divergence(cosine_cost(p, p), cosine_cost(p, p), cosine_cost(p, p))
    assert same.shape == (2,)
    np.testing.assert_allclose(same.numpy(), 0.0, atol=1e-6)
    got = biased_sinkhorn_divergence(cosine_cost(p, q), cosine_cost(p, p), cosine_cost(q, q),
                                     epsilon=0.2, num_iters=5)
    for i in range(2):
        want = (2 * np_sinkhorn(np_cosine_cost(p[i], q[i]), 0.2, 5)[0]
                - np_sinkhorn(np_cosine_cost(p[i], p[i]), 0.2, 5)[0]
                - np_sinkhorn(np_cosine_cost(q[i], q[i]), 0.2, 5)[0])
        np.testing.assert_allclose(got.numpy()[i], want, atol=1e-5)


def test_cosine_cost_hand_checked():
    p = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], np.float32)
    q = np.array([[3.0, 0.0], [1.0, 1.0], [-1.0, 0.0]], np.float32)
    s = 1.0 - 1.0 / np.sqrt(2.0)
    want = np.array([[0.0, s, 2.0], [1.0, s, 1.0], [1.0, 1.0, 1.0]])  # zero row: cos = 0
    np.testing.assert_allclose(cosine_cost(p, q).numpy(), want, atol=1e-6)
    batched = cosine_cost(np.stack([p, p]), np.stack([q, q[::-1]]))
    assert batched.shape == (2, 3, 3)
    np.testing.assert_allclose(batched.numpy()[1], want[:, ::-1], atol=1e-6)


def test_bad_rank_raises():
    with pytest.raises(ValueError, match="cost"):
        sinkhorn(np.ones(4, np.float32))
