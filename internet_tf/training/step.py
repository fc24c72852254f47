"""One optimisation step of Eq. 5's total loss, shared by the trainer and the benchmarks.

Gradients are clipped at a global norm (SPEC §5: 5.0); a step whose loss is not finite
changes nothing (the trainer then stops and names the loss term).
"""
from __future__ import annotations

import tensorflow as tf


def replica_step(model, optimizer, batch, clip_norm, num_replicas: int = 1) -> dict:
    """Forward, backward, clip, apply. Returns the scalars to log (``loss/<term>``, ...)."""
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        losses, metrics = model.train_losses(batch, training=True)
        total = tf.add_n(list(losses.values()))
        scaled = total / num_replicas
    grads = tape.gradient(scaled, variables)
    grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
    grad_norm = tf.linalg.global_norm(grads)
    if clip_norm:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=grad_norm)
    # A NaN/Inf loss or gradient must not reach the weights (clipping by a NaN norm would
    # spread it everywhere); the trainer stops on either.
    finite = tf.math.is_finite(total) & tf.math.is_finite(grad_norm)

    def apply():
        optimizer.apply_gradients(zip(grads, variables))
        return tf.constant(True)

    tf.cond(finite, apply, lambda: tf.constant(False))
    out = {"loss/" + k: v for k, v in losses.items()}
    out["loss/total"] = total
    out["grad_norm"] = grad_norm
    out.update({"metrics/" + k: v for k, v in metrics.items()})
    return out


def build_train_step(model, optimizer, clip_norm, strategy=None):
    """A ``tf.function`` running ``replica_step`` on every replica; returns mean scalars."""
    strategy = strategy or tf.distribute.get_strategy()

    @tf.function
    def step(batch):
        per_replica = strategy.run(
            replica_step, args=(model, optimizer, batch, clip_norm, strategy.num_replicas_in_sync))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    return step
