"""The LabelEnc adaptation module on the detector side (LabelEnc appendix).

conv 3×3 -> ReLU -> conv 3×3 -> ReLU -> conv 3×3, all at the FPN width with biases, one set
of weights shared by every pyramid level; the distillation loss (``distill.py``) compares
adapt(FPN(I)) with the label encoder's pyramid. Training-only: nothing of it is exported.
Kernels start from He-uniform like the FPN's *(ours)*.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.modeling.tracking import track


class Adaptation(keras.layers.Layer):
    """{level: P_l [B, H_l, W_l, C]} -> {level: adapt(P_l)} with the same shapes."""

    def __init__(self, channels: int = 256, name: str = "labelenc_adapt", **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        init = keras.initializers.HeUniform()
        self.convs = [keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init,
                                          name=f"conv{i}") for i in (1, 2, 3)]
        track(self, self.convs)

    def adapt(self, x):
        """One level map [B, H, W, C] -> [B, H, W, C]."""
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = tf.nn.relu(x)
        return x

    def call(self, pyramid: dict) -> dict:
        return {level: self.adapt(features) for level, features in pyramid.items()}
