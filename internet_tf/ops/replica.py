"""Cross-replica reductions inside a replica function.

Every loss is ``sum over the replica's examples / count over the global batch``, so the
replicas' losses (and gradients) *add up* to what one device computes on the whole
batch, whatever the split; with one replica these are the plain sum and mean.
"""
from __future__ import annotations

import tensorflow as tf


def replicas_in_sync() -> int:
    """Replicas in the current replica context (1 outside any strategy)."""
    ctx = tf.distribute.get_replica_context()
    return ctx.num_replicas_in_sync if ctx is not None else 1


def global_sum(value):
    """``value`` (a tensor or nest of tensors) summed over the replicas."""
    if replicas_in_sync() > 1:
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)
    return value


def global_all_gather(value, axis: int = 0):
    """``value`` concatenated over the replicas along ``axis`` (replica order)."""
    if replicas_in_sync() > 1:
        return tf.distribute.get_replica_context().all_gather(value, axis=axis)
    return value


def global_count(count, minimum: float = 1.0, dtype=tf.float32):
    """``Σ count`` over all replicas, at least ``minimum``, without gradient: the
    normaliser of a global mean (one all-reduce; reuse it for terms sharing a count)."""
    return tf.maximum(global_sum(tf.stop_gradient(tf.cast(count, dtype))), minimum)


def global_mean(total, count, minimum: float = 1.0):
    """This replica's share of ``Σ total / Σ count`` over all replicas (count ≥ ``minimum``)."""
    return total / global_count(count, minimum, total.dtype)
