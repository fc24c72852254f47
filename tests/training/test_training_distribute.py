"""Distribution (tf.distribute): on two logical CPU devices, the class buffer, LabelEnc's
distillation and one MirroredStrategy train step equal one device's on the same global batch;
strategies are chosen as documented."""
import json
import os
import subprocess
import sys

import pytest

from internet_tf.training import distribute

pytestmark = pytest.mark.cost(89)  # seconds in make test (tests/conftest.py schedules by it)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _passed(result):
    assert result is None, result["error"]  # the check's own assertion, in its traceback


def _check_train_step(result):
    assert "error" not in result, result.get("error")
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


def test_two_replicas_equal_one_device():
    """Every two-replica check of the suite in one fresh process (the CPU must be split into
    two devices before TF runs an op; see two_replicas.py), each reported on its own:
    the class buffer's replicas hold the single-device buffer (tests/methods/
    test_intertwiner_class_buffer.py tests it on one device), LabelEnc's distillation loss and
    gradients add up over the replicas (tests/methods/test_labelenc_distill.py), and one
    MirroredStrategy step equals one single-device step on the same global batch, for InterNet
    and LabelEnc step 1 together (without the random label-map intensities, which the replicas
    would draw differently from the single device)."""
    labelenc = ["model.labelenc.enabled=true", "model.labelenc.augment=false"]
    proc = subprocess.run([sys.executable, os.path.join(HERE, "two_replicas.py"), "2", *labelenc], cwd=ROOT,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": ROOT})
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    failures = []
    for name, check in (("class_buffer", _passed), ("distillation", _passed),
                        ("train_step", _check_train_step)):
        try:
            check(result[name])
        except AssertionError as err:
            failures.append(f"{name}: {err}")
    assert not failures, "\n\n".join(failures)


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
