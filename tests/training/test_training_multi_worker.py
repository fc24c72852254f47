"""Two ``internet-train --strategy multi_worker`` processes on 127.0.0.1 (TF_CONFIG) train
a few steps of a tiny InterNet together; both exit cleanly and only the chief writes."""
import json
import os
import socket
import subprocess
import sys

import pytest

from tiny_internet import CONFIG, OVERRIDES, embedded_data

pytestmark = pytest.mark.cost(68)  # seconds in make test (tests/conftest.py schedules by it)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = ["train.steps=3", "train.checkpoint_every=1", "train.summary_every=1"]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_and_exit_cleanly(tmp_path):
    overrides = OVERRIDES + STEPS + embedded_data(str(tmp_path / "data"))
    model_dir = str(tmp_path / "run")
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs, logs = [], []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                        "task": {"type": "worker", "index": index}})}
        cmd = [sys.executable, "-m", "internet_tf.cli.train", "--config", CONFIG,
               "--model_dir", model_dir, "--strategy", "multi_worker",
               *[f"--override={o}" for o in overrides]]
        # Files, not pipes: a worker blocked on a full pipe would stall the other's collectives.
        logs.append(open(tmp_path / f"worker{index}.log", "w+"))
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=logs[-1], stderr=subprocess.STDOUT))
    try:
        for proc in procs:
            proc.wait(timeout=900)
    finally:
        for proc in procs:
            proc.kill()
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for index, (proc, out) in enumerate(zip(procs, outputs)):
        assert proc.returncode == 0, f"worker {index}:\n{out[-4000:]}"
        assert "on 2 replicas (CollectiveAllReduceStrategy)" in out, out[-2000:]
    assert "this worker is not the chief" in outputs[1]

    # The chief's checkpoints reach the requested step; the other worker's scratch copy is gone.
    import tensorflow as tf
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    assert latest is not None and latest.endswith("ckpt-3")
    step = tf.train.load_checkpoint(latest).get_tensor("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == 3
    assert not os.path.exists(os.path.join(model_dir, ".workers"))
    # Summaries and the evaluation come from the chief alone.
    assert len(os.listdir(os.path.join(model_dir, "train"))) == 1
    assert os.path.exists(os.path.join(model_dir, "eval", "metrics.json"))
    assert "COCO metrics after step 3" in outputs[0] and "COCO metrics" not in outputs[1]
