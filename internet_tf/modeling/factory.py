"""Builds the configured detector: the Faster R-CNN + FPN baseline (SPEC §1) composed with the
training-time methods the config enables (``methods/``: the feature intertwiner, SPEC §2–3)."""
from __future__ import annotations

import dataclasses
import os

from internet_tf.config import Config, ModelConfig
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


class RunDirError(ValueError):
    """A run folder (an internet-train --model_dir) that cannot be restored; ``problem``
    says why, without the folder's name."""

    def __init__(self, model_dir: str, problem: str):
        super().__init__(f"{model_dir} {problem}")
        self.model_dir, self.problem = model_dir, problem


@dataclasses.dataclass
class Run:
    cfg: Config  # the config.yaml it was trained with
    num_classes: int  # from its labels.json
    checkpoint: str  # its latest checkpoint


def read_run(model_dir: str) -> Run:
    """What restoring the run in ``model_dir`` needs, read without building anything;
    raises ``RunDirError`` for a missing folder, config.yaml, labels.json or checkpoint."""
    import tensorflow as tf

    from internet_tf.config import ConfigError, load_config
    from internet_tf.data.datasets import read_label_map

    if not model_dir or not os.path.isdir(model_dir):
        raise RunDirError(model_dir, "does not exist")
    try:
        cfg = load_config(os.path.join(model_dir, "config.yaml"))
    except (OSError, ConfigError) as err:
        raise RunDirError(model_dir, f"has no readable config.yaml ({err})") from err
    try:
        num_classes = len(read_label_map(model_dir)[0])
    except OSError as err:
        raise RunDirError(model_dir, "has no labels.json") from err
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if not checkpoint:
        raise RunDirError(model_dir, "has no checkpoint")
    return Run(cfg, num_classes, checkpoint)
