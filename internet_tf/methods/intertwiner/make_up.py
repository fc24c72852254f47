"""The make-up layer (paper Table 6): conv k×k C→C + BatchNorm + ReLU, one unit per level
(or one shared), in the detector's path at training and inference (SPEC §2).

Two placements (SPEC §2, "where the paper and the authors' code disagree"):
- ``MakeUp`` (Table 6): on each RoI's 14×14 RoIAlign output, with its level's unit;
- ``MakeUpMap`` (the authors' code): on the whole level map P_l before RoIAlign — one conv
  per level instead of one per RoI. For a 1×1 kernel and RoI samples that fall on pixel
  centres the two agree exactly (the conv, BN and ReLU act per position).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.methods.intertwiner.units import conv_bn_relu, run_units
from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import ROI_LEVELS


class _Units(keras.layers.Layer):
    def __init__(self, channels: int, shared: bool, kernel_size: int, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.shared = shared
        count = 1 if shared else len(ROI_LEVELS)
        self.units = [conv_bn_relu(channels, kernel_size, 1, "same",
                                   "shared" if shared else f"level{ROI_LEVELS[i]}") for i in range(count)]
        track(self, [layer for unit in self.units for layer in unit])

    def unit(self, level: int):
        return self.units[0 if self.shared else ROI_LEVELS.index(level)]


class MakeUp(_Units):
    """Table 6 on RoIs. RoI features [B, R, S, S, C] + levels [B, R] -> same shape."""

    def __init__(self, channels: int, shared: bool = False, kernel_size: int = 3,
                 name: str = "make_up", **kwargs):
        super().__init__(channels, shared, kernel_size, name, **kwargs)

    def call(self, roi_features, levels, training=False):
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        flat = tf.reshape(roi_features, [-1, s, s, c])
        if self.shared:
            out = run_units(self.units[0], flat, training, flat.shape[1:], may_be_empty=False)
        else:
            flat_levels = tf.reshape(levels, [-1])
            positions, parts = [], []
            for level in ROI_LEVELS:
                idx = tf.cast(tf.where(tf.equal(flat_levels, level))[:, 0], tf.int32)
                parts.append(run_units(self.unit(level), tf.gather(flat, idx), training, flat.shape[1:]))
                positions.append(idx)
            out = tf.dynamic_stitch(positions, parts)
        return tf.reshape(out, shape)


class MakeUpMap(_Units):
    """The authors' placement: {l: P_l} -> {l: make_up_l(P_l)} for the RoI levels (P6, which
    only the RPN reads, passes through)."""

    def __init__(self, channels: int, shared: bool = False, kernel_size: int = 3,
                 name: str = "make_up", **kwargs):
        super().__init__(channels, shared, kernel_size, name, **kwargs)

    def call(self, pyramid, training=False):
        out = dict(pyramid)
        for level in ROI_LEVELS:
            out[level] = run_units(self.unit(level), pyramid[level], training, may_be_empty=False)
        return out
