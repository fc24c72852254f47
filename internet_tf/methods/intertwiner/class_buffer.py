"""Class buffer of the feature intertwiner (paper Sec. 3.2, Eq. 1–2; Tables 2d/2e).

The buffer B = [b_1, ..., b_K] (Eq. 1) holds one *representative* per class, built from the
critic features of the reliable (large) set of every level. Eq. 2's default mapping M is the
mean of all features ever seen for the class ("all history, equal weight", Table 2d), kept
as a running per-class ``sums`` / ``counts``. Options (Table 2d): ``"decay"`` (exponential
moving average) and ``"window"`` ("partial": the last N features of any class, N = 2000).

Labels follow docs/conventions.md: classes are 1..K; index 0 (background) is never filled;
rows with label <= 0 (background, -1 padding) or > K are ignored, so callers may pass masked
rows. Every method returns ``[K+1, D]`` representatives and a ``[K+1]`` bool ``valid``
(class has >= 1 entry); invalid rows are exactly 0, never NaN.

Unified or per level (Table 2e): ``num_buffers=1`` (default) is one buffer for all levels;
``num_buffers=3`` keeps one buffer per level 2, 3, 4 (buffer index = level - 2), and level
5, which adds nothing to the buffer (paper Sec. 3.1), reads buffer 0 = level 2's (paper footnote 3).
``buffer_for_level`` implements that mapping.

The state is non-trainable Keras variables (never receives gradients; saved with the model by
``tf.train.Checkpoint``). ``update`` adds the current batch *before* the loss reads the
representatives (Sec. 3.2). ``detach=True`` (default, Table 2e) feeds features through
``stop_gradient``; with ``detach=False`` the returned representatives carry the gradient of
the current batch's share, ``rep = sg(rep) + w_c * (batch_sum_c - sg(batch_sum_c))``, with old
history constant (w_c = 1/count_c for "all"; (1-decay)/n_c, or 1/n_c on a class's first
appearance, for "decay"; 1/window_count_c for "window").

Distributed training ("all"/"decay"): ``update`` is exactly ``batch_statistics`` followed by
``apply_statistics``. Under a ``tf.distribute`` strategy, compute ``batch_statistics`` per
replica, all-reduce (SUM) both the class sums and the class counts, then call
``apply_statistics`` on every replica: each replica then holds exactly what a single device
would hold after an update with the global batch. The variables use the
``only_first_replica`` aggregation, so the identical per-replica assignments are accepted.
For "window", all-gather features and labels across replicas first and call ``update`` with
the gathered batch (the ring order then follows the gather order).

"all" accumulates in float64: counts of a frequent class pass 2**24 over a COCO schedule, where
float32 can no longer count one by one. Returned representatives are float32.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.config import CHOICES

_MODES = CHOICES["model.intertwiner.buffer.mode"]


def _div(num, den):
    """num [..., D] / den [...] with 0 where den == 0."""
    return tf.math.divide_no_nan(num, tf.cast(den, num.dtype)[..., None])


class ClassBuffer(keras.layers.Layer):
    """Per-class representatives of reliable-set critic features (paper Sec. 3.2)."""

    def __init__(self, num_classes: int, dim: int, mode: str = "all", decay: float = 0.99,
                 window: int = 2000, num_buffers: int = 1, detach: bool = True,
                 name: str = "class_buffer", **kwargs):
        kwargs.setdefault("dtype", "float32")  # never autocast features to a mixed policy
        super().__init__(name=name, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"decay must satisfy 0 < decay < 1, got {decay!r}")
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        if int(num_buffers) < 1:
            raise ValueError(f"num_buffers must be >= 1, got {num_buffers!r}")
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        if int(dim) < 1:
            raise ValueError(f"dim must be >= 1, got {dim!r}")
        self.num_classes, self.dim, self.mode = int(num_classes), int(dim), mode
        self.decay, self.window = float(decay), int(window)
        self.num_buffers, self.detach = int(num_buffers), bool(detach)
        nb, k1, d = self.num_buffers, self.num_classes + 1, self.dim

        def state(var_name, shape, dtype, init="zeros"):
            return self.add_weight(name=var_name, shape=shape, dtype=dtype, initializer=init,
                                   trainable=False, autocast=False,
                                   aggregation="only_first_replica")

        if mode == "all":
            self.sums = state("sums", (nb, k1, d), "float64")
            self.counts = state("counts", (nb, k1), "float64")
        elif mode == "decay":
            self.values = state("values", (nb, k1, d), "float32")
            self.counts = state("counts", (nb, k1), "float64")
        else:
            n = self.window
            self.window_features = state("window_features", (nb, n, d), "float32")
            self.window_labels = state("window_labels", (nb, n), "int32",
                                       keras.initializers.Constant(-1))
            self.window_pointer = state("window_pointer", (nb,), "int32")
        self.built = True

    # ----------------------------------------------------------------- helpers
    def buffer_for_level(self, level: int) -> int:
        """Buffer index of FPN level ``level`` (Table 2e): 0 if unified; else level - 2, and
        levels without their own buffer (level 5 with 3 buffers) read buffer 0 (level 2's)."""
        index = int(level) - 2
        return index if 0 <= index < self.num_buffers else 0

    def _index(self, buffer_index):
        if isinstance(buffer_index, int):
            if not 0 <= buffer_index < self.num_buffers:
                raise ValueError(f"buffer_index must be in [0, {self.num_buffers}), "
                                 f"got {buffer_index}")
        return tf.cast(buffer_index, tf.int32)

    @staticmethod
    def _assign_row(var, b, row):
        var.assign(tf.tensor_scatter_nd_update(var.value, tf.reshape(b, [1, 1]), row[None]))

    def _flat(self, features, labels):
        features = tf.reshape(tf.cast(features, tf.float32), [-1, self.dim])
        if self.detach:
            features = tf.stop_gradient(features)
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return features, labels, (labels > 0) & (labels <= self.num_classes)

    def _class_sums(self, features, labels, keep):
        """Vectorised per-class sums [K+1, D] and counts [K+1]; ignored rows go to a spare
        segment K+1 that is dropped (so NaN in padded rows cannot leak)."""
        k = self.num_classes
        seg = tf.where(keep, labels, k + 1)
        sums = tf.math.unsorted_segment_sum(features, seg, k + 2)[: k + 1]
        counts = tf.math.unsorted_segment_sum(tf.cast(keep, tf.float32), seg, k + 2)[: k + 1]
        return sums, counts

    def _attach(self, reps, weight, live_sums):
        reps = tf.stop_gradient(reps)
        if self.detach:
            return reps
        return reps + weight[:, None] * (live_sums - tf.stop_gradient(live_sums))

    # -------------------------------------------------------------- public API
    def batch_statistics(self, features, labels):
        """features [n, D], labels [n] -> (class_sums [K+1, D] float32, class_counts [K+1]
        float32). Rows with label <= 0 or > K are ignored; row 0 is always 0."""
        features, labels, keep = self._flat(features, labels)
        return self._class_sums(features, labels, keep)

    def apply_statistics(self, class_sums, class_counts, buffer_index=0):
        """Adds (possibly all-reduced) per-class statistics ("all"/"decay") and returns
        (representatives [K+1, D], valid [K+1]) after the update."""
        if self.mode == "window":
            raise ValueError("apply_statistics is for mode 'all'/'decay'; for 'window' "
                             "all-gather features and labels, then call update()")
        b = self._index(buffer_index)
        live = tf.cast(class_sums, tf.float32)
        n = tf.cast(tf.stop_gradient(class_counts), tf.float64)
        if self.mode == "all":
            new_sums = self.sums[b] + tf.cast(tf.stop_gradient(live), tf.float64)
            new_counts = self.counts[b] + n
            self._assign_row(self.sums, b, new_sums)
            self._assign_row(self.counts, b, new_counts)
            reps = tf.cast(_div(new_sums, new_counts), tf.float32)
            weight = tf.cast(tf.math.divide_no_nan(tf.ones_like(new_counts), new_counts),
                             tf.float32)
        else:
            old, old_counts = self.values[b], self.counts[b]
            n32 = tf.cast(n, tf.float32)
            seen, first = n32 > 0, (n32 > 0) & (old_counts <= 0)
            mean = _div(tf.stop_gradient(live), n32)
            ema = self.decay * old + (1.0 - self.decay) * mean
            reps = tf.where(seen[:, None], tf.where(first[:, None], mean, ema), old)
            new_counts = old_counts + n
            self._assign_row(self.values, b, reps)
            self._assign_row(self.counts, b, new_counts)
            share = tf.where(first, 1.0, 1.0 - self.decay)
            weight = tf.math.divide_no_nan(share, n32)
        return self._attach(reps, weight, live), new_counts > 0

    def update(self, features, labels, buffer_index=0):
        """Adds the batch (features [n, D], labels [n]; n may be 0) to buffer ``buffer_index``
        and returns (representatives [K+1, D], valid [K+1]) after the update."""
        if self.mode != "window":
            return self.apply_statistics(*self.batch_statistics(features, labels), buffer_index)
        b = self._index(buffer_index)
        features, labels, keep = self._flat(features, labels)
        feats, labs = tf.boolean_mask(features, keep), tf.boolean_mask(labels, keep)
        n = tf.shape(labs)[0]
        m = tf.minimum(n, self.window)  # keep only the last N rows of an oversized batch
        feats, labs = feats[n - m:], labs[n - m:]
        pointer = self.window_pointer[b]
        pos = tf.math.floormod(pointer + tf.range(m), self.window)
        idx = tf.stack([tf.fill([m], b), pos], axis=1)
        window_f = tf.tensor_scatter_nd_update(self.window_features.value, idx,
                                               tf.stop_gradient(feats))
        window_l = tf.tensor_scatter_nd_update(self.window_labels.value, idx, labs)
        self.window_features.assign(window_f)
        self.window_labels.assign(window_l)
        self._assign_row(self.window_pointer, b, tf.math.floormod(pointer + m, self.window))
        reps, counts = self._window_stats(window_f[b], window_l[b])
        live, _ = self._class_sums(feats, labs, tf.ones_like(labs, tf.bool))
        weight = tf.math.divide_no_nan(tf.ones_like(counts), counts)
        return self._attach(reps, weight, live), counts > 0

    def call(self, features, labels, buffer_index=0):
        return self.update(features, labels, buffer_index)

    def _window_stats(self, window_f, window_l):
        keep = (window_l > 0) & (window_l <= self.num_classes)
        sums, counts = self._class_sums(window_f, window_l, keep)
        return _div(sums, counts), counts

    def representatives(self, buffer_index=0):
        """Read-only (representatives [K+1, D] float32, valid [K+1] bool)."""
        b = self._index(buffer_index)
        if self.mode == "all":
            counts = self.counts[b]
            return tf.cast(_div(self.sums[b], counts), tf.float32), counts > 0
        if self.mode == "decay":
            valid = self.counts[b] > 0
            return tf.where(valid[:, None], self.values[b], 0.0), valid
        reps, counts = self._window_stats(self.window_features[b], self.window_labels[b])
        return reps, counts > 0

    # -------------------------------------------------------------- monitoring
    def coverage(self, buffer_index=0):
        """Number of classes with at least one entry (int32 scalar)."""
        return tf.reduce_sum(tf.cast(self.representatives(buffer_index)[1], tf.int32))

    def norms(self, buffer_index=0):
        """L2 norms of the valid representatives, [coverage] float32 (for a histogram)."""
        reps, valid = self.representatives(buffer_index)
        return tf.boolean_mask(tf.norm(reps, axis=-1), valid)

    def mean_norm(self, buffer_index=0):
        """Mean L2 norm of the valid representatives; 0 when there are none."""
        norms = self.norms(buffer_index)
        return tf.math.divide_no_nan(tf.reduce_sum(norms), tf.cast(tf.size(norms), tf.float32))

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dim=self.dim, mode=self.mode,
                      decay=self.decay, window=self.window, num_buffers=self.num_buffers,
                      detach=self.detach)
        return config
