"""Crash safety: ``internet-train`` killed with SIGKILL mid-run
leaves only complete checkpoints; rerunning the same command restores the last one —
same step counter, class buffer and optimizer state — and ends at the requested step."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from internet_tf.config import load_config
from internet_tf.assembly.train import build_trainer
from tiny_internet import CONFIG, OVERRIDES, embedded_data

pytestmark = pytest.mark.cost(46)  # seconds in make test (tests/conftest.py schedules by it)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 14
KEEP = 2
RUN = [f"train.steps={STEPS}", "train.checkpoint_every=1", f"train.keep_checkpoints={KEEP}",
       "train.evaluate_at_end=false"]
ITERATIONS = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"


def _command(model_dir, overrides):
    return [sys.executable, "-m", "internet_tf.cli.train", "--config", CONFIG,
            "--model_dir", model_dir, *[f"--override={o}" for o in overrides]]


def _checkpoint_values(path, keys):
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in keys}


def test_sigkill_then_rerun_resumes_exactly(tmp_path):
    overrides = OVERRIDES + RUN + embedded_data(str(tmp_path / "data"))
    model_dir = str(tmp_path / "run")
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}

    # Kill while checkpoints are being written every step (usually in the middle of one).
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(_command(model_dir, overrides), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        while not os.path.exists(os.path.join(ckpt_dir, "ckpt-4.index")):
            assert proc.poll() is None, open(tmp_path / "first.log").read()[-3000:]
            assert time.time() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # The checkpoints the index keeps are complete and readable. CheckpointManager records a
    # new checkpoint *before* sweeping the oldest one beyond keep_checkpoints and records
    # again after, so a kill in between leaves that oldest one listed (oldest first) while
    # its files are being deleted; it is never the latest, and a rerun's sweep finishes it.
    state = tf.train.get_checkpoint_state(ckpt_dir)
    assert state is not None and state.all_model_checkpoint_paths
    assert len(state.all_model_checkpoint_paths) <= KEEP + 1
    assert state.all_model_checkpoint_paths[-1] == state.model_checkpoint_path
    kept = state.all_model_checkpoint_paths[-KEEP:]
    shapes = tf.train.load_checkpoint(kept[-1]).get_variable_to_shape_map()
    values = []
    for path in kept:
        # Complete: every variable of the latest, same shapes, finite, and the state of its
        # own step (ckpt-N holds the step counter N), not a mix of two saves.
        reader = tf.train.load_checkpoint(path)
        assert reader.get_variable_to_shape_map() == shapes, path
        values.append({k: np.asarray(reader.get_tensor(k)) for k in shapes})
        assert int(values[-1][ITERATIONS]) == int(path.rsplit("-", 1)[1]), path
        for key, value in values[-1].items():
            assert not np.issubdtype(value.dtype, np.floating) or np.all(np.isfinite(value)), (path, key)
    # Consecutive kept checkpoints hold different weights: each saved its own step's training.
    weights = [k for k in shapes if k.startswith("model/") and np.issubdtype(values[-1][k].dtype, np.floating)]
    assert len(values) == KEEP and any(not np.array_equal(values[0][k], values[1][k]) for k in weights)
    latest = state.model_checkpoint_path
    killed_at = int(latest.rsplit("-", 1)[1])
    # ckpt-4's files appear before the index records it, so the kill can land in between:
    # then ckpt-3 (whose save, record included, finished before ckpt-4's began) is the latest.
    assert 3 <= killed_at < STEPS

    # The rerun's Trainer restores exactly that state: step, class buffer, optimizer slots.
    keys = tf.train.load_checkpoint(latest).get_variable_to_shape_map()
    saved = _checkpoint_values(latest, keys)
    cfg = load_config(CONFIG, overrides)
    trainer = build_trainer(cfg, model_dir)
    assert trainer.restore() == killed_at
    buffer = {"model/intertwiner/buffer/sums/.ATTRIBUTES/VARIABLE_VALUE": trainer.model.intertwiner.buffer.sums,
              "model/intertwiner/buffer/counts/.ATTRIBUTES/VARIABLE_VALUE": trainer.model.intertwiner.buffer.counts}
    assert saved["model/intertwiner/buffer/counts/.ATTRIBUTES/VARIABLE_VALUE"].sum() > 0
    for key, var in buffer.items():
        np.testing.assert_array_equal(saved[key], var.numpy())
    # optimizer/_variables/<i>/... is the optimizer's i-th variable (momentum slots).
    slots = [k for k in keys if k.startswith("optimizer/_variables/")]
    assert len(slots) == len(trainer.optimizer.variables) - 1  # all but the step counter
    assert sum(np.abs(saved[k]).sum() for k in slots) > 0
    for key in slots:
        np.testing.assert_array_equal(saved[key], trainer.optimizer.variables[int(key.split("/")[2])].numpy())
    del trainer

    # The same command again finishes the run at the requested step.
    rerun = subprocess.run(_command(model_dir, overrides), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-3000:]
    assert f"Training steps {killed_at + 1}..{STEPS}" in rerun.stdout
    final = tf.train.latest_checkpoint(ckpt_dir)
    assert final.endswith(f"ckpt-{STEPS}")
    assert int(_checkpoint_values(final, [ITERATIONS])[ITERATIONS]) == STEPS
