"""Mixed precision (training/precision.py, training/checkpoint.py, training/step.py):
bfloat16 and float16 runs of the tiny InterNet train with float32 variables, float16 through a
LossScaleOptimizer whose overflowing steps are skipped (not an error); checkpoints resume
across a change of policy; a bfloat16-trained run exports float32; the global Keras policy
is left as it was."""
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.config import ConfigError
from internet_tf.data.synthetic import synthetic_batch
from internet_tf.export import saved_model
from internet_tf.graph import policy
from internet_tf.assembly import export as assembly_export
from internet_tf.assembly.export import export_checkpoint
from internet_tf.training import precision
from internet_tf.training.checkpoint import has_loss_scale
from internet_tf.training.optim import SGD
from internet_tf.training.step import build_train_step
from internet_tf.assembly.train import build_trainer

pytestmark = pytest.mark.cost(35)  # seconds in make test (tests/conftest.py schedules by it)

SIXTEEN_BITS = (tf.float16, tf.bfloat16)


@pytest.fixture(autouse=True)
def global_policy_untouched():
    assert keras.config.dtype_policy().name == "float32"
    yield
    assert keras.config.dtype_policy().name == "float32"


def _trainable(model):
    return [v.numpy().copy() for v in model.trainable_variables]


def _slots(optimizer):
    """The SGD's state but its step counter: momentum slots (and the learning rate)."""
    inner = precision.inner_optimizer(optimizer)
    return [v.numpy().copy() for v in inner.variables if v is not inner.iterations]


