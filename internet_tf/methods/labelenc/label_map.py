"""The LabelEnc label map y (Hao et al. 2020, appendix: the input of Table 1's h).

One channel per class (no background): class c in 1..K paints channel c - 1 of a float32
``[B, H, W, K]`` map at the padded input resolution. Each box paints the pyramid

    v(x, y) = 1 - max(|x - cx| / w, |y - cy| / h),   zeroed where v < 0.5,

with (cx, cy) the box centre and w, h its *full* width and height, so v is 1 at the centre,
0.5 on the box's edge and 0 outside; boxes of one class overlap by their maximum.

Pixel positions. The "integer pixel positions" are the pixels i = 0..H-1, j = 0..W-1.
Boxes are in this library's continuous coordinates, where pixel i covers [i, i + 1)
(docs/conventions.md), so pixel (i, j) is evaluated at its centre (y, x) = (i + 0.5, j + 0.5).
(The authors' code evaluates at integer coordinates in maskrcnn-benchmark's box convention,
where integer i *is* the centre of pixel i; evaluating at our centres is the same rule.)
A pixel whose centre lies exactly on the box's edge gets 0.5 (kept: only values *below*
0.5 are zeroed); one whose centre lies outside gets 0.

Ignored rows: padding (class -1), background (0), classes above K and boxes with no extent
(h <= 0 or w <= 0) paint nothing.

Intensity augmentation (step 1 only): ``intensity [B, M]`` multiplies each box's values
*after* the 0.5 threshold (so a box scaled by s spans [s/2, s]); ``random_intensity``
draws min(2·U(0, 1), 1) per box, i.e. 1 with probability 1/2 and uniform on [0, 1)
otherwise.

Memory. A ``[B, M, H, W, K]`` intermediate (M = 100 slots, K = 80 classes at 1024²: 8.4e9
floats per image) is out of the question, and so is a per-box one-hot ``[B, H, W, K]``
update (K times the work). Each box's 2-D values are the min of a thresholded row profile
``[B, M', H]`` and column profile ``[B, M', W]``; ``tf.math.unsorted_segment_max`` then
folds the ``[B·M', H, W]`` box values into ``[B·K, H, W]`` by (image, class) in one pass,
and a transpose gives ``[B, H, W, K]``. M' is one past the last slot holding a real box in
any image (ground truth is padded at the end, so M' is the batch's largest box count, not
``max_instances``). Peak memory: the box values (M'/K of the output) plus the output twice
(before and after the transpose). A ``tf.while_loop`` over boxes folding each into a
``[B, K, H, W]`` accumulator with ``tf.tensor_scatter_nd_max`` needs less, but TF copies the
whole accumulator at every step, which makes it about ten times slower on CPU. Runs inside ``tf.function`` with static or dynamic B, M, H and W.
"""
from __future__ import annotations

import tensorflow as tf


def random_intensity(gt_classes, seed=None):
    """Per-box intensity min(2·U(0, 1), 1), float32 with the shape of ``gt_classes`` [B, M].

    ``seed`` is an op-level seed (as in ``ops/sampling.py``). Values lie in [0, 1]; a box
    keeps full intensity exactly 1 whenever U >= 0.5 (probability 1/2).
    """
    u = tf.random.uniform(tf.shape(gt_classes), 0.0, 1.0, dtype=tf.float32, seed=seed)
    return tf.minimum(2.0 * u, 1.0)


def _used_slots(valid):
    """1 + the largest slot index m holding a valid box in any image (0 if none)."""
    used = tf.reduce_any(valid, axis=0)
    return tf.maximum(tf.reduce_max(tf.where(used, tf.range(tf.shape(valid)[1]) + 1, 0)), 0)


