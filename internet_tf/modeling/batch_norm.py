"""Batch normalisation synchronised across replicas (SPEC §5 "Distribution").

``BatchNorm`` is Keras' BatchNormalization with ``synchronized=True``: under a distribution
strategy the batch statistics are taken over the *global* batch (sums and counts are
all-reduced), so N replicas compute what one device computes on the whole batch; with
one replica it is plain batch norm. Two additions for the intertwiner's RoI sets, which
can be empty on some or all replicas:

- a ``mask`` (rows to leave out of the statistics) also works synchronised — Keras only
  supports it unsynchronised — so a set can carry a masked stand-in row and never be empty;
- a batch with no (unmasked) rows on any replica leaves the moving averages unchanged
  instead of pulling them towards the zero statistics of nothing.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.ops.replica import global_sum, replicas_in_sync


class BatchNorm(keras.layers.BatchNormalization):
    """Synchronised batch norm with masks; ignores a globally empty batch."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        kwargs.setdefault("synchronized", True)
        super().__init__(epsilon=epsilon, **kwargs)

    def compute_mask(self, inputs, mask=None):
        return None  # the mask only picks the rows of the statistics; nothing downstream uses it

    def _moments(self, inputs, mask):
        axes = self._reduction_axes
        if mask is None:
            if replicas_in_sync() > 1:
                mean, variance = super()._moments(inputs, None)  # Keras' synchronised moments
            else:  # one replica: Keras' plain (two-pass) moments, cheaper than the sync path
                mean, variance = keras.ops.moments(inputs, axes)
            count = global_sum(tf.cast(tf.size(inputs) > 0, inputs.dtype))
        else:
            weight = tf.cast(mask, inputs.dtype)[..., None]
            total, squares, count = global_sum([
                tf.reduce_sum(inputs * weight, axes), tf.reduce_sum(tf.square(inputs) * weight, axes),
                tf.reduce_sum(weight)])
            mean = total / tf.maximum(count, 1.0)
            variance = tf.maximum(squares / tf.maximum(count, 1.0) - tf.square(mean), 0.0)
        seen = count > 0
        return (tf.where(seen, mean, tf.cast(self.moving_mean, mean.dtype)),
                tf.where(seen, variance, tf.cast(self.moving_variance, variance.dtype)))


def synchronize(model: keras.Model) -> None:
    """Makes every BatchNormalization of an existing model (e.g. a keras.applications
    ResNet) synchronised across replicas; Keras reads the flag at call time."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
