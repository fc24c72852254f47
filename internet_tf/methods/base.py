"""The one interface of a training-time method composed with the detector (SPEC §2, §4).

A method may change the maps the box head reads (``head_maps``: e.g. the make-up layer on
each level map), transform the RoI features (``transform_rois``: e.g. the make-up layer per
RoI, plus side features such as the critic's), mix side features into the box head at a
named point (``merge``: ``"fc1"`` after the head's first FC, ``"predictor"`` right before
the classifier and regressor), and add training-only loss terms (``losses``). Every hook is
an identity / no-op here, so a method overrides only what it uses.

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
        context dict of side tensors that ``merge`` and ``losses`` read). It runs at
        inference too: what only a loss needs belongs in ``losses``."""
        return roi_features, {}

    def set_total_steps(self, total_steps: int):
        """The run's length in optimizer steps, for schedules given as fractions of it."""

    def start_fresh(self, detector, restore_model=None):
        """Called once when a run starts without a checkpoint (not on resume): a method may
        initialise weights from elsewhere (LabelEnc step 2 loads step 1). ``restore_model(
        model_cfg, num_classes, checkpoint) -> detector`` rebuilds another run's detector
        (the assembly's, handed down by the trainer)."""

    def merge(self, point: str, features, context: dict):
        """Box-head features [B, R, D] at ``point`` ("fc1" or "predictor", ``BoxHead``) -> features."""
        return features

    def losses(self, outputs: dict, batch: dict, step=None, training=True, detector=None):
        """Training-only terms -> (name -> weighted scalar loss, name -> scalar metric).
        ``outputs`` is the detector's training forward pass (``Detector.train_outputs``),
        ``step`` the optimizer step (None: treat warm-ups as finished), ``detector`` the
        detector itself (a method that runs its heads on other inputs, like LabelEnc)."""
        return {}, {}

    def inference_layers(self) -> list:
        """Layers the inference path uses (exported); the rest is training-only."""
        return []

    def write_summaries(self):
        """Extra TensorBoard summaries, called inside the trainer's writer context."""