def _assert_equal(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _check_mixed(trainer, compute_dtype):
    """Layers compute in 16 bits, every variable stays float32 (the class buffer's sums float64)."""
    model = trainer.model
    assert model.backbone.compute_dtype == compute_dtype and model.fpn.compute_dtype == compute_dtype
    assert model.predictor.cls.compute_dtype == "float32"  # logits feed softmax and losses
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    assert not [v.path for v in model.variables if v.dtype in SIXTEEN_BITS]


def test_policy_scope_and_loss_scale_rule():
    with pytest.raises(RuntimeError):
        with policy.policy_scope("bfloat16") as name:
            assert name == keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("restored on error too")
    with pytest.raises(ConfigError, match="train.mixed_precision"):
        policy.policy_name("half")
    assert precision.wrap_optimizer(SGD(0.1), "bfloat16").__class__ is SGD

    # Keras' dynamic rule, here every 2 finite steps: x2; an overflow halves and counts a step.
    var = keras.Variable(np.zeros(2, np.float32))
    scaler = keras.optimizers.LossScaleOptimizer(SGD(0.1), initial_scale=8.0, dynamic_growth_steps=2)
    scaler.build([var])
    assert precision.loss_scaler(precision.wrap_optimizer(SGD(0.1), "float16")) is not None
    yes, no = tf.constant(True), tf.constant(False)
    seen = []
    for finite in (yes, yes, yes, no):
        overflow = precision.overflowed(finite, tf.constant(1.0), scaler.dynamic_scale)
        precision.update_loss_scale(scaler, finite, overflow)
        seen.append((float(scaler.dynamic_scale), int(scaler.step_counter), int(scaler.iterations)))
    assert seen == [(8.0, 1, 0), (16.0, 0, 0), (16.0, 1, 0), (8.0, 0, 1)]
    # Not an overflow: a non-finite loss, or a scale already at the minimum.
    assert not bool(precision.overflowed(no, tf.constant(np.inf), tf.constant(8.0)))
    assert not bool(precision.overflowed(no, tf.constant(1.0), tf.constant(precision.MIN_LOSS_SCALE)))


def test_bfloat16_run_exports_float32_and_resumes_under_float16(tiny_config, tmp_path, monkeypatch):
    run = str(tmp_path / "run")
    bf16_cfg = tiny_config("train.mixed_precision=bfloat16")
    bf16 = build_trainer(bf16_cfg, run)
    _check_mixed(bf16, "bfloat16")
    assert bf16.optimizer.__class__ is SGD  # bfloat16 needs no loss scaling
    assert tiny.train_eagerly(bf16, 2) == 2  # (asserts every loss finite)
    trained = _trainable(bf16.model)
    assert not has_loss_scale(os.path.join(run, "checkpoints", "ckpt-2"))

    # The export is built under the float32 policy: it computes in float32, and its
    # signature's outputs are float32 (the SavedModel writing itself is tests/export's).
    handed = {}
    monkeypatch.setattr(assembly_export, "export", lambda model, *args: handed.setdefault("model", model))
    export_checkpoint(bf16_cfg, run, str(tmp_path / "export"))
    exported = handed["model"]
    assert exported.backbone.compute_dtype == exported.box_head.compute_dtype == "float32"
    _assert_equal(trained, _trainable(exported))
    labels = {label: label for label in range(1, exported.num_classes + 1)}
    serve = saved_model.ServingModule(exported, labels).serve.get_concrete_function()
    outputs = serve.structured_outputs
    assert outputs["detection_boxes"].dtype == outputs["detection_scores"].dtype == tf.float32

    # The same run goes on under float16: the SGD's state is found, the loss scale starts afresh.
    fp16 = build_trainer(tiny_config("train.mixed_precision=float16", "train.steps=4"), run)
    _check_mixed(fp16, "float16")
    scaler = precision.loss_scaler(fp16.optimizer)
    assert scaler is not None
    assert fp16.restore() == 2 and float(scaler.dynamic_scale) == 2.0 ** 15
    _assert_equal(trained, _trainable(fp16.model))
    _assert_equal(_slots(bf16.optimizer), _slots(fp16.optimizer))
    assert int(precision.inner_optimizer(fp16.optimizer).iterations) == 2
    assert tiny.train_eagerly(fp16, 2) == 4
    assert has_loss_scale(os.path.join(run, "checkpoints", "ckpt-4"))


def test_float16_overflow_is_skipped_and_resumes_without_scaling(tiny_config, tmp_path, caplog):
    run = str(tmp_path / "run")
    baseline = "model.intertwiner.enabled=false"  # the trainer's loop, not the method, is tested
    with caplog.at_level(logging.WARNING):
        fp16 = build_trainer(tiny_config("train.mixed_precision=float16", "train.steps=1", baseline), run)
    if not tf.config.list_physical_devices("GPU"):  # float16 is slow on CPU: the user is told
        assert any("float16 without a GPU" in r.getMessage() for r in caplog.records)
    _check_mixed(fp16, "float16")
    scaler = precision.loss_scaler(fp16.optimizer)
    scaler.dynamic_scale.assign(2.0 ** 100)  # every float16 gradient overflows at this scale
    before, slots = _trainable(fp16.model), _slots(fp16.optimizer)

    fp16.train()  # no NonFiniteLossError: the step is skipped and counted, the scale halves
    assert fp16.step == 1 and np.isfinite(fp16.history).all()
    assert float(scaler.dynamic_scale) == 2.0 ** 99 and int(scaler.step_counter) == 0
    _assert_equal(before, _trainable(fp16.model))
    _assert_equal(slots, _slots(fp16.optimizer))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(os.path.join(run, "train"), size_guidance={"tensors": 0})
    events.Reload()
    logged = {tag: float(tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto))
              for tag in ("train/loss_scale", "train/loss_scale_overflow")}
    assert logged == {"train/loss_scale": 2.0 ** 100, "train/loss_scale_overflow": 1.0}

    # At a usable scale a float16 step is applied.
    scaler.dynamic_scale.assign(2.0 ** 10)
    step = build_train_step(fp16.model, fp16.optimizer, fp16.cfg.train.clip_norm, compiled=False)
    out = step(synthetic_batch(4, 128, fp16.cfg.data.max_instances, fp16.data.num_classes))
    assert float(out["loss_scale_overflow"]) == 0.0 and np.isfinite(float(out["grad_norm"]))
    assert int(scaler.step_counter) == 1 and fp16.step == 2
    assert any(not np.array_equal(a, b) for a, b in zip(before, _trainable(fp16.model)))

    # Its checkpoint resumes without loss scaling (the scale is left unread) and under float16.
    plain = build_trainer(tiny_config("train.steps=2", baseline), run)
    assert plain.optimizer.__class__ is SGD and plain.restore() == 1
    _assert_equal(before, _trainable(plain.model))
    again = build_trainer(tiny_config("train.mixed_precision=float16", "train.steps=2", baseline), run)
    assert again.restore() == 1 and float(precision.loss_scaler(again.optimizer).dynamic_scale) == 2.0 ** 99
