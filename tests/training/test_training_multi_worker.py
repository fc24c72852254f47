"""Two ``internet-train --strategy multi_worker`` processes on 127.0.0.1 (TF_CONFIG) train
a few steps of a tiny InterNet together; both exit cleanly and only the chief writes."""
import json
import os
import socket
import subprocess
import sys

from internet_tf.data import embedded

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "model.backbone=small_resnet", "model.image_size=64", "model.fpn_channels=8",
    "model.small_resnet_widths=[8,8,8,8]", "model.head.fc_dim=16", "model.roi.num_samples=16",
    "model.intertwiner.critic_hidden=8", "model.intertwiner.ot.pool_size=4",
    "model.rpn.anchor_sizes=[8,16,32,64,128]", "model.roi.level_base=16",
    "model.rpn.pre_nms_topk_train=64", "model.rpn.post_nms_topk_train=24",
    "model.rpn.pre_nms_topk_test=64", "model.rpn.post_nms_topk_test=24",
    "data.embedded.num_train=8", "data.embedded.num_val=4", "data.embedded.image_size=64",
    "train.batch_size=4", "train.steps=3", "train.checkpoint_every=1", "train.summary_every=1",
    "eval.batch_size=4",
]


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_train_and_exit_cleanly(tmp_path):
    data_root = str(tmp_path / "data")
    embedded.generate(data_root, num_train=8, num_val=4, image_size=64, seed=0, num_classes=4)
    model_dir = str(tmp_path / "run")
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs, logs = [], []
    for index in range(2):
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers},
                                        "task": {"type": "worker", "index": index}})}
        cmd = [sys.executable, "-m", "internet_tf.cli.train", "--config", "configs/demo.yaml",
               "--model_dir", model_dir, "--strategy", "multi_worker",
               *[f"--override={o}" for o in TINY + [f"data.embedded.root={data_root}"]]]
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
