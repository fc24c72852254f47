"""Box utilities for Faster R-CNN + FPN (Lin et al. 2017; docs/conventions.md "Boxes", "Box deltas").

Boxes are float `[..., 4]` tensors `(ymin, xmin, ymax, xmax)` in absolute pixels. Padded
boxes (all `-1`) and zero-area boxes are legal everywhere: they have area 0 and IoU 0 with
everything, and no function here returns NaN or Inf for them.

Box deltas follow Faster R-CNN (Ren et al., 2015, Eq. 2) with per-coordinate weights:
`dy = wy * (cy - cya) / ha`, `dx = wx * (cx - cxa) / wa`, `dh = wh * log(h / ha)`,
`dw = ww * log(w / wa)`; decoding clips `dh`, `dw` (after dividing by the weights) at
`log(1000 / 16)` before the exponential, as Detectron does.
"""
import math

import numpy as np
import tensorflow as tf

# Guard for zero heights/widths in encode (log and division).
_EPS = 1e-8
DEFAULT_DECODE_CLIP = math.log(1000.0 / 16.0)


def _as_float(x):
    """Tensor in, tensor out (float dtype kept); numpy / python inputs become float32."""
    if tf.is_tensor(x):
        return x if x.dtype.is_floating else tf.cast(x, tf.float32)
    return tf.convert_to_tensor(np.asarray(x, dtype=np.float32))


def _unstack4(boxes):
    return tf.unstack(boxes, num=4, axis=-1)


def yxyx_to_xywh(boxes):
    """`[..., 4]` `(ymin, xmin, ymax, xmax)` -> COCO `(x, y, w, h)`."""
    ymin, xmin, ymax, xmax = _unstack4(_as_float(boxes))
    return tf.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=-1)


def area(boxes):
    """`[..., 4]` -> `[...]`; negative extents (e.g. padding) count as 0."""
    ymin, xmin, ymax, xmax = _unstack4(_as_float(boxes))
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def iou(boxes1, boxes2):
    """Pairwise IoU: `[..., N, 4]` x `[..., M, 4]` -> `[..., N, M]`.

    Leading (batch) dims broadcast, e.g. anchors `[N, 4]` with gt `[B, M, 4]` gives
    `[B, N, M]`. Pairs whose union is 0 (zero-area / padded boxes) give 0.
    """
    boxes1, boxes2 = _as_float(boxes1), _as_float(boxes2)
    y1a, x1a, y2a, x2a = [c[..., :, None] for c in _unstack4(boxes1)]  # [..., N, 1]
    y1b, x1b, y2b, x2b = [c[..., None, :] for c in _unstack4(boxes2)]  # [..., 1, M]
    ih = tf.maximum(tf.minimum(y2a, y2b) - tf.maximum(y1a, y1b), 0.0)
    iw = tf.maximum(tf.minimum(x2a, x2b) - tf.maximum(x1a, x1b), 0.0)
    inter = ih * iw
    area_a = tf.maximum(y2a - y1a, 0.0) * tf.maximum(x2a - x1a, 0.0)
    area_b = tf.maximum(y2b - y1b, 0.0) * tf.maximum(x2b - x1b, 0.0)
    union = area_a + area_b - inter
    return tf.math.divide_no_nan(inter, union)


def _centre_size(boxes):
    ymin, xmin, ymax, xmax = _unstack4(boxes)
    h, w = ymax - ymin, xmax - xmin
    return ymin + 0.5 * h, xmin + 0.5 * w, h, w


def encode(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Deltas `(dy, dx, dh, dw)` `[..., 4]` of `boxes` w.r.t. `anchors` (broadcastable).

    Zero sizes are guarded by a tiny eps, so degenerate/padded pairs give finite values.
    """
    boxes, anchors = _as_float(boxes), _as_float(anchors)
    wy, wx, wh, ww = [float(v) for v in weights]
    cy, cx, h, w = _centre_size(boxes)
    cya, cxa, ha, wa = _centre_size(anchors)
    ha, wa = tf.maximum(ha, _EPS), tf.maximum(wa, _EPS)
    h, w = tf.maximum(h, _EPS), tf.maximum(w, _EPS)
    return tf.stack([wy * (cy - cya) / ha,
                     wx * (cx - cxa) / wa,
                     wh * tf.math.log(h / ha),
                     ww * tf.math.log(w / wa)], axis=-1)


def decode(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0), clip=DEFAULT_DECODE_CLIP):
    """Inverse of `encode`: deltas `[..., 4]` + anchors (broadcastable) -> boxes `[..., 4]`.

    `dh`, `dw` are clipped from above at `clip` (after removing the weights) before `exp`.
    """
    deltas, anchors = _as_float(deltas), _as_float(anchors)
    wy, wx, wh, ww = [float(v) for v in weights]
    dy, dx, dh, dw = _unstack4(deltas)
    dy, dx = dy / wy, dx / wx
    dh, dw = tf.minimum(dh / wh, clip), tf.minimum(dw / ww, clip)
    cya, cxa, ha, wa = _centre_size(anchors)
    cy, cx = dy * ha + cya, dx * wa + cxa
    h, w = tf.exp(dh) * ha, tf.exp(dw) * wa
    return tf.stack([cy - 0.5 * h, cx - 0.5 * w, cy + 0.5 * h, cx + 0.5 * w], axis=-1)


def clip_boxes(boxes, height, width):
    """Clip `[..., 4]` boxes to `[0, height] x [0, width]`.

    `height` / `width`: python numbers or tensors broadcastable to `boxes[..., 0]`
    (e.g. `[B, 1]` for `[B, N, 4]` boxes).
    """
    boxes = _as_float(boxes)
    height = tf.cast(height, boxes.dtype)
    width = tf.cast(width, boxes.dtype)
    ymin, xmin, ymax, xmax = _unstack4(boxes)

    def _clip(v, hi):
        return tf.minimum(tf.maximum(v, 0.0), hi)

    return tf.stack([_clip(ymin, height), _clip(xmin, width),
                     _clip(ymax, height), _clip(xmax, width)], axis=-1)


def flip_horizontal(boxes, width):
    """Mirror boxes of an image of width `width` (scalar or broadcastable to `boxes[..., 0]`):
    `xmin' = width - xmax`, `xmax' = width - xmin`."""
    boxes = _as_float(boxes)
    width = tf.cast(width, boxes.dtype)
    ymin, xmin, ymax, xmax = _unstack4(boxes)
    return tf.stack([ymin, width - xmax, ymax, width - xmin], axis=-1)


def scale_boxes(boxes, scale):
    """`boxes * scale`; `scale` is a scalar or broadcastable to `boxes[..., 0]` (e.g. `[B, 1]`)."""
    boxes = _as_float(boxes)
    scale = tf.cast(scale, boxes.dtype)
    if scale.shape.rank:
        scale = scale[..., None]
    return boxes * scale
