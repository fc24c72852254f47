"""Mixed precision: ``train.mixed_precision: none | float16 | bfloat16``.

The setting picks Keras' dtype policy for the layers of a model *when they are built*
(``graph/policy.py: policy_scope``): ``float32``, ``mixed_float16`` or ``mixed_bfloat16`` —
convolutions and dense layers compute in 16 bits, every variable stays float32.

What stays float32 under a mixed policy (casts at the boundaries, in the modules named):
the RPN's objectness/delta convs and the box predictor (``modeling/rpn.py``,
``modeling/box_head.py``: their outputs feed top-k, box decoding, softmax and the losses),
RoIAlign crops (``ops/roi_align.py``), box decoding, proposals, NMS and post-processing
(``ops/``, fed by those float32 outputs), every loss (``ops/losses.py``, the intertwiner's
Eq. 3 in ``methods/intertwiner/loss.py``, LabelEnc's distillation), the Sinkhorn/OT
distance (``ops/sinkhorn.py``, ``methods/intertwiner/ot.py``), the class buffer
(``methods/intertwiner/class_buffer.py``) and BatchNorm statistics (Keras' BatchNormalization
and ``modeling/batch_norm.py`` compute them in float32).

float16 needs loss scaling (its exponent range is small): the optimizer is wrapped in Keras'
``LossScaleOptimizer`` (dynamic scale, 2**15 at start, ×2 after 2000 finite steps, ×0.5
on an overflow). The train step (``training/step.py``) computes gradients itself, so it
scales the loss, unscales the gradients before the all-reduce and the clip, and updates the
scale with ``update_loss_scale``: a step whose gradient overflowed (finite loss, scale
above ``MIN_LOSS_SCALE``) is skipped — no weight or slot changes — and counted, and the
scale halves. bfloat16 has float32's exponent range and needs no scaling.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from absl import logging

from internet_tf.graph.policy import POLICIES, policy_name

# Below this scale a non-finite gradient is not a scaling overflow but a broken step: the
# trainer stops on it as it does without loss scaling.
MIN_LOSS_SCALE = 1.0


def wrap_optimizer(optimizer, mixed_precision: str):
    """``optimizer`` wrapped in a dynamic ``LossScaleOptimizer`` for float16, else itself.
    float16 without a GPU logs a warning: TF's CPU float16 conv gradients have no oneDNN
    kernel (far slower than float32; docs/results.md, "Mixed precision and XLA")."""
    if policy_name(mixed_precision) != POLICIES["float16"]:
        return optimizer
    if not tf.config.list_physical_devices("GPU"):
        logging.warning("train.mixed_precision: float16 without a GPU: TensorFlow's CPU float16 "
                        "convolution gradients are orders of magnitude slower than float32; on a "
                        "CPU use bfloat16.")
    return keras.optimizers.LossScaleOptimizer(optimizer)


def loss_scaler(optimizer):
    """The ``LossScaleOptimizer`` if ``optimizer`` is one, else None."""
    return optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else None


def inner_optimizer(optimizer):
    """The optimizer that owns the slots and the step counter (unwrapped)."""
    scaler = loss_scaler(optimizer)
    return scaler.inner_optimizer if scaler is not None else optimizer


def overflowed(finite, loss, scale):
    """True where a loss-scaled step's gradient overflowed: the loss is finite, the
    gradient is not, and the scale can still be lowered (above ``MIN_LOSS_SCALE``)."""
    return tf.logical_not(finite) & tf.math.is_finite(loss) & (scale > MIN_LOSS_SCALE)


def update_loss_scale(scaler, finite, overflow):
    """Keras' dynamic rule on ``scaler``'s variables, in cross-replica context: after a
    finite step the counter grows and the scale doubles every ``dynamic_growth_steps``;
    after a non-finite one the scale halves and the counter restarts. An ``overflow`` step
    was skipped yet counts as a step (as Keras 2's LossScaleOptimizer counted it), so the
    schedule, the trainer's step and the data position stay in line."""
    counter, scale = scaler.step_counter, scaler.dynamic_scale
    grow = finite & tf.equal(counter, scaler.dynamic_growth_steps - 1)
    scale.assign(tf.where(grow, scale * 2.0, tf.where(finite, scale, scale * 0.5)))
    counter.assign(tf.where(finite & tf.logical_not(grow), counter + 1, tf.zeros_like(counter)))
    iterations = inner_optimizer(scaler).iterations
    iterations.assign_add(tf.cast(overflow, iterations.dtype))
