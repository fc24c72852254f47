"""Batch normalisation synchronised across replicas (SPEC §5 "Distribution").

``BatchNorm`` is Keras' BatchNormalization whose batch statistics are those of the
*global* batch: each replica's sufficient statistics (count, Σ(x − s), Σ(x − s)², with
the moving mean as shift s, ``tf.nn.sufficient_statistics``) are summed over the replicas
in one all-reduce and turned into moments with ``tf.nn.normalize_moments``. So N replicas
compute what one device computes on the whole batch, and with one replica it is plain
batch norm. Two additions for the intertwiner's RoI sets, which can be empty on some or
all replicas:

- a ``mask`` (rows to leave out of the statistics) works too — Keras only supports it
  unsynchronised — so a set can carry a masked stand-in row and never be empty;
- a batch with no (unmasked) rows on any replica leaves the moving averages unchanged
  instead of pulling them towards the zero statistics of nothing;
- ``update_statistics=False`` normalises a training batch with its own statistics but
  leaves the moving averages alone (a pass over another population, such as the
  intertwiner's reliable-set crops, must not move the statistics inference uses).

``from_keras`` turns the BatchNormalization layers of an existing model (a
keras.applications ResNet) into this layer, so every BN of a detector works alike.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.ops.replica import global_sum


class BatchNorm(keras.layers.BatchNormalization):
    """Batch norm over the global batch, with masks; ignores a globally empty batch."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(epsilon=epsilon, **kwargs)

    def call(self, inputs, training=None, mask=None, update_statistics=True):
        if update_statistics or not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        dtype = inputs.dtype
        x = tf.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        gamma = tf.cast(self.gamma, x.dtype) if self.scale else None
        beta = tf.cast(self.beta, x.dtype) if self.center else None
        out = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        return tf.cast(out, dtype)

    def compute_mask(self, inputs, mask=None):
        return None  # the mask only picks the rows of the statistics; nothing downstream uses it

    def _moments(self, inputs, mask):
        axes = self._reduction_axes
        moving_mean = tf.cast(self.moving_mean, inputs.dtype)
        shift = tf.stop_gradient(moving_mean)
        if mask is None:
            count, total, squares, _ = tf.nn.sufficient_statistics(inputs, axes, shift=shift)
        else:
            weight = tf.cast(mask, inputs.dtype)[..., None]
            count = tf.reduce_sum(weight)
            # weight ∈ {0, 1}: Σ((x − s)·w)² = Σ w·(x − s)².
            _, total, squares, _ = tf.nn.sufficient_statistics((inputs - shift) * weight, axes)
        count, total, squares = global_sum([tf.cast(count, inputs.dtype), total, squares])
        mean, variance = tf.nn.normalize_moments(tf.maximum(count, 1.0), total, squares, shift)
        seen = count > 0
        return (tf.where(seen, mean, moving_mean),
                tf.where(seen, tf.maximum(variance, 0.0), tf.cast(self.moving_variance, inputs.dtype)))


def from_keras(model: keras.Model) -> keras.Model:
    """A copy of ``model``, weights included, whose BatchNormalization layers are
    ``BatchNorm`` with the same configuration."""
    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return BatchNorm.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
