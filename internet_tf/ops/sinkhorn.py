"""Sinkhorn divergence W_Q of the OT module (paper Alg. 1, Sec. 3.3 Eq. 4, Sec. 6.3).

Pure tensor functions (no variables); the OT layers that use them are ``methods/intertwiner/ot.py``.

``sinkhorn`` implements Alg. 1 with uniform marginals: K = exp(-Q/ε), b⁰ = 1/C, then
``num_iters`` iterations of

    a = (1/C) / (Kᵀ b),   b = (1/C) / (K a)            (sequential: b uses the new a)

inside ``tf.while_loop`` (gradients flow through the iterations), P = diag(b)·K·diag(a),
i.e. P[x, y] = b[x] K[x, y] a[y], and W = ⟨Q, P⟩ (Frobenius product, Eq. 4).

Reading of Alg. 1 (Li et al. 2019, Sec. 3.3): as printed, Alg. 1 updates both a⁽ˡ⁺¹⁾ and b⁽ˡ⁺¹⁾ from the
previous iterate (b⁽ˡ⁺¹⁾ = 1/(K a⁽ˡ⁾), with a⁽⁰⁾ undefined) and loops ``for l = 0 to L``.
We follow the standard (Cuturi 2013) sequential order above, exactly L = ``num_iters``
iterations, and the marginal written 𝟙_C = (1/C, ..., 1/C) as in Eq. 4.

Numerics:
- Plain domain: K is built from Q − min(Q) (min per cost matrix, under ``stop_gradient``).
  Scaling K by a constant is absorbed exactly by a (P, W and the gradient are unchanged
  mathematically), and it keeps max K = 1 so K never underflows entirely. Denominators are
  floored at ``_FLOOR`` = 1e-15 so rows/columns of K that underflow to 0 (small ε) give
  finite scalings (never 0/0 or inf); such a row/column of P is then ~0. 1e-15 (not
  smaller) also bounds the backward pass (d(1/x)/dx ≤ 1e30): on stress tests (costs in
  [0, 2], ε ≥ 0.01) value and gradient stay finite. The floor only matters once
  exp(−(max Q − min Q)/ε) approaches it (not for ε ≥ 0.1 with costs in [0, 2], where plain
  and log domain agree to ~1e-6); where it is active the result is no longer exact
  Sinkhorn, so use ``log_domain=True`` for small ε (≲ 0.05).
- Log domain: the same iterations on log a, log b with ``tf.math.reduce_logsumexp``;
  stable for ε down to 1e-3 and equal to the plain version where that one is exact.

``biased_sinkhorn_divergence`` is the "biased version of OT" of Table 1(d), Sec. 6.3:
2 W(x, y) − W(x, x) − W(y, y). ``cosine_cost`` is the ground cost of Alg. 1.
Rectangular costs [C1, C2] are accepted (marginals 1/C1 on rows, 1/C2 on columns).
"""
from __future__ import annotations

import tensorflow as tf

_FLOOR = 1e-15  # floor on Kᵀb and K·a in the plain domain (keeps values and gradients finite)
_NORM_EPS = 1e-12  # squared-norm guard in cosine_cost (zero rows have cos = 0, Q = 1)


def _marginals(cost):
    shape = tf.shape(cost)
    rows, cols = shape[-2], shape[-1]
    mu = 1.0 / tf.cast(rows, cost.dtype)  # row marginal (scales b)
    nu = 1.0 / tf.cast(cols, cost.dtype)  # column marginal (scales a)
    b0 = tf.fill(shape[:-1], mu)
    a0 = tf.fill(tf.concat([shape[:-2], shape[-1:]], 0), nu)
    return mu, nu, a0, b0


