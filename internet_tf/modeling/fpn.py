"""Feature pyramid P2–P6 (SPEC §1, Lin et al. 2017): lateral 1×1, nearest top-down, 3×3 output.

P6 is a stride-2 max-pool of P5 and is used by the RPN only.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import PYRAMID_LEVELS


class FPN(keras.layers.Layer):
    """{2..5: C_l} -> {2..6: P_l}, each with ``channels`` channels."""

    def __init__(self, channels: int = 256, name: str = "fpn", **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        init = keras.initializers.HeUniform()
        self.lateral = [keras.layers.Conv2D(channels, 1, kernel_initializer=init, name=f"lateral_p{l}")
                        for l in PYRAMID_LEVELS]
        self.output_conv = [keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init,
                                                name=f"output_p{l}") for l in PYRAMID_LEVELS]
        track(self, self.lateral + self.output_conv)
        self.p6 = keras.layers.MaxPooling2D(pool_size=1, strides=2, name="p6_pool")

    def call(self, feats):
        lat = {l: self.lateral[l - PYRAMID_LEVELS[0]](feats[l]) for l in PYRAMID_LEVELS}
        top = lat[PYRAMID_LEVELS[-1]]
        merged = {PYRAMID_LEVELS[-1]: top}
        for l in reversed(PYRAMID_LEVELS[:-1]):
            size = tf.shape(lat[l])[1:3]
            top = lat[l] + tf.image.resize(top, size, method="nearest")
            merged[l] = top
        out = {l: self.output_conv[l - PYRAMID_LEVELS[0]](merged[l]) for l in PYRAMID_LEVELS}
        out[PYRAMID_LEVELS[-1] + 1] = self.p6(out[PYRAMID_LEVELS[-1]])
        return out
