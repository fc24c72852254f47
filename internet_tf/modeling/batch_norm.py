"""Batch normalisation synchronised across replicas.

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

An unmasked NHWC batch on one replica (and every inference call) runs TF's fused kernel,
``FusedBatchNormV3``, with the same outputs, gradients and moving averages: one op and one
gradient op instead of ~50 small ones each, which makes a train step faster to trace and
to run. The
default epsilon is therefore 1.001e-5, the smallest the fused kernel takes on a GPU (cuDNN's
bound; keras.applications' ResNets use it too).

``from_keras`` turns the BatchNormalization layers of an existing model (a
keras.applications ResNet) into this layer, so every BN of a detector works alike.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.ops.replica import global_sum, replicas_in_sync

# cuDNN's smallest epsilon for its fused kernel (TF's fused_batch_norm raises smaller ones to
# it); keras.applications' ResNets use it too.
FUSED_MIN_EPSILON = 1.001e-5


class BatchNorm(keras.layers.BatchNormalization):
    """Batch norm over the global batch, with masks; ignores a globally empty batch."""

    def __init__(self, epsilon: float = FUSED_MIN_EPSILON, **kwargs):
        super().__init__(epsilon=epsilon, **kwargs)

    def call(self, inputs, training=None, mask=None, update_statistics=True):
        train = bool(training) and self.trainable
        if self._fusable(inputs, mask, train):
            return self._fused(inputs, train, update_statistics)
        if update_statistics or not train:
            return super().call(inputs, training=training, mask=mask)
        dtype = inputs.dtype
        x = tf.cast(inputs, "float32")
        mean, variance = self._moments(x, mask)
        out = tf.nn.batch_normalization(x, mean, variance, *self._offset_scale(), self.epsilon)
        return tf.cast(out, dtype)

    def _offset_scale(self):
        beta = tf.cast(self.beta, "float32") if self.center else None
        gamma = tf.cast(self.gamma, "float32") if self.scale else None
        return beta, gamma

    def _fusable(self, inputs, mask, train) -> bool:
        """TF's fused kernel serves NHWC maps without a mask, in inference mode anywhere and
        in training mode with one replica (its batch statistics are the replica's own)."""
        return (mask is None and len(inputs.shape) == 4 and self.axis in (3, -1)
                and not self.renorm and self.epsilon >= FUSED_MIN_EPSILON
                and (not train or replicas_in_sync() == 1))

    def _fused(self, inputs, train, update_statistics):
        """The same normalisation as the unfused path, as one ``FusedBatchNormV3`` op and its
        one gradient op (instead of ~50 small ops each way): fewer ops to run and to trace."""
        # A bfloat16 map goes in as it is: the kernel keeps its statistics and arithmetic in
        # float32 (U) and rounds only its output, so the result is the cast route's, without
        # two casts of every map. float16 keeps the cast: the CPU's half kernel
        # gives a different training-mode gradient, and no GPU was here to check cuDNN's.
        x = inputs if inputs.dtype == tf.bfloat16 else tf.cast(inputs, "float32")
        channels = x.shape[-1]
        beta, gamma = self._offset_scale()
        gamma = tf.ones([channels]) if gamma is None else gamma
        beta = tf.zeros([channels]) if beta is None else beta
        if not train:
            mean, variance = (tf.cast(v, "float32") for v in (self.moving_mean, self.moving_variance))
        else:
            mean = variance = tf.constant([], tf.float32)
        y, batch_mean, batch_variance = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=mean, variance=variance, epsilon=self.epsilon,
            data_format="NHWC", is_training=train)[:3]
        if train and update_statistics:
            # The kernel returns the unbiased variance; the moving average takes the batch's
            # own (biased) one, as the unfused path does. An empty batch changes nothing.
            n = tf.cast(tf.size(x) // channels, tf.float32)
            seen = n > 0
            variance = batch_variance * tf.math.divide_no_nan(n - 1.0, n)
            for var, value in ((self.moving_mean, batch_mean), (self.moving_variance, variance)):
                old = tf.cast(var, "float32")
                var.assign(tf.where(seen, old * self.momentum + value * (1.0 - self.momentum), old))
        return tf.cast(y, self.compute_dtype)

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
