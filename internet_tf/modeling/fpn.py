"""The neck between backbone and heads: C2–C5 -> P2–P6 (Lin et al. 2017; Li et al. 2019, Table 5).

- ``FPN`` (``model.fpn: true``; Lin et al. 2017): lateral 1×1, nearest top-down, 3×3 output.
- ``LevelProjection`` (``model.fpn: false``; paper Table 5, "without FPN"): each level is its
  backbone level projected to the same width by a 1×1 conv, with no top-down pathway — so the
  RPN, RoIAlign, box head and intertwiner see the same dict of equally wide maps either way.
  ResNet-50/101 give P2–P5 at strides 4–32; VGG-16 (which has no FPN variant here) its
  SSD-style levels at strides 16–128 (``modeling/vgg.py``).

Both add P6, a stride-2 max-pool (kernel 1) of P5, used by the RPN only.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.config import ModelConfig
from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import PYRAMID_LEVELS, RPN_LEVELS


def _p6_pool():
    return keras.layers.MaxPooling2D(pool_size=1, strides=2, name="p6_pool")


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
        self.p6 = _p6_pool()

    def call(self, feats):
        lat = {l: self.lateral[l - PYRAMID_LEVELS[0]](feats[l]) for l in PYRAMID_LEVELS}
        top = lat[PYRAMID_LEVELS[-1]]
        merged = {PYRAMID_LEVELS[-1]: top}
        for l in reversed(PYRAMID_LEVELS[:-1]):
            size = tf.shape(lat[l])[1:3]
            top = lat[l] + tf.image.resize(top, size, method="nearest")
            merged[l] = top
        out = {l: self.output_conv[l - PYRAMID_LEVELS[0]](merged[l]) for l in PYRAMID_LEVELS}
        out[RPN_LEVELS[-1]] = self.p6(out[PYRAMID_LEVELS[-1]])
        return out


class LevelProjection(keras.layers.Layer):
    """No FPN: {2..5: C_l} -> {2..6: P_l}, P_l = 1×1 conv of C_l to ``channels``, P6 as above."""

    def __init__(self, channels: int = 256, name: str = "projection", **kwargs):
        super().__init__(name=name, **kwargs)
        self.channels = channels
        self.project = [keras.layers.Conv2D(channels, 1, kernel_initializer=keras.initializers.HeUniform(),
                                            name=f"project_p{l}") for l in PYRAMID_LEVELS]
        track(self, self.project)
        self.p6 = _p6_pool()

    def call(self, feats):
        out = {l: conv(feats[l]) for l, conv in zip(PYRAMID_LEVELS, self.project)}
        out[RPN_LEVELS[-1]] = self.p6(out[PYRAMID_LEVELS[-1]])
        return out


def build_neck(cfg: ModelConfig):
    """``FPN`` or, with ``model.fpn: false``, ``LevelProjection``, both ``fpn_channels`` wide.

    VGG-16 is the paper's no-FPN backbone (Table 5) and has no FPN here; LabelEnc needs an FPN
    (its step 2 starts the detector's FPN from the label encoder's). Both pairings are
    refused when the config is loaded (``config.validate``)."""
    return FPN(cfg.fpn_channels) if cfg.fpn else LevelProjection(cfg.fpn_channels)