def _profile(centres, lo, hi, factor):
    """Thresholded 1 - |t - c| / extent along one axis, times the box factor: [B, M', size].

    Thresholding each axis on its own is exact: min(a, b) >= 0.5 iff a >= 0.5 and b >= 0.5,
    and a profile is then either >= 0.5 or 0, so the min of the two is 0 exactly when the
    2-D value is below 0.5. Multiplying both by a factor >= 0 scales their min by it.
    """
    value = 1.0 - tf.abs(centres - 0.5 * (lo + hi)[..., None]) / (hi - lo)[..., None]
    return tf.where(value >= 0.5, value, 0.0) * factor[..., None]


def label_map(gt_boxes, gt_classes, num_classes: int, height, width, intensity=None, channels=None):
    """Ground truth -> label map y, float32 ``[B, height, width, num_classes]``.

    ``gt_boxes`` [B, M, 4] (ymin, xmin, ymax, xmax) in absolute pixels of the padded input;
    ``gt_classes`` [B, M] in 1..K, -1 for padding; ``num_classes`` K (a Python int);
    ``height``/``width`` Python ints or scalar int tensors; ``intensity`` optional [B, M]
    per-box factor (``random_intensity`` for step 1; None: the clean map of step 2).
    ``channels`` (optional sorted int [P], e.g. ``present_channels``): build only these
    channels of y, ``[B, height, width, P]`` — the same values as ``tf.gather(y, channels,
    axis=-1)`` without building the other, all-zero ones.
    """
    num_classes = int(num_classes)
    classes = tf.cast(gt_classes, tf.int32)
    static_b = classes.shape[0]
    boxes = tf.cast(gt_boxes, tf.float32)
    factor = tf.ones_like(boxes[..., 0]) if intensity is None else tf.cast(intensity, tf.float32)
    valid = ((classes >= 1) & (classes <= num_classes)
             & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1]))
    used = _used_slots(valid)  # trailing padding slots are never computed
    classes, boxes, factor, valid = (t[:, :used] for t in (classes, boxes, factor, valid))
    # Ignored rows: a harmless unit box (no division by zero) with factor 0 (all zeros).
    boxes = tf.where(valid[..., None], boxes, tf.constant([0.0, 0.0, 1.0, 1.0]))
    factor = tf.where(valid, factor, 0.0)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    ys = tf.cast(tf.range(height), tf.float32) + 0.5  # pixel centres
    xs = tf.cast(tf.range(width), tf.float32) + 0.5
    rows = _profile(ys, ymin, ymax, factor)  # [B, M', H]
    cols = _profile(xs, xmin, xmax, factor)  # [B, M', W]
    values = tf.minimum(rows[..., :, None], cols[..., None, :])  # [B, M', H, W]

    batch = tf.shape(classes)[0]
    if channels is None:
        count, static_count = num_classes, num_classes
        channel = tf.clip_by_value(classes - 1, 0, num_classes - 1)
    else:  # a box whose class is not among ``channels`` is dropped (its values set to 0)
        channels = tf.cast(channels, tf.int32)
        count, static_count = tf.size(channels), channels.shape[0]
        wanted = tf.reshape(classes - 1, [-1])
        channel = tf.reshape(tf.minimum(tf.searchsorted(channels, wanted), count - 1), tf.shape(classes))
        values *= tf.cast(tf.gather(channels, channel) == classes - 1, tf.float32)[..., None, None]
    segment = tf.range(batch)[:, None] * count + channel  # (image, channel) of each box
    flat = tf.reshape(values, tf.concat([[-1], tf.shape(values)[2:]], 0))
    per_class = tf.math.unsorted_segment_max(flat, tf.reshape(segment, [-1]), batch * count)
    per_class = tf.maximum(per_class, 0.0)  # empty segments come back as the lowest float
    out = tf.reshape(per_class, tf.concat([[batch, count], tf.shape(values)[2:]], 0))
    out = tf.transpose(out, [0, 2, 3, 1])
    static = [tf.get_static_value(v) if tf.is_tensor(v) else int(v) for v in (height, width)]
    return tf.ensure_shape(out, [static_b, *static, static_count])
