"""Builds the configured detector: the Faster R-CNN + FPN baseline (Lin et al. 2017) composed with the
training-time methods the config enables (``methods/``: the feature intertwiner)."""
from __future__ import annotations

from internet_tf.config import ModelConfig
from internet_tf.methods import build_methods
from internet_tf.modeling.detector import Detector


def build_model(cfg: ModelConfig, num_classes: int) -> Detector:
    return Detector(cfg, num_classes, methods=build_methods(cfg, num_classes))


def restore_model(cfg: ModelConfig, num_classes: int, checkpoint: str) -> Detector:
    """Builds the configured detector (every variable) and restores its weights from
    ``checkpoint``; training-only state the caller does not use may be absent."""
    import tensorflow as tf

    model = build_model(cfg, num_classes)
    model.build_all()
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model
