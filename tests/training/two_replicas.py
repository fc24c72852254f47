"""Run by test_training_distribute.py in one fresh process (the CPU must be split into two
logical devices before TensorFlow runs any op), which serves every two-replica check of the
suite; each is compared with one device and reports on its own. Prints one JSON line: per
check, ``null`` when it passed or its traceback, and the train step's numbers.

- ``class_buffer``: all-reduced statistics ("all"/"decay") or all-gathered rows ("window")
  give every replica the single-device class buffer (Sec. 3.2).
- ``distillation``: LabelEnc's loss is Σ over the replica's elements / the global count, so
  the replicas' losses and gradients add up to the whole batch's on one device.
- ``train_step``: one or two optimisation steps of a tiny InterNet (and whatever the
  arguments add) on one device (eagerly) and on a 2-replica MirroredStrategy, from the same weights
  and the same global batch: the largest relative differences. Sampling takes every
  candidate anchor and RoI (``num_samples`` above the candidates, fraction 1), so the
  per-replica random draws cannot differ from the single device's.

Usage: ``two_replicas.py STEPS [override ...]``.
"""
import json
import os
import sys
import traceback

import numpy as np

from internet_tf.training.distribute import make_strategy, split_batch, split_cpu

split_cpu(2)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

# Deterministic kernels: this untrained net's gradients otherwise vary by up to ~1e-3 from
# run to run of the *same* single-device step (thread-order dependent float sums).
tf.config.experimental.enable_op_determinism()
# No Grappler: both sides run the graphs as traced, and rewriting the two-replica graph took a
# quarter of this process's time (156 -> 119 s, measured with a study training beside it). The
# package's one switch for it, as the command-line tools apply it (internet_tf/cli).
os.environ.setdefault("INTERNET_TF_GRAPPLER", "0")
from internet_tf.cli import start_tensorflow  # noqa: E402

start_tensorflow()

from internet_tf.config import load_config  # noqa: E402
from internet_tf.data.synthetic import synthetic_batch  # noqa: E402
from internet_tf.methods.intertwiner.class_buffer import ClassBuffer  # noqa: E402
from internet_tf.methods.labelenc.distill import distillation_loss  # noqa: E402
from internet_tf.assembly.factory import build_model_and_optimizer  # noqa: E402
from internet_tf.training.step import build_train_step  # noqa: E402

from tiny_internet import CONFIG, OVERRIDES as TINY, SIZE  # noqa: E402

GLOBAL_BATCH, CLASSES, MAX_GT = 4, 3, 4
OVERRIDES = TINY + [
    # every candidate is sampled: 1023 anchors at 64 px, 24 proposals + 4 ground truths
    "model.rpn.num_samples=2048", "model.rpn.positive_fraction=1.0",
    "model.roi.num_samples=28", "model.roi.foreground_fraction=1.0",
    f"data.max_instances={MAX_GT}", f"train.batch_size={GLOBAL_BATCH}", "train.clip_norm=0.5",
    # full-weight extra losses from the first step, so both steps exercise them
    "model.intertwiner.warmup_steps=0",
]


def class_buffer(strategy):
    f = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    lab = np.array([1, 2, 2, -1, 3, 1, 0, 2], np.int32)
    for mode in ("all", "decay", "window"):
        with strategy.scope():
            buf = ClassBuffer(4, 3, mode=mode, window=16)
        ref = ClassBuffer(4, 3, mode=mode, window=16)

        @tf.function
        def step(f, lab):
            ctx = tf.distribute.get_replica_context()
            if mode == "window":  # all-gather, then update
                return buf.update(ctx.all_gather(f, axis=0), ctx.all_gather(lab, axis=0))
            sums, counts = ctx.all_reduce("sum", list(buf.batch_statistics(f, lab)))
            return buf.apply_statistics(sums, counts)

        def shard(x):
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: x[4 * ctx.replica_id_in_sync_group:4 * ctx.replica_id_in_sync_group + 4])

        for _ in range(2):
            out = strategy.run(step, args=(shard(f), shard(lab)))
            expected, _ = ref.update(f, lab)
        for reps in strategy.experimental_local_results(out[0]):
            np.testing.assert_allclose(reps.numpy(), expected.numpy(), atol=1e-6, err_msg=mode)
        for var, ref_var in zip(buf.weights, ref.weights):
            for local in strategy.experimental_local_results(var.value):
                np.testing.assert_allclose(local.numpy(), ref_var.numpy(), atol=1e-6, err_msg=mode)


def distillation(strategy):
    rng = np.random.default_rng(0)
    shapes = {2: (4, 6, 4, 3), 3: (4, 3, 2, 3)}
    student = {l: rng.normal(size=s).astype(np.float32) for l, s in shapes.items()}
    teacher = {l: rng.normal(size=s).astype(np.float32) for l, s in shapes.items()}

    def loss_and_grads(s, t):
        s = {l: tf.convert_to_tensor(v) for l, v in s.items()}
        with tf.GradientTape() as tape:
            tape.watch(s)
            loss = distillation_loss(s, t)
        return loss, tape.gradient(loss, s)

    def shard(x):
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: {l: v[2 * ctx.replica_id_in_sync_group:2 * ctx.replica_id_in_sync_group + 2]
                         for l, v in x.items()})

    losses, grads = strategy.run(tf.function(loss_and_grads), args=(shard(student), shard(teacher)))
    single_loss, single_grads = loss_and_grads(student, teacher)
    local = [x.numpy() for x in strategy.experimental_local_results(losses)]
    np.testing.assert_allclose(sum(local), single_loss.numpy(), rtol=1e-5)
    for l in shapes:
        parts = np.concatenate([g.numpy() for g in strategy.experimental_local_results(grads[l])])
        np.testing.assert_allclose(parts, single_grads[l].numpy(), rtol=1e-4, atol=1e-7, err_msg=f"level {l}")


def train_step(steps: int, overrides) -> dict:
    cfg = load_config(CONFIG, OVERRIDES + overrides)
    keras.utils.set_random_seed(0)
    single, single_opt = build_model_and_optimizer(cfg, CLASSES, 1000)
    mirrored = make_strategy("mirrored")
    assert mirrored.num_replicas_in_sync == 2, mirrored.extended.worker_devices
    multi, multi_opt = build_model_and_optimizer(cfg, CLASSES, 1000, mirrored)
    multi.set_weights(single.get_weights())

    batch = synthetic_batch(GLOBAL_BATCH, SIZE, MAX_GT, CLASSES, boxes_per_image=3, seed=1)
    per_replica = split_batch(mirrored, batch)
    # The single device runs the step eagerly: the same code, one graph fewer to trace (the
    # compiled step itself is tested on one device in tests/training).
    one = build_train_step(single, single_opt, cfg.train.clip_norm, compiled=False)
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
    return {"worst": worst, "logs": logs, "replicas": mirrored.num_replicas_in_sync,
            "buffer_coverage": int(single.intertwiner.buffer.coverage(0)), "rms": rms}


def _run(check, *args):
    try:
        return check(*args)
    except Exception:  # noqa: BLE001 -- reported, so that the other checks still run
        return {"error": traceback.format_exc()}


if __name__ == "__main__":
    # One strategy for both op-level checks: a second one over the same devices would start
    # its collective keys afresh and collide with the first one's.
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({"class_buffer": _run(class_buffer, strategy), "distillation": _run(distillation, strategy),
                      "train_step": _run(train_step, int(sys.argv[1]), sys.argv[2:])}))
