"""Builds the configured detector: the Faster R-CNN + FPN baseline (``modeling/detector.py``)
composed with the training-time methods the config enables (``methods/``: the feature
intertwiner of Li et al. 2019, LabelEnc), its optimizer, and the one restore of a checkpoint
into a detector."""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import Config, ModelConfig
from internet_tf.graph.policy import policy_scope
from internet_tf.methods.intertwiner.method import Intertwiner
from internet_tf.methods.labelenc.method import LabelEnc
from internet_tf.modeling.detector import Detector
from internet_tf.training import optim, precision


def build_methods(cfg: ModelConfig, num_classes: int) -> list:
    """The training-time methods ``cfg`` enables, in the order the detector composes them;
    each is also an attribute of the detector named after it (``model.intertwiner``,
    ``model.labelenc``)."""
    methods = []
    if cfg.intertwiner.enabled:
        methods.append(Intertwiner.from_model_config(cfg, num_classes))
    if cfg.labelenc.enabled:
        methods.append(LabelEnc.from_model_config(cfg, num_classes))
    return methods


def build_model(cfg: ModelConfig, num_classes: int) -> Detector:
    return Detector(cfg, num_classes, methods=build_methods(cfg, num_classes))


def restore_model(cfg: ModelConfig, num_classes: int, checkpoint: str) -> Detector:
    """Builds the configured detector (every variable) and restores its weights from
    ``checkpoint``; training-only state the caller does not use may be absent."""
    model = build_model(cfg, num_classes)
    model.build_all()
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return model


def build_model_and_optimizer(cfg: Config, num_classes: int, num_train_images: int, strategy=None):
    """``cfg.model``'s model with every variable created, and its optimizer with its slots,
    both inside ``strategy``'s scope (distributed variables; Keras' momentum slots must
    exist before the first distributed step). The layers take ``train.mixed_precision``'s
    dtype policy (variables stay float32); under float16 the optimizer is a
    ``LossScaleOptimizer`` around ``SGD`` (``training/precision.py``)."""
    mixed = cfg.train.mixed_precision
    with (strategy or tf.distribute.get_strategy()).scope(), policy_scope(mixed):
        model = build_model(cfg.model, num_classes)
        model.build_all()
        optimizer = precision.wrap_optimizer(optim.build_optimizer(cfg.train, num_train_images), mixed)
        optimizer.build(model.trainable_variables)
    return model, optimizer
