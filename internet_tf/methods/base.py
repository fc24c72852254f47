"""The one interface of a training-time method composed with the detector (Li et al. 2019,
Sec. 3; the LabelEnc appendix).

A method may change the maps the box head reads (``head_maps``: e.g. the make-up layer on
each level map), transform the RoI features (``transform_rois``: e.g. the make-up layer per
RoI, plus side features such as the critic's), mix side features into the box head at a
named point (``merge``: ``"fc1"`` after the head's first FC, ``"predictor"`` right before
the classifier and regressor), ask the detector for a second training pass of its RPN and
box head on a pyramid built from the batch's labels (``label_pyramid``), and add
training-only loss terms (``losses``). Every hook is an identity / no-op here, so a method
overrides only what it uses.

What is exported: ``inference_layers`` lists the method's layers that the inference path
uses (the SavedModel tracks only those); everything else — buffers, OT modules — is
training-only and never reaches an export.
"""
from __future__ import annotations

import keras

class TrainingMethod(keras.layers.Layer):
    """Base class: every hook leaves the detector unchanged."""

    def head_maps(self, pyramid: dict, training=False) -> dict:
        """{level: map} -> the maps the box head's RoIAlign reads (the RPN keeps ``pyramid``)."""
        return pyramid

    def transform_rois(self, roi_features, levels, training=False):
        """RoI features [B, R, S, S, C], levels [B, R] -> (RoI features for the box head,
        this method's side tensors, or None), the side that its ``merge`` gets and its
        ``losses`` read with ``outputs.side(self)``. It runs at inference too: what only a
        loss needs belongs in ``losses``."""
        return roi_features, None

    def set_total_steps(self, total_steps: int):
        """The run's length in optimizer steps, for schedules given as fractions of it."""

    def start_fresh(self, detector, restore_model=None):
        """Called once when a run starts without a checkpoint (not on resume): a method may
        initialise weights from elsewhere (LabelEnc step 2 loads step 1). ``restore_model(
        model_cfg, num_classes, checkpoint) -> detector`` rebuilds another run's detector
        (the assembly's, handed down by the trainer)."""

    def merge(self, point: str, features, side):
        """Box-head features [B, R, D] at ``point`` ("fc1" or "predictor", ``BoxHead``), and
        this method's side from ``transform_rois`` -> features."""
        return features

    def label_pyramid(self, batch: dict, training=False):
        """A pyramid ({level: map}, the FPN's shapes) built from the batch's labels, on which
        the detector runs its RPN and box head a second time with their losses (LabelEnc
        step 1: FPN_h(h(y))); None: no second pass."""
        return None

    def losses(self, outputs, batch: dict, step=None, training=True, second=None):
        """Training-only terms -> (name -> weighted scalar loss, name -> scalar metric).
        ``outputs`` is the detector's training forward pass (``modeling/outputs.py:
        TrainOutputs``), ``step`` the optimizer step (None: treat warm-ups as finished),
        ``second`` the pass on this method's ``label_pyramid`` (None without one)."""
        return {}, {}

    def inference_layers(self) -> list:
        """Layers the inference path uses (exported); the rest is training-only."""
        return []

    def write_summaries(self):
        """Extra TensorBoard summaries, called inside the trainer's writer context."""
