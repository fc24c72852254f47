"""RoI-to-level assignment (paper Eq. 6) and RoIAlign with ``tf.image.crop_and_resize`` (Lin et al. 2017).

Eq. 6: ``l = floor(l0 + log2(sqrt(w·h) / base))`` with ``l0 = 4``, ``base = 224``, clamped to
[2, 5]; ``round`` is an option, and ``base = 40`` is the paper's "more on higher" variant.
Eq. 6 names a level index; the level's stride is the backbone's (``ops/levels.py``: 2**l for
the ResNets, 2**(l+2) for VGG-16), passed in as a ``{level: stride}`` dict.

RoIAlign samples ``sampling_ratio × sampling_ratio`` bilinear points at the centres of the
sub-bins of every output bin (half-pixel aligned: pixel i covers [i, i+1)), then averages
them: ``crop_and_resize`` to ``output_size·sampling_ratio`` followed by average pooling.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import check_choice
from internet_tf.ops.levels import FPN_STRIDES, ROI_LEVELS


def assign_levels(boxes, *, base: float = 224.0, canonical_level: int = 4,
                  min_level: int = ROI_LEVELS[0], max_level: int = ROI_LEVELS[-1], rounding: str = "floor"):
    """Eq. 6. ``boxes`` [..., 4] in input pixels -> int32 levels [...]."""
    h = tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
    w = tf.maximum(boxes[..., 3] - boxes[..., 1], 0.0)
    size = tf.sqrt(h * w)
    raw = canonical_level + tf.math.log(tf.maximum(size, 1e-6) / base) / tf.math.log(2.0)
    check_choice("model.roi.level_rounding", rounding)
    if rounding == "floor":
        level = tf.floor(raw + 1e-6)  # a box of exactly base·2^k lands on its own level
    else:
        level = tf.round(raw)
    return tf.cast(tf.clip_by_value(level, min_level, max_level), tf.int32)


def crop_level(feature, boxes, box_indices, stride: int, output_size: int = 14,
               sampling_ratio: int = 2):
    """RoIAlign of flat ``boxes`` [K, 4] (input pixels) on one map [B, H, W, C] -> [K, S, S, C].

    ``box_indices`` [K] picks the batch element of each box. Crops are float32 whatever the
    map's dtype (``crop_and_resize`` has no bfloat16 kernel; a mixed-precision map is cast).
    """
    if feature.dtype != tf.float32:
        feature = tf.cast(feature, tf.float32)
    height = tf.cast(tf.shape(feature)[1], tf.float32)
    width = tf.cast(tf.shape(feature)[2], tf.float32)
    n = output_size * sampling_ratio
    scaled = boxes / float(stride)
    bin_h = (scaled[:, 2] - scaled[:, 0]) / n
    bin_w = (scaled[:, 3] - scaled[:, 1]) / n
    # First and last sample centres, in pixel-index coordinates (centre of pixel i is i).
    y0 = scaled[:, 0] + 0.5 * bin_h - 0.5
    x0 = scaled[:, 1] + 0.5 * bin_w - 0.5
    y1 = scaled[:, 2] - 0.5 * bin_h - 0.5
    x1 = scaled[:, 3] - 0.5 * bin_w - 0.5
    norm = tf.stack([y0 / tf.maximum(height - 1.0, 1.0), x0 / tf.maximum(width - 1.0, 1.0),
                     y1 / tf.maximum(height - 1.0, 1.0), x1 / tf.maximum(width - 1.0, 1.0)], axis=-1)
    crops = tf.image.crop_and_resize(feature, norm, tf.cast(box_indices, tf.int32), [n, n],
                                     method="bilinear", extrapolation_value=0.0)
    if sampling_ratio > 1:
        crops = tf.nn.avg_pool2d(crops, sampling_ratio, sampling_ratio, "VALID")
    return crops


def roi_align_flat(features: dict, boxes, box_indices, levels, *, output_size: int = 14,
                   sampling_ratio: int = 2, strides=FPN_STRIDES):
    """RoIAlign of flat ``boxes`` [K, 4] (batch element ``box_indices`` [K]) each on its level
    ``levels`` [K] of ``features`` {l: [B, H, W, C]} (maps of levels that carry no RoIs, P6,
    are ignored; level l has stride ``strides[l]``) -> [K, S, S, C]. Each RoI is cropped once,
    from its own level only."""
    positions, crops = [], []
    for level in [l for l in ROI_LEVELS if l in features]:
        idx = tf.cast(tf.where(tf.equal(levels, level))[:, 0], tf.int32)
        crops.append(crop_level(features[level], tf.gather(boxes, idx), tf.gather(box_indices, idx),
                                strides[level], output_size, sampling_ratio))
        positions.append(idx)
    merged = tf.dynamic_stitch(positions, crops)
    channels = features[min(features)].shape[-1]
    return tf.ensure_shape(merged, [None, output_size, output_size, channels])


def multilevel_roi_align(features: dict, boxes, levels, *, output_size: int = 14,
                         sampling_ratio: int = 2, strides=FPN_STRIDES):
    """RoIAlign of ``boxes`` [B, R, 4] each on its assigned level ``levels`` [B, R] (level l
    has stride ``strides[l]``).

    Returns [B, R, S, S, C]; each RoI is cropped once, from its own level only.
    """
    batch = tf.shape(boxes)[0]
    num_rois = tf.shape(boxes)[1]
    merged = roi_align_flat(features, tf.reshape(boxes, [-1, 4]), tf.repeat(tf.range(batch), num_rois),
                            tf.reshape(levels, [-1]), output_size=output_size, sampling_ratio=sampling_ratio,
                            strides=strides)
    return tf.reshape(merged, [batch, num_rois, output_size, output_size, merged.shape[-1]])
