"""Builds the configured detector: the Faster R-CNN + FPN baseline (SPEC §1), or InterNet
when ``model.intertwiner.enabled`` (SPEC §2–3)."""
from __future__ import annotations

from internet_tf.config import ModelConfig
from internet_tf.modeling.detector import Detector


def build_model(cfg: ModelConfig, num_classes: int) -> Detector:
    if cfg.intertwiner.enabled:
        from internet_tf.modeling.internet import InterNet

        return InterNet(cfg, num_classes)
    return Detector(cfg, num_classes)
