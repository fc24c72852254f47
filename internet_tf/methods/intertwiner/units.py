"""Conv + BatchNorm + ReLU units run on sets of RoIs, shared by the make-up layer (Table 6)
and the critic (Table 7)."""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.modeling.batch_norm import BatchNorm


class WindowConv2D(keras.layers.Conv2D):
    """A ``valid`` conv whose kernel covers the whole input window (the critic's 7×7 on a
    7×7 map, its 1×1 on a 1×1): one output position, so it runs as the matrix product it
    is, [N, k·k·C] @ [k·k·C, D] — the same sums as the conv (the kernel keeps its [k, k, C,
    D] layout, so checkpoints are unchanged) in less CPU time than the conv. Inputs of another
    spatial size take the ordinary conv."""

    def call(self, inputs):
        k = self.kernel.shape
        if tuple(inputs.shape[1:3]) != tuple(k[:2]) or self.use_bias:
            return super().call(inputs)
        flat = tf.reshape(inputs, [-1, k[0] * k[1] * k[2]])
        out = tf.matmul(flat, tf.reshape(tf.cast(self.kernel, flat.dtype), [-1, k[3]]))
        return tf.reshape(out, [-1, 1, 1, k[3]])


def conv_bn_relu(filters, kernel, stride, padding, name):
    conv = WindowConv2D if padding == "valid" and stride == 1 else keras.layers.Conv2D
    return [conv(filters, kernel, strides=stride, padding=padding, use_bias=False,
                 kernel_initializer="he_normal", name=name + "_conv"),
            BatchNorm(name=name + "_bn"),
            keras.layers.ReLU(name=name + "_relu")]


def run_units(layers, x, training, out_shape=None, may_be_empty: bool = True,
              update_statistics: bool = True):
    """Applies conv/BN/ReLU ``layers`` to a set of RoIs (or maps) ``x`` [N, ...].

    A set that ``may_be_empty`` gets a masked all-zero stand-in row, so the layers never
    see an empty batch (TF's CPU Conv2D mis-shapes one) and every replica joins the
    synchronised BatchNorm's all-reduce even when its own set is empty; the mask keeps the
    row out of the batch statistics (``BatchNorm`` leaves its moving averages alone if no
    replica has a row), and the row is dropped from the output. Sets that are never empty
    (all RoIs of the batch, whole maps) skip that copy. ``update_statistics=False``
    normalises with the set's batch statistics but leaves the BN moving averages — which
    inference uses — untouched.
    """
    n = tf.shape(x)[0]
    y, real = x, None
    if may_be_empty:
        y = tf.concat([x, tf.zeros(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)], 0)
        real = tf.range(n + 1) < n
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mask = None if real is None else tf.broadcast_to(real[:, None, None], tf.shape(y)[:3])
            y = layer(y, training=training, mask=mask, update_statistics=update_statistics)
        else:
            y = layer(y)
    y = y if real is None else y[:n]
    return y if out_shape is None else tf.ensure_shape(y, [None] + list(out_shape))
