"""Builds the configured detector (SPEC §1; the intertwiner of SPEC §2 plugs in here)."""
from __future__ import annotations

from internet_tf.config import ModelConfig
from internet_tf.modeling.detector import Detector


def build_model(cfg: ModelConfig, num_classes: int) -> Detector:
    return Detector(cfg, num_classes)
