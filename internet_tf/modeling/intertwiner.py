"""The feature intertwiner's pieces (paper Sec. 3.1–3.2, Sec. 6.2, Tables 2, 6, 7; SPEC §2).

- ``small_large_masks``: Eq. 7 — the small (less reliable) set of level l is the foreground
  RoIs assigned to l; its large (reliable) set is the foreground RoIs assigned to m > l.
  ``roi_size`` is Table 2a's "by RoI size" split (a RoI smaller than the RoI output on its
  level's map is small, otherwise large).
- ``MakeUp``: Table 6, conv 3×3 C→C + BatchNorm + ReLU on the 14×14 RoI feature, one per
  level (or shared), in the detector's path at training and inference.
- ``Critic``: Table 7, conv 3×3/2 → 512 + BN + ReLU, conv 7×7 → D + BN + ReLU, sigmoid.
- ``intertwiner_distance``: Eq. 3's D — l2, l1 or KL = b·log(b/f) on features normalised to 1.
- ``merge``: Table 2c — ``linear`` 0.5·head + 0.5·critic, ``separate``, ``naive_add``.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.modeling.batch_norm import BatchNorm
from internet_tf.modeling.tracking import track
from internet_tf.ops.replica import global_mean

LEVELS = (2, 3, 4, 5)


def small_large_masks(classes, levels, level: int, *, split: str = "level", rois=None,
                      roi_output_size: int = 14):
    """Eq. 7 for one level -> (small [B, R] bool, large [B, R] bool), foreground RoIs only."""
    fg = classes > 0
    at_level = tf.equal(levels, level)
    if split == "level":
        return fg & at_level, fg & (levels > level)
    if split == "roi_size":
        side = float(roi_output_size * 2 ** level)  # the RoI output's extent on P_l, in pixels
        area = (rois[..., 2] - rois[..., 0]) * (rois[..., 3] - rois[..., 1])
        below = area < side * side
        return fg & at_level & below, fg & ((levels > level) | (at_level & ~below))
    raise ValueError(f"intertwiner split must be 'level' or 'roi_size', got {split!r}")


def _conv_bn_relu(filters, kernel, stride, padding, name):
    return [keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                                kernel_initializer="he_normal", name=name + "_conv"),
            BatchNorm(name=name + "_bn"),
            keras.layers.ReLU(name=name + "_relu")]


def _run(layers, x, training, out_shape, may_be_empty: bool = True):
    """Applies conv/BN/ReLU ``layers`` to a set of RoIs ``x`` [N, ...].

    A set that ``may_be_empty`` gets a masked all-zero stand-in row, so the layers never
    see an empty batch (TF's CPU Conv2D mis-shapes one) and every replica joins the
    synchronised BatchNorm's all-reduce even when its own set is empty; the mask keeps the
    row out of the batch statistics (``BatchNorm`` leaves its moving averages alone if no
    replica has a row), and the row is dropped from the output. Sets that are never empty
    (all RoIs of the batch) skip that copy.
    """
    n = tf.shape(x)[0]
    y, real = x, None
    if may_be_empty:
        y = tf.concat([x, tf.zeros(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)], 0)
        real = tf.range(n + 1) < n
    for layer in layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mask = None if real is None else tf.broadcast_to(real[:, None, None], tf.shape(y)[:3])
            y = layer(y, training=training, mask=mask)
        else:
            y = layer(y)
    return tf.ensure_shape(y if real is None else y[:n], [None] + list(out_shape))


class MakeUp(keras.layers.Layer):
    """Table 6. RoI features [B, R, S, S, C] + levels [B, R] -> made-up features, same shape."""

    def __init__(self, channels: int, shared: bool = False, name: str = "make_up", **kwargs):
        super().__init__(name=name, **kwargs)
        self.shared = shared
        count = 1 if shared else len(LEVELS)
        self.units = [_conv_bn_relu(channels, 3, 1, "same", f"level{LEVELS[i]}" if not shared else "shared")
                      for i in range(count)]
        track(self, [layer for unit in self.units for layer in unit])

    def call(self, roi_features, levels, training=False):
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        flat = tf.reshape(roi_features, [-1, s, s, c])
        if self.shared:
            out = _run(self.units[0], flat, training, flat.shape[1:], may_be_empty=False)
        else:
            flat_levels = tf.reshape(levels, [-1])
            positions, parts = [], []
            for i, level in enumerate(LEVELS):
                idx = tf.cast(tf.where(tf.equal(flat_levels, level))[:, 0], tf.int32)
                parts.append(_run(self.units[i], tf.gather(flat, idx), training, flat.shape[1:]))
                positions.append(idx)
            out = tf.dynamic_stitch(positions, parts)
        return tf.reshape(out, shape)


class Critic(keras.layers.Layer):
    """Table 7, shared by both sets. [N, 14, 14, C] -> [N, D] in (0.5, 1) (sigmoid after ReLU)."""

    def __init__(self, hidden: int = 512, dim: int = 1024, name: str = "critic", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dim = dim
        self.reduce = _conv_bn_relu(hidden, 3, 2, "same", "reduce")
        self.embed = _conv_bn_relu(dim, 7, 1, "valid", "embed")
        track(self, self.reduce + self.embed)

    def call(self, x, training=False, may_be_empty=True):
        x = _run(self.reduce + self.embed, x, training, [1, 1, self.dim], may_be_empty)  # 14×14 -> 1×1
        return tf.sigmoid(tf.reshape(x, [-1, self.dim]))

    def on_rois(self, roi_features, training=False):
        """[B, R, S, S, C] -> [B, R, D]."""
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        out = self(tf.reshape(roi_features, [-1, s, s, c]), training=training, may_be_empty=False)
        return tf.reshape(out, [shape[0], shape[1], self.dim])


def intertwiner_distance(small, reference, kind: str = "l2", eps: float = 1e-6):
    """Eq. 3's D between rows of ``small`` [N, D] and their class representatives [N, D] -> [N].

    ``l2``/``l1`` average the squared/absolute difference over the D feature dimensions (the
    mean-reduced MSE/L1 of the authors' code), so the loss scale does not grow with D; ``kl``
    is a proper KL divergence of the two features normalised to sum 1.
    """
    if kind == "l2":
        return tf.reduce_mean(tf.square(small - reference), axis=-1)
    if kind == "l1":
        return tf.reduce_mean(tf.abs(small - reference), axis=-1)
    if kind == "kl":
        f = small / (tf.reduce_sum(small, axis=-1, keepdims=True) + eps)
        b = reference / (tf.reduce_sum(reference, axis=-1, keepdims=True) + eps)
        return tf.reduce_sum(b * (tf.math.log(b + eps) - tf.math.log(f + eps)), axis=-1)
    raise ValueError(f"intertwiner loss must be 'l2', 'l1' or 'kl', got {kind!r}")


def level_loss(critic_small, classes, small_mask, reps, valid, kind: str):
    """Mean of D over the small set's RoIs whose class has a buffer entry (0 if none; never NaN).

    ``critic_small`` [B, R, D], ``classes``/``small_mask`` [B, R], ``reps`` [K+1, D], ``valid`` [K+1].
    """
    idx = tf.where(small_mask)
    feats = tf.gather_nd(critic_small, idx)
    labels = tf.gather_nd(classes, idx)
    weight = tf.cast(tf.gather(valid, labels), feats.dtype)
    dist = intertwiner_distance(feats, tf.gather(reps, labels), kind)
    return global_mean(tf.reduce_sum(dist * weight), tf.reduce_sum(weight))


def merge(head_features, critic_features, mode: str = "linear"):
    """Table 2c: how the critic feature joins the detection head's feature."""
    if mode == "linear":
        return 0.5 * head_features + 0.5 * critic_features
    if mode == "separate":
        return head_features
    if mode == "naive_add":
        return head_features + critic_features
    raise ValueError(f"intertwiner merge must be 'linear', 'separate' or 'naive_add', got {mode!r}")
