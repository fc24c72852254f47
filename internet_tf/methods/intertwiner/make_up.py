"""The make-up layer (paper Table 6): conv k×k C→C + BatchNorm + ReLU, one unit per level
(or one shared), in the detector's path at training and inference (Li et al. 2019, Sec. 3.1–3.2).

Two placements ("where the paper and the authors' code disagree"):
- ``MakeUp`` (Table 6): on each RoI's 14×14 RoIAlign output, with its level's unit;
- ``MakeUpMap`` (the authors' code): on the whole level map P_l before RoIAlign — one conv
  per level instead of one per RoI. For a 1×1 kernel and RoI samples that fall on pixel
  centres the two agree exactly (the conv, BN and ReLU act per position).

How the unit's output reaches the box head (``makeup_residual``; ours, chosen by the study):
- ``none`` (Table 6): the head sees unit(x) — conv + BN + ReLU replaces the feature;
- ``add``: x + unit(x), a residual unit: the baseline's feature still reaches the head;
- ``gated``: x + g·unit(x) with one learned scalar g per unit starting at 0, so at
  initialisation the detector path is exactly the baseline's.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.config import check_choice
from internet_tf.methods.intertwiner.units import conv_bn_relu, run_units
from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import ROI_LEVELS


class _Units(keras.layers.Layer):
    def __init__(self, channels: int, shared: bool, kernel_size: int, name: str,
                 residual: str = "none", **kwargs):
        super().__init__(name=name, **kwargs)
        self.shared = shared
        self.residual = check_choice("model.intertwiner.makeup_residual", residual)
        count = 1 if shared else len(ROI_LEVELS)
        names = ["shared" if shared else f"level{ROI_LEVELS[i]}" for i in range(count)]
        self.units = [conv_bn_relu(channels, kernel_size, 1, "same", n) for n in names]
        track(self, [layer for unit in self.units for layer in unit])
        self.gates = [self.add_weight(name=n + "_gate", shape=(), initializer="zeros")
                      for n in names] if residual == "gated" else []

    def _index(self, level: int) -> int:
        """Position of ``level``'s unit (and gate) in the lists: 0 when shared."""
        return 0 if self.shared else ROI_LEVELS.index(level)

    def unit(self, level: int):
        return self.units[self._index(level)]

    def _apply(self, level: int, x, training, **kwargs):
        """The unit of ``level`` on ``x``, combined with ``x`` as ``residual`` says."""
        y = run_units(self.unit(level), x, training, **kwargs)
        if self.residual == "none":
            return y
        if self.residual == "gated":
            y = tf.cast(self.gates[self._index(level)], y.dtype) * y
        return x + y


class MakeUp(_Units):
    """Table 6 on RoIs. RoI features [B, R, S, S, C] + levels [B, R] -> same shape."""

    def __init__(self, channels: int, shared: bool = False, kernel_size: int = 3,
                 name: str = "make_up", residual: str = "none", **kwargs):
        super().__init__(channels, shared, kernel_size, name, residual, **kwargs)

    def call(self, roi_features, levels, training=False):
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        flat = tf.reshape(roi_features, [-1, s, s, c])
        if self.shared:
            out = self._apply(ROI_LEVELS[0], flat, training, out_shape=flat.shape[1:], may_be_empty=False)
        else:
            flat_levels = tf.reshape(levels, [-1])
            positions, parts = [], []
            for level in ROI_LEVELS:
                idx = tf.cast(tf.where(tf.equal(flat_levels, level))[:, 0], tf.int32)
                parts.append(self._apply(level, tf.gather(flat, idx), training, out_shape=flat.shape[1:]))
                positions.append(idx)
            out = tf.dynamic_stitch(positions, parts)
        return tf.reshape(out, shape)


class MakeUpMap(_Units):
    """The authors' placement: {l: P_l} -> {l: make_up_l(P_l)} for the RoI levels (P6, which
    only the RPN reads, passes through)."""

    def __init__(self, channels: int, shared: bool = False, kernel_size: int = 3,
                 name: str = "make_up", residual: str = "none", **kwargs):
        super().__init__(channels, shared, kernel_size, name, residual, **kwargs)

    def call(self, pyramid, training=False):
        out = dict(pyramid)
        for level in ROI_LEVELS:
            out[level] = self._apply(level, pyramid[level], training, may_be_empty=False)
        return out
