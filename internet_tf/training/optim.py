"""Optimisation recipe of paper Sec. 6.5: SGD with momentum 0.9, lr 0.01 at global
batch 8 (linearly scaled), weight decay 1e-4 except on BatchNorm and biases, ×0.1 step
drops, optional linear warm-up; gradients clipped at global norm 5 by the trainer.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from internet_tf.config import TrainConfig

# Keras variable names (not paths) that never take weight decay: biases and BatchNorm.
NO_DECAY_NAMES = ("bias", "gamma", "beta")


def learning_rate(cfg: TrainConfig) -> float:
    """The peak learning rate: explicit, or 0.01 × batch / 8 (linear scaling rule)."""
    if cfg.learning_rate is not None:
        return float(cfg.learning_rate)
    return cfg.base_learning_rate * cfg.batch_size / cfg.base_batch_size


def total_steps(cfg: TrainConfig, num_train_images: int) -> int:
    if cfg.steps is not None:
        return int(cfg.steps)
    return max(1, math.ceil(cfg.epochs * num_train_images / cfg.batch_size))


def drop_steps(cfg: TrainConfig, num_train_images: int) -> list:
    if cfg.lr_drop_steps is not None:
        return sorted(int(s) for s in cfg.lr_drop_steps)
    steps_per_epoch = num_train_images / cfg.batch_size
    return sorted(int(round(e * steps_per_epoch)) for e in cfg.lr_drop_epochs)


class StepDecayWithWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant ×factor drops at ``boundaries``, after ``warmup_steps`` of linear ramp."""

    def __init__(self, peak: float, boundaries, factor: float = 0.1, warmup_steps: int = 0,
                 warmup_start: float = 0.001):
        self.peak = float(peak)
        self.boundaries = [int(b) for b in boundaries]
        self.factor = float(factor)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        values = [self.peak * self.factor ** i for i in range(len(self.boundaries) + 1)]
        self._piecewise = keras.optimizers.schedules.PiecewiseConstantDecay(self.boundaries, values) \
            if self.boundaries else None

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        lr = self._piecewise(step) if self._piecewise is not None else keras.ops.convert_to_tensor(self.peak)
        if self.warmup_steps > 0:
            ramp = self.warmup_start + (1.0 - self.warmup_start) * keras.ops.minimum(
                step / self.warmup_steps, 1.0)
            lr = lr * ramp
        return lr

    def get_config(self):
        return {"peak": self.peak, "boundaries": self.boundaries, "factor": self.factor,
                "warmup_steps": self.warmup_steps, "warmup_start": self.warmup_start}


class SGD(keras.optimizers.SGD):
    """Keras SGD for gradients that arrive already summed over the replicas: the train step
    all-reduces them itself, before the global-norm clip (``training/step.py``), so Keras'
    second all-reduce of every gradient is skipped. Each replica then applies the same
    global gradient to its copy of the variables. Outside a strategy nothing changes.

    A decayed weight's update is three element-wise ops instead of Keras' eight, with the
    same arithmetic up to float32 rounding: the decoupled decay ``w ← w − lr·wd·w`` as one
    product ``w·(1 − lr·wd)`` and its assignment, then the momentum step ``m ← μ·m − lr·g;
    w ← w + m`` (or Nesterov's) as one fused kernel, ``ResourceApplyKerasMomentum`` (issue
    11; timed by ``benchmarks/optimizer_update.py``). Without momentum, the decay is followed
    by Keras' own plain step."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)

    def _apply_weight_decay(self, variables):
        """Decay is applied in ``update_step``, weight by weight, just before its update."""

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = tf.cast(learning_rate, dtype)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            variable.assign(variable * (1.0 - lr * tf.cast(self.weight_decay, dtype)))
        if self.momentum == 0:
            return super().update_step(gradient, variable, learning_rate)
        momentum = self.momentums[self._get_variable_index(variable)]
        # Under a strategy ``.handle`` is this replica's copy (we are inside its update call).
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=momentum.value.handle, lr=lr, grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype), use_nesterov=self.nesterov)


def build_optimizer(cfg: TrainConfig, num_train_images: int) -> SGD:
    """SGD + schedule; weight decay excludes biases and BatchNorm. Clipping is the train
    step's (after its all-reduce, on the global gradient; it logs the norm too)."""
    if (tf.distribute.get_strategy().num_replicas_in_sync > 1
            and not hasattr(keras.optimizers.SGD, "_all_reduce_sum_gradients")):
        raise RuntimeError(f"Keras {keras.__version__}'s optimizer has no _all_reduce_sum_gradients "
                           "hook; optim.SGD would let it sum the all-reduced gradients again")
    schedule = StepDecayWithWarmup(learning_rate(cfg), drop_steps(cfg, num_train_images),
                                   cfg.lr_drop_factor, cfg.warmup_steps)
    opt = SGD(learning_rate=schedule, momentum=cfg.momentum,
              weight_decay=cfg.weight_decay if cfg.weight_decay > 0 else None)
    if cfg.weight_decay > 0:
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return opt
