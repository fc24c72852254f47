"""The small (less reliable) and large (reliable) sets of each level (paper Eq. 7, Sec. 6.2;
Table 2a "by RoI size").

The small set of level l is the foreground RoIs assigned to l (Eq. 6); its large set is the
foreground RoIs assigned to levels m > l. ``roi_size`` is Table 2a's split: a RoI smaller than
the RoI output on its level's map is small, otherwise large.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import check_choice
from internet_tf.ops.levels import FPN_STRIDES, ROI_LEVELS

# Levels with a large set of their own (m > l exists); the last level reads the buffer only.
RELIABLE_LEVELS = ROI_LEVELS[:-1]


def small_large_masks(classes, levels, level: int, *, split: str = "level", rois=None,
                      roi_output_size: int = 14, strides=FPN_STRIDES):
    """Eq. 7 for one level -> (small [B, R] bool, large [B, R] bool), foreground RoIs only.
    ``strides``: each level's stride (the backbone's, ``ops/levels.py``)."""
    check_choice("model.intertwiner.split", split)
    fg = classes > 0
    at_level = tf.equal(levels, level)
    if split == "level":
        return fg & at_level, fg & (levels > level)
    side = float(roi_output_size * strides[level])  # roi_size: the RoI output's extent on P_l, in pixels
    area = (rois[..., 2] - rois[..., 0]) * (rois[..., 3] - rois[..., 1])
    below = area < side * side
    return fg & at_level & below, fg & ((levels > level) | (at_level & ~below))
