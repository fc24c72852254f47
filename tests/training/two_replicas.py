"""Run by test_training_distribute.py in a fresh process (the CPU must be split into two
logical devices before TensorFlow runs any op): one or two optimisation steps of a tiny
InterNet on one device and on a 2-replica MirroredStrategy, from the same weights and the
same global batch. Prints one JSON line with the largest relative differences.

Sampling takes every candidate anchor and RoI (``num_samples`` above the candidates,
fraction 1), so the per-replica random draws cannot differ from the single device's.
"""
import json
import sys

import numpy as np

from internet_tf.training.distribute import make_strategy, split_batch, split_cpu

split_cpu(2)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

# Deterministic kernels: this untrained net's gradients otherwise vary by up to ~1e-3 from
# run to run of the *same* single-device step (thread-order dependent float sums).
tf.config.experimental.enable_op_determinism()

from internet_tf.config import load_config  # noqa: E402
from internet_tf.data.synthetic import synthetic_batch  # noqa: E402
from internet_tf.training.optim import build_model_and_optimizer  # noqa: E402
from internet_tf.training.step import build_train_step  # noqa: E402

from tiny_internet import OVERRIDES as TINY, SIZE  # noqa: E402

GLOBAL_BATCH, CLASSES, MAX_GT = 4, 3, 4
OVERRIDES = TINY + [
    # every candidate is sampled: 1023 anchors at 64 px, 24 proposals + 4 ground truths
    "model.rpn.num_samples=2048", "model.rpn.positive_fraction=1.0",
    "model.roi.num_samples=28", "model.roi.foreground_fraction=1.0",
    f"data.max_instances={MAX_GT}", f"train.batch_size={GLOBAL_BATCH}", "train.clip_norm=0.5",
    # full-weight extra losses from the first step, so both steps exercise them
    "model.intertwiner.warmup_steps=0",
]


def main(steps: int, overrides):
    cfg = load_config("configs/demo.yaml", OVERRIDES + overrides)
    keras.utils.set_random_seed(0)
    single, single_opt = build_model_and_optimizer(cfg, CLASSES, 1000)
    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2, mirrored.extended.worker_devices
    multi, multi_opt = build_model_and_optimizer(cfg, CLASSES, 1000, mirrored)
    multi.set_weights(single.get_weights())
    start = [v.numpy() for v in single.weights]

    batch = synthetic_batch(GLOBAL_BATCH, SIZE, MAX_GT, CLASSES, boxes_per_image=3, seed=1)
    per_replica = split_batch(mirrored, batch)
    one = build_train_step(single, single_opt, cfg.train.clip_norm)
    two = build_train_step(multi, multi_opt, cfg.train.clip_norm, mirrored)
    logs = []
    for _ in range(steps):
        a, b = one(batch), two(per_replica)
        logs.append({k: (float(a[k]), float(b[k])) for k in a if k.startswith("loss/") or k == "grad_norm"})

    # Each variable against the single device's, relative to its largest value with a floor
    # of the RMS of its kind (weights, momentum slots), for variables that are ~0 everywhere
    # (BN betas after two small steps).
    pairs = [(v.path, v.numpy(), vb.numpy()) for v, vb in zip(single.weights, multi.weights)]
    pairs += [(v.path, v.numpy(), vb.numpy()) for v, vb in zip(single_opt.variables, multi_opt.variables)
              if "momentum" in v.path or "iteration" in v.path]
    kinds = {path: "buffer" if "buffer" in path else "optimizer" if path.startswith("sgd/") else "weights"
             for path, _, _ in pairs}
    rms = {kind: float(np.sqrt(np.mean(np.concatenate(
        [np.ravel(a).astype(np.float64) ** 2 for path, a, _ in pairs if kinds[path] == kind]))))
        for kind in ("weights", "optimizer", "buffer")}
    worst = {kind: (0.0, "") for kind in rms}
    for path, a, b in pairs:
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        kind = kinds[path]
        rel = float(np.abs(a - b).max() / max(np.abs(a).max(), rms[kind], 1e-12))
        if rel > worst[kind][0]:
            worst[kind] = (rel, path)
    print(json.dumps({"worst": worst, "logs": logs, "replicas": mirrored.num_replicas_in_sync,
                      "buffer_coverage": int(single.intertwiner.buffer.coverage(0)), "rms": rms}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
