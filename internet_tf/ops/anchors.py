"""FPN anchors (Lin et al. 2017, Sec. 4.1; docs/conventions.md "Anchors").

One anchor size per level (32/64/128/256/512 on P2-P6), aspect ratios r = h / w in
(0.5, 1, 2) with h = s * sqrt(r), w = s / sqrt(r). Level l has the stride its backbone gives
it (``ops/levels.py``: 2**l for the ResNets, 2**(l+2) for VGG-16) and a
`ceil(image_size / stride)` square grid; anchors of a level are ordered (y, x, anchor) and
centred at `((y + 0.5) * stride, (x + 0.5) * stride)`. Boxes are yxyx absolute pixels.
"""
import numpy as np
import tensorflow as tf

from internet_tf.ops.levels import FPN_STRIDES
from internet_tf.ops.levels import RPN_LEVELS as DEFAULT_LEVELS

DEFAULT_SIZES = (32, 64, 128, 256, 512)
DEFAULT_ASPECT_RATIOS = (0.5, 1.0, 2.0)


def feature_size(image_size: int, level: int, strides=FPN_STRIDES) -> int:
    """Side of level `level`'s feature map for a square `image_size` input: ceil(size / stride)."""
    return -(-int(image_size) // int(strides[int(level)]))


def _level_anchors(image_size, level, size, aspect_ratios, strides):
    n = feature_size(image_size, level, strides)
    centres = (np.arange(n, dtype=np.float64) + 0.5) * float(strides[level])
    ratios = np.asarray(aspect_ratios, dtype=np.float64)
    h = size * np.sqrt(ratios)  # [A]
    w = size / np.sqrt(ratios)
    cy = centres[:, None, None]  # [H, 1, 1]
    cx = centres[None, :, None]  # [1, W, 1]
    shape = (n, n, len(ratios))
    boxes = np.stack([np.broadcast_to(cy - 0.5 * h, shape),
                      np.broadcast_to(cx - 0.5 * w, shape),
                      np.broadcast_to(cy + 0.5 * h, shape),
                      np.broadcast_to(cx + 0.5 * w, shape)], axis=-1)
    return boxes.reshape(-1, 4).astype(np.float32)


def generate_anchors(image_size: int, levels=DEFAULT_LEVELS, sizes=DEFAULT_SIZES,
                     aspect_ratios=DEFAULT_ASPECT_RATIOS, strides=FPN_STRIDES):
    """`{level: float32 [H_l * W_l * A, 4]}` yxyx anchors for a square `image_size` input.

    `sizes[i]` is the anchor size of `levels[i]`; A = len(aspect_ratios); `strides` maps each
    level to its stride (the backbone's, `ops/levels.py`).
    """
    if len(levels) != len(sizes):
        raise ValueError(f"levels {levels} and sizes {sizes} differ in length")
    return {int(l): tf.constant(_level_anchors(image_size, int(l), float(s), aspect_ratios, strides))
            for l, s in zip(levels, sizes)}


def _infer_concat_axis(tensors):
    """The axis along which the levels' static sizes differ (0 for [n, ...], 1 for [B, n, ...])."""
    rank = tensors[0].shape.rank
    if rank is None:
        raise ValueError("concat_levels needs tensors of known rank")
    differing = set()
    for t in tensors[1:]:
        if t.shape.rank != rank:
            raise ValueError("concat_levels: tensors of different ranks")
        for ax in range(rank):
            a, b = tensors[0].shape[ax], t.shape[ax]
            if a is not None and b is not None and a != b:
                differing.add(ax)
    if len(differing) == 1:
        return differing.pop()
    if len(differing) > 1:
        raise ValueError(f"concat_levels: levels differ along axes {sorted(differing)}")
    # Single level (any axis works) or all levels equally sized: rank-based guess.
    return 0 if rank == 1 or (rank == 2 and tensors[0].shape[-1] == 4) else 1


def concat_levels(d, axis=None):
    """Concatenate `{level: tensor}` in ascending level order.

    `axis=None` infers it: the one axis along which the levels' static sizes differ,
    i.e. 0 for per-level `[n_l, ...]` (anchors) and 1 for batched `[B, n_l, ...]` (RPN
    outputs). Pass `axis` explicitly when levels may have equal sizes (tiny images).
    """
    tensors = [tf.convert_to_tensor(d[l]) for l in sorted(d)]
    if axis is None:
        axis = _infer_concat_axis(tensors)
    return tf.concat(tensors, axis=axis)


__all__ = ["feature_size", "generate_anchors", "concat_levels", "DEFAULT_LEVELS", "DEFAULT_SIZES",
           "DEFAULT_ASPECT_RATIOS"]
