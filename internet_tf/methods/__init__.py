"""Training-time methods handed to the plain detector (``modeling/detector.py``).

Each method is a ``TrainingMethod`` (``base.py``) in its own subpackage: the feature
intertwiner with its class buffer and OT module (``intertwiner/``, paper Sec. 3), and LabelEnc
(``labelenc/``, seed 000). ``build_methods`` turns the config into the list the detector
composes; each method is also an attribute of the detector named after it
(``model.intertwiner``, ``model.labelenc``).
"""
from __future__ import annotations

from internet_tf.config import ModelConfig


def build_methods(cfg: ModelConfig, num_classes: int) -> list:
    methods = []
    if cfg.intertwiner.enabled:
        from internet_tf.methods.intertwiner.method import Intertwiner

        methods.append(Intertwiner(cfg, num_classes))
    if cfg.labelenc.enabled:
        from internet_tf.methods.labelenc.method import LabelEnc

        methods.append(LabelEnc(cfg, num_classes))
    return methods
