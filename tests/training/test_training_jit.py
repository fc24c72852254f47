"""XLA switches (graph/jit.py): ``auto`` falls back with one log line where XLA
cannot compile, ``true`` stops with an error naming the key, ``false`` never tries; the
train step and the inference function take ``train.jit_compile`` / ``eval.jit_compile``."""
import logging

import numpy as np
import pytest
import tensorflow as tf

from internet_tf.config import ConfigError
from internet_tf.evaluation.runner import run_detector
from internet_tf.graph.jit import JitCompileError, first_line, jit_function
from internet_tf.assembly.train import build_trainer

pytestmark = pytest.mark.cost(17)  # seconds in make test (tests/conftest.py schedules by it)

IMAGE = tf.reshape(tf.range(2 * 8 * 8, dtype=tf.float32), [1, 8, 8, 2])
BOXES = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]])


def roi_crops(image, boxes):
    """RoIAlign's op: CropAndResize has no XLA CPU kernel."""
    return tf.image.crop_and_resize(image, boxes, tf.zeros([2], tf.int32), [3, 3])


EXPECTED = roi_crops(IMAGE, BOXES).numpy()


def _xla_lines(caplog):
    return [r.getMessage() for r in caplog.records if "XLA" in r.getMessage()]


def test_auto_falls_back_with_one_log_line(caplog):
    fn = jit_function(roi_crops, "auto", "train.jit_compile", "train step")
    assert fn.uses_xla is None  # decided at the first call
    with caplog.at_level(logging.WARNING):
        first = fn(IMAGE, BOXES)
        second = fn(IMAGE, BOXES)
    np.testing.assert_array_equal(first.numpy(), EXPECTED)
    np.testing.assert_array_equal(second.numpy(), EXPECTED)
    assert fn.uses_xla is False
    lines = _xla_lines(caplog)
    assert len(lines) == 1, lines  # one line, not one per call
    assert lines[0].startswith("train.jit_compile: auto: XLA cannot compile the train step")
    assert "CropAndResize" in lines[0] and "running it without XLA" in lines[0]
    assert "_XlaMustCompile" not in lines[0] and "\n" not in lines[0]


def test_true_raises_naming_the_key_or_compiles():
    fn = jit_function(roi_crops, "true", "eval.jit_compile", "inference function")
    with pytest.raises(JitCompileError, match=r"eval.jit_compile is true but XLA cannot compile the "
                                              r"inference function: .*CropAndResize"):
        fn(IMAGE, BOXES)
    dense = jit_function(lambda a, b: tf.matmul(a, b) + 1.0, "true", "train.jit_compile", "train step")
    a = tf.reshape(tf.range(6, dtype=tf.float32), [2, 3])
    np.testing.assert_allclose(dense(a, tf.transpose(a)).numpy(), (a @ tf.transpose(a)).numpy() + 1.0)
    assert dense.uses_xla is True
    auto = jit_function(lambda a: a * 2.0, "auto", "train.jit_compile", "train step")
    assert float(auto(tf.constant(2.0))) == 4.0 and auto.uses_xla is True


def test_false_never_tries(caplog):
    fn = jit_function(roi_crops, "false", "train.jit_compile", "train step")
    assert fn.uses_xla is False and fn.compiled is None  # decided before any call: no XLA function
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(fn(IMAGE, BOXES).numpy(), EXPECTED)
    assert not _xla_lines(caplog)
    with pytest.raises(ConfigError, match="train.jit_compile"):
        jit_function(roi_crops, "yes", "train.jit_compile", "train step")


@pytest.mark.parametrize("mode", ["false", "auto"])
def test_functions_trace_without_autograph(mode):
    """TRACE: Python control flow on a tensor is not converted (it would be with AutoGraph)
    but fails at trace time; tf.cond, as the package writes it, traces."""
    def python_if(x):
        return x + 1.0 if x > 0 else x - 1.0

    with pytest.raises(TypeError, match="tf.Tensor"):
        jit_function(python_if, mode, "train.jit_compile", "train step")(tf.constant(2.0))
    written_out = jit_function(lambda x: tf.cond(x > 0, lambda: x + 1.0, lambda: x - 1.0), mode,
                               "train.jit_compile", "train step")
    assert float(written_out(tf.constant(2.0))) == 3.0 and float(written_out(tf.constant(-2.0))) == -3.0


def test_first_line_is_short():
    error = tf.errors.InvalidArgumentError(None, None, "Detected unsupported operations in graph "
                                           "g[_XlaMustCompile=true,config_proto=123] on XLA_CPU_JIT: "
                                           + "Op " * 200 + "\nsecond line")
    text = first_line(error)
    assert text.startswith("Detected unsupported operations in graph g on XLA_CPU_JIT: Op")
    assert len(text) <= 300 and text.endswith("...") and "second" not in text


def test_train_step_falls_back_and_inference_refuses_xla(tiny_config, tmp_path, caplog):
    """The tiny detector (baseline: the fastest trace) on this CPU: XLA cannot compile its
    train step (RoIAlign's CropAndResize), so ``auto`` trains without it after one log line;
    ``eval.jit_compile: true`` stops the evaluation with an error naming the key."""
    cfg = tiny_config("train.steps=1", "train.jit_compile=auto", "eval.jit_compile=true",
                      "model.intertwiner.enabled=false")
    trainer = build_trainer(cfg, str(tmp_path / "run"))
    with caplog.at_level(logging.WARNING):
        trainer.train()
    assert trainer.step == 1 and np.isfinite(trainer.history).all()
    lines = _xla_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("train.jit_compile: auto: XLA cannot compile the train step (")
    assert "CropAndResize" in lines[0]
    with pytest.raises(JitCompileError, match="eval.jit_compile is true but XLA cannot compile the inference"):
        run_detector(trainer.model, trainer.data, cfg, [])
