"""What the detector's training forward pass hands to the losses and to the training-time
methods, as typed objects: ``HeadPath`` (the box head's path over a set of RoIs) and
``TrainOutputs`` (the whole training pass, ``Detector.train_outputs``).

Each method's side tensors (what its ``transform_rois`` returns next to the RoI features,
e.g. the intertwiner's critic features) stay under that method's name in ``sides``; a
method reads its own with ``TrainOutputs.side(self)``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple


class HeadPath(NamedTuple):
    """RoIs through the methods' map and RoI transforms into the box head."""
    levels: Any          # [B, R] int: each RoI's pyramid level (Li et al. 2019, Eq. 6)
    roi_features: Any    # [B, R, S, S, C]: the RoI features the box head read
    head_features: Any   # [B, R, D]: the predictor's input
    sides: dict          # method name -> that method's side tensors (None: it has none)


@dataclasses.dataclass(frozen=True)
class TrainOutputs:
    """One training forward pass: the pyramid it ran on, the RPN's outputs and targets, the
    sampled RoIs with their targets (``ops.targets.roi_targets``) and the head path over them.
    ``strides``: the pyramid levels' strides in input pixels (``Backbone.strides``)."""
    pyramid: dict
    strides: dict
    rpn_logits: Any
    rpn_deltas: Any
    rpn_targets: dict
    roi_targets: dict
    head: HeadPath
    class_logits: Any
    box_deltas: Any

    @property
    def rois(self):
        """[B, R, 4] the sampled RoIs (yxyx, input pixels)."""
        return self.roi_targets["rois"]

    @property
    def roi_classes(self):
        """[B, R] each sampled RoI's class: 1..K foreground, 0 background, -1 padding."""
        return self.roi_targets["classes"]

    @property
    def roi_levels(self):
        return self.head.levels

    @property
    def roi_features(self):
        return self.head.roi_features

    @property
    def head_features(self):
        return self.head.head_features

    def side(self, method):
        """``method``'s own side tensors from ``transform_rois`` (None when it has none)."""
        return self.head.sides.get(method.name)
