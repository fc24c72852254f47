"""The critic (paper Table 7), shared by the small and the large set.

conv 3×3 stride 2 → hidden (7×7) + BN + ReLU; conv 7×7 → D (1×1) + BN + ReLU; sigmoid, so
features lie in [0.5, 1). ``extra_conv`` adds the authors' code's third unit, a 1×1 conv
D → D + BN + ReLU before the sigmoid ("where the paper and the authors' code
disagree").
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.methods.intertwiner.units import conv_bn_relu, run_units
from internet_tf.modeling.tracking import track


class Critic(keras.layers.Layer):
    """[N, 14, 14, C] -> [N, D]."""

    def __init__(self, hidden: int = 512, dim: int = 1024, extra_conv: bool = False,
                 name: str = "critic", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dim = dim
        self.reduce = conv_bn_relu(hidden, 3, 2, "same", "reduce")
        self.embed = conv_bn_relu(dim, 7, 1, "valid", "embed")
        self.extra = conv_bn_relu(dim, 1, 1, "valid", "extra") if extra_conv else []
        track(self, self.reduce + self.embed + self.extra)

    def call(self, x, training=False, may_be_empty=True, update_statistics=True):
        x = run_units(self.reduce + self.embed + self.extra, x, training, [1, 1, self.dim],
                      may_be_empty, update_statistics)  # 14×14 -> 1×1
        return tf.sigmoid(tf.reshape(x, [-1, self.dim]))

    def on_rois(self, roi_features, training=False):
        """[B, R, S, S, C] -> [B, R, D]."""
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        out = self(tf.reshape(roi_features, [-1, s, s, c]), training=training, may_be_empty=False)
        return tf.reshape(out, [shape[0], shape[1], self.dim])
