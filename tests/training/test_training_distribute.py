"""Distribution (SPEC §5): one MirroredStrategy step on two logical CPU devices equals one
single-device step on the same global batch; strategies are chosen as documented."""
import json
import os
import subprocess
import sys

import pytest

from internet_tf.training import distribute

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def test_mirrored_step_equals_single_device_step():
    # A fresh process: the CPU must be split into two devices before TF runs an op. InterNet
    # and LabelEnc step 1 together (without the random label-map intensities, which the
    # replicas would draw differently from the single device).
    labelenc = ["model.labelenc.enabled=true", "model.labelenc.augment=false"]
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_step.py"), "2", *labelenc], cwd=ROOT,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": ROOT})
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    assert result["replicas"] == 2
    # The batch really exercises the buffer and the intertwiner loss.
    assert result["buffer_coverage"] > 0
    assert all(step["loss/intertwiner"][0] > 0 for step in result["logs"])
    assert all(step[f"loss/{k}"][0] > 0 for step in result["logs"]
               for k in ("distill", "labelenc_rpn_class", "labelenc_head_class"))
    for step in result["logs"]:
        for key, (single, mirrored) in step.items():
            assert mirrored == pytest.approx(single, rel=1e-3, abs=1e-6), key
    for kind, (rel, where) in result["worst"].items():
        assert rel < 1e-4, f"{kind}: {where} differs by {rel:.2e} (relative)"


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(distribute.StrategyError, match="choose one of auto, default, mirrored"):
        distribute.make_strategy("tpu")


def test_default_and_auto_on_a_cpu_machine_use_one_replica():
    assert distribute.make_strategy("default").num_replicas_in_sync == 1
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1
    assert distribute.is_chief(distribute.make_strategy("default"))


@pytest.mark.parametrize("tf_config, message", [
    (None, "needs TF_CONFIG"),
    ("{not json", "not a valid cluster spec"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "outside the cluster"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(distribute.StrategyError, match=message):
        distribute.make_strategy("multi_worker")