def _plan_plain(cost, epsilon, num_iters):
    mu, nu, a0, b0 = _marginals(cost)
    shift = tf.stop_gradient(tf.reduce_min(cost, axis=[-2, -1], keepdims=True))
    kernel = tf.exp(-(cost - shift) / epsilon)

    def body(i, a, b):
        a = nu / tf.maximum(tf.linalg.matvec(kernel, b, transpose_a=True), _FLOOR)
        b = mu / tf.maximum(tf.linalg.matvec(kernel, a), _FLOOR)
        return i + 1, a, b

    _, a, b = tf.while_loop(lambda i, a, b: i < num_iters, body, (tf.constant(0), a0, b0),
                            maximum_iterations=num_iters)
    return b[..., :, None] * kernel * a[..., None, :]


def _plan_log(cost, epsilon, num_iters):
    mu, nu, a0, b0 = _marginals(cost)
    log_k = -cost / epsilon
    log_mu, log_nu = tf.math.log(mu), tf.math.log(nu)

    def body(i, log_a, log_b):
        log_a = log_nu - tf.math.reduce_logsumexp(log_k + log_b[..., :, None], axis=-2)
        log_b = log_mu - tf.math.reduce_logsumexp(log_k + log_a[..., None, :], axis=-1)
        return i + 1, log_a, log_b

    _, log_a, log_b = tf.while_loop(lambda i, a, b: i < num_iters, body,
                                    (tf.constant(0), tf.math.log(a0), tf.math.log(b0)),
                                    maximum_iterations=num_iters)
    return tf.exp(log_b[..., :, None] + log_k + log_a[..., None, :])


def sinkhorn(cost, epsilon=0.1, num_iters=10, log_domain=False, detach_plan=False):
    """Sinkhorn distance of Alg. 1.

    Args:
      cost: ground cost Q, float [C1, C2] or batched [B, C1, C2] (C1 = C2 = C in the paper);
        static or dynamic sizes.
      epsilon: entropic factor ε of K = exp(-Q/ε) (paper: 0.1).
      num_iters: number L of Sinkhorn iterations (paper: 10); a Python int (the gradient
        under XLA needs the static bound).
      log_domain: iterate on log a, log b (stable for small ε).
      detach_plan: W = ⟨Q, stop_gradient(P)⟩ (the gradient wrt Q is then P itself).

    Returns:
      (distance, plan): W = ⟨Q, P⟩, a scalar (or [B]); P = diag(b)·K·diag(a), like ``cost``.
    """
    cost = tf.convert_to_tensor(cost, dtype=tf.float32)
    if cost.shape.rank not in (2, 3):
        raise ValueError(f"sinkhorn: cost must be [C, C] or [B, C, C], got shape {cost.shape}")
    epsilon = tf.cast(epsilon, tf.float32)
    plan = (_plan_log if log_domain else _plan_plain)(cost, epsilon, num_iters)
    weights = tf.stop_gradient(plan) if detach_plan else plan
    distance = tf.reduce_sum(cost * weights, axis=[-2, -1])
    return distance, plan


def biased_sinkhorn_divergence(cost_xy, cost_xx, cost_yy, **kwargs):
    """Biased Sinkhorn divergence of Sec. 6.3: 2 W(x, y) − W(x, x) − W(y, y).

    ``kwargs`` are passed to ``sinkhorn``; returns a scalar (or [B]).
    """
    w_xy, _ = sinkhorn(cost_xy, **kwargs)
    w_xx, _ = sinkhorn(cost_xx, **kwargs)
    w_yy, _ = sinkhorn(cost_yy, **kwargs)
    return 2.0 * w_xy - w_xx - w_yy


def cosine_cost(p, q):
    """Ground cost of Alg. 1: p [..., C1, k], q [..., C2, k] -> Q [..., C1, C2].

    Q[x, y] = 1 − cos(p[x], q[y]) ∈ [0, 2]. Rows are normalised with
    ``tf.math.l2_normalize`` (squared norm floored at 1e-12), so an all-zero row has cosine 0
    (Q = 1) and a finite gradient.
    """
    p = tf.math.l2_normalize(tf.cast(p, tf.float32), axis=-1, epsilon=_NORM_EPS)
    q = tf.math.l2_normalize(tf.cast(q, tf.float32), axis=-1, epsilon=_NORM_EPS)
    return 1.0 - tf.linalg.matmul(p, q, transpose_b=True)
