"""One optimisation step of Eq. 5's total loss, shared by the trainer and the benchmarks.

Under a distribution strategy each replica takes its slice of the global batch; the loss
terms are normalised over the global batch (``ops.replica.global_count``), so the replicas'
gradients *sum* to the single-device gradient of the whole batch. They are all-reduced
once, before clipping at a global norm (5.0), so every replica clips the same
global gradient; the optimizer (``optim.SGD``) applies them without reducing again. A step
whose loss or gradient is not finite changes nothing — no weight, no optimizer slot, no
step counter — and the trainer then stops naming the loss term.

Under float16 (``training/precision.py``) the optimizer is a ``LossScaleOptimizer``: each
replica scales its loss share before the backward pass and unscales its gradients before
the all-reduce, so clipping, the norm and the finite check see true gradients. A step whose
gradient overflowed is skipped (no weight or slot changes), counted, and the scale halves
(``loss_scale_overflow`` = 1 tells the trainer it is no error); ``loss_scale`` is the
scale the step used. ``jit_compile`` (``train.jit_compile``) compiles the step with XLA
(``graph/jit.py``).
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops.replica import global_sum, replicas_in_sync
from internet_tf.training import precision
from internet_tf.graph.jit import jit_function


def replica_gradients(model, batch, clip_norm, step=None, loss_scale=None):
    """Forward and backward on this replica's slice -> (global clipped gradients, scalars).

    The scalars (``loss/<term>``, ``loss/total``, ``grad_norm``, ``metrics/<name>``,
    ``finite``) are the same on every replica: losses are summed over replicas (each
    replica holds its share of the global mean), metrics averaged. With ``loss_scale``
    (float16) the backward pass runs on the scaled loss and the gradients are unscaled here.
    """
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        losses, metrics = model.train_losses(batch, training=True, step=step)
        share = tf.add_n(list(losses.values()))
        if loss_scale is not None:
            share = share * loss_scale
    grads = tape.gradient(share, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    if loss_scale is not None:
        grads = [g / tf.cast(loss_scale, g.dtype) for g in grads]
    n = replicas_in_sync()
    grads, losses, metrics = global_sum((grads, losses, metrics))
    metrics = {k: v / n for k, v in metrics.items()}
    total = tf.add_n(list(losses.values()))
    grad_norm = tf.linalg.global_norm(grads)
    if clip_norm:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=grad_norm)
    out = {"loss/" + k: v for k, v in losses.items()}
    out["loss/total"] = total
    out["grad_norm"] = grad_norm
    out.update({"metrics/" + k: v for k, v in metrics.items()})
    # A NaN/Inf loss or gradient must not reach the weights (clipping by a NaN norm would
    # spread it everywhere); the trainer stops on either.
    out["finite"] = tf.math.is_finite(total) & tf.math.is_finite(grad_norm)
    return grads, out


def build_train_step(model, optimizer, clip_norm, strategy=None, compiled: bool = True,
                     jit_compile: str = "false"):
    """A ``tf.function`` (or, with ``compiled=False``, the same function run eagerly — one
    replica only) running one step on every replica; returns the step's scalars and
    ``lr``, the learning rate after the step (the schedule's value at the new step count).
    ``jit_compile`` is ``train.jit_compile`` (auto|true|false, ``graph/jit.py``).

    The apply is conditioned on ``finite`` in cross-replica context: a ``tf.cond`` may not
    hold the optimizer's cross-replica merge inside a replica function.
    """
    strategy = strategy or tf.distribute.get_strategy()
    variables = model.trainable_variables
    scaler = precision.loss_scaler(optimizer)
    inner = precision.inner_optimizer(optimizer)

    def apply(grads):
        inner.apply_gradients(zip(grads, variables))

    def step(batch):
        scale = None if scaler is None else tf.identity(scaler.dynamic_scale)
        grads, scalars = strategy.run(replica_gradients,
                                      args=(model, batch, clip_norm, inner.iterations, scale))
        local = {k: strategy.experimental_local_results(v)[0] for k, v in scalars.items()}
        finite = local["finite"]

        def update():
            strategy.run(apply, args=(grads,))
            return tf.constant(True)

        tf.cond(finite, update, lambda: tf.constant(False))
        out = {k: v for k, v in local.items() if k != "finite"}
        if scaler is not None:
            overflow = precision.overflowed(finite, local["loss/total"], scale)
            precision.update_loss_scale(scaler, finite, overflow)
            out["loss_scale"] = scale
            out["loss_scale_overflow"] = tf.cast(overflow, tf.float32)
        out["lr"] = tf.cast(inner.learning_rate, tf.float32)
        return out

    if not compiled:
        return step
    return jit_function(step, jit_compile, "train.jit_compile", "train step")
