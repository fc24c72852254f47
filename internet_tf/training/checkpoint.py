"""The trainer's checkpoint, the same under every precision policy.

A checkpoint holds ``model`` (float32 variables under every ``train.mixed_precision``),
``optimizer`` — always the SGD itself, with its step counter and momentum slots, also when
float16 wraps it in a ``LossScaleOptimizer`` — and, under float16 only, ``loss_scale``
(the dynamic scale and its growth counter). So a run resumes across a change of policy:
a float16 checkpoint restored without loss scaling leaves its ``loss_scale`` unread, and a
checkpoint without one restored under float16 starts the scale afresh (2**15).
"""
from __future__ import annotations

import tensorflow as tf
from absl import logging

from internet_tf.training import precision

LOSS_SCALE = "loss_scale"  # the checkpoint key of the loss-scale state


def has_loss_scale(save_path: str) -> bool:
    """Whether the checkpoint at ``save_path`` was written with a loss scale (float16)."""
    return any(name.split("/", 1)[0] == LOSS_SCALE for name, _ in tf.train.list_variables(save_path))


class TrainingCheckpoint(tf.train.Checkpoint):
    """``tf.train.Checkpoint(model=, optimizer=<the SGD>[, loss_scale=])`` whose ``restore``
    reads a checkpoint written under another precision policy."""

    def __init__(self, model, optimizer):
        scaler = precision.loss_scaler(optimizer)
        parts = {"model": model, "optimizer": precision.inner_optimizer(optimizer)}
        if scaler is not None:
            state = tf.Module(name=LOSS_SCALE)
            state.scale, state.counter = scaler.dynamic_scale, scaler.step_counter
            parts[LOSS_SCALE] = state
        super().__init__(**parts)

    def restore(self, save_path, options=None):
        saved, here = has_loss_scale(save_path), hasattr(self, LOSS_SCALE)
        if saved == here:
            return super().restore(save_path, options)
        if saved:  # a float16 checkpoint resumed without loss scaling: the scale is not needed
            return super().restore(save_path, options).expect_partial()
        logging.info("%s has no loss scale (written without float16): the scale starts afresh.", save_path)
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer).restore(save_path, options)
