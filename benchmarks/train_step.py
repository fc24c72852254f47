"""Measures the training step: median step time, images/s and peak RSS (issue: speed goals).

    python benchmarks/train_step.py --config configs/baseline_r50_fpn_coco.yaml \
        --override train.batch_size=1 --override model.backbone_weights=none
    python benchmarks/train_step.py --config configs/internet_r50_fpn_coco.yaml --internet_ratio \
        --override train.batch_size=1 --override model.backbone_weights=none

    python benchmarks/train_step.py --config configs/demo.yaml --replicas 2 --noreference
    python benchmarks/train_step.py --config configs/baseline_r50_fpn_coco.yaml --method_ratio labelenc_step2 \
        --override train.batch_size=1 --override model.backbone_weights=none

Uses synthetic images (random pixels, a few random boxes) so no dataset is needed; the
graph, shapes and losses are exactly the training ones. Prints one line per setting.
``--replicas N`` splits the CPU into N logical devices and runs the step under a
MirroredStrategy over them (the global batch split N ways); ``benchmarks/replicas.py``
compares 1 and 2.
"""
from __future__ import annotations

import statistics
import time

from absl import app, flags

import internet_tf.cli  # noqa: F401  (quiets TF's C++ logging)
from common import peak_rss_mib
from internet_tf.cli.common import define_config_flags, load_flags_config

define_config_flags(model_dir_required=False)
flags.DEFINE_integer("warmup", 3, "Untimed steps after tracing.")
flags.DEFINE_integer("iters", 10, "Timed steps.")
flags.DEFINE_integer("num_classes", 80, "Foreground classes of the synthetic task.")
flags.DEFINE_bool("internet_ratio", False, "Same as --method_ratio=internet.")
flags.DEFINE_enum("method_ratio", None, ["internet", "labelenc_step1", "labelenc_step2"],
                  "Time the plain baseline and the config with this training-time method on, in "
                  "one run, and print the method's step time over the baseline's.")
flags.DEFINE_bool("reference", True, "Also time a plain Keras ResNet-50 train step at the same "
                  "input size and batch, to calibrate against the machine's load.")
flags.DEFINE_integer("replicas", 1, "MirroredStrategy over this many logical CPU devices "
                     "(1: no strategy).")
FLAGS = flags.FLAGS


def prepare(cfg, num_classes: int, strategy=None):
    """Builds model + optimizer of ``cfg`` and traces its train step; returns (step, seconds)."""
    from internet_tf.data.synthetic import synthetic_batch
    from internet_tf.training.distribute import split_batch
    from internet_tf.training.optim import build_model_and_optimizer
    from internet_tf.training.step import build_train_step

    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    model, optimizer = build_model_and_optimizer(cfg, num_classes, 1000, strategy)
    batch = synthetic_batch(cfg.train.batch_size, cfg.model.image_size, cfg.data.max_instances, num_classes)
    batch = split_batch(strategy, batch)
    train_step = build_train_step(model, optimizer, cfg.train.clip_norm, strategy)

    def step():
        return float(train_step(batch)["loss/total"])

    t0 = time.perf_counter()
    step()
    return step, time.perf_counter() - t0


def timed(step, n: int) -> list:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def keras_resnet50_reference(cfg, warmup: int, iters: int) -> float:
    """Median train-step time of keras.applications.ResNet50 alone (no detector)."""
    import keras
    import tensorflow as tf

    size, batch = cfg.model.image_size, cfg.train.batch_size
    net = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(size, size, 3))
    opt = keras.optimizers.SGD(0.01, momentum=0.9)
    x = tf.random.uniform((batch, size, size, 3))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(net(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    for _ in range(warmup + 1):
        step(x).numpy()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step(x).numpy()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --method_ratio: the method's overrides on top of the plain baseline. Step 2 is timed from
# freshly initialised weights (its step-1 folder is only read when a run starts).
METHODS = {
    "internet": ("InterNet", ["model.intertwiner.enabled=true"]),
    "labelenc_step1": ("LabelEnc step 1", ["model.labelenc.enabled=true", "model.labelenc.step=1"]),
    "labelenc_step2": ("LabelEnc step 2", ["model.labelenc.enabled=true", "model.labelenc.step=2",
                                           "model.labelenc.step1_dir=unused"]),
}


def describe(cfg) -> str:
    m = cfg.model
    return f"{m.backbone}-FPN {m.image_size}px batch {cfg.train.batch_size}"


def main(argv):
    del argv
    from internet_tf.config import copy_config

    cfg = load_flags_config()
    method = "internet" if FLAGS.internet_ratio else FLAGS.method_ratio
    if not method:
        strategy = None
        if FLAGS.replicas > 1:
            from internet_tf.training.distribute import make_strategy, split_cpu

            split_cpu(FLAGS.replicas)
            strategy = make_strategy("mirrored")
        step, trace = prepare(cfg, FLAGS.num_classes, strategy)
        timed(step, FLAGS.warmup)
        median = statistics.median(timed(step, FLAGS.iters))
        print(f"{describe(cfg)}, {FLAGS.replicas} replica(s): median step {median:.3f} s over {FLAGS.iters} steps, "
              f"{cfg.train.batch_size / median:.2f} images/s, peak RSS {peak_rss_mib():.0f} MiB "
              f"(first step incl. tracing {trace:.1f} s)")
    else:
        # Baseline and InterNet built in one process and timed in alternating rounds, so a
        # change of machine load hits both alike.
        off = ["model.intertwiner.enabled=false", "model.labelenc.enabled=false"]
        label, on = METHODS[method]
        steps = {}
        for name, overrides in (("baseline", off), (label, off + on)):
            steps[name] = prepare(copy_config(cfg, overrides), FLAGS.num_classes)[0]
            timed(steps[name], FLAGS.warmup)
        times = {name: [] for name in steps}
        for _ in range(FLAGS.iters):
            for name, step in steps.items():
                times[name] += timed(step, 1)
        med = {name: statistics.median(t) for name, t in times.items()}
        median = med["baseline"]
        for name in steps:
            print(f"{describe(cfg)} {name}: median step {med[name]:.3f} s over {FLAGS.iters} steps, "
                  f"{cfg.train.batch_size / med[name]:.2f} images/s")
        print(f"{label} / baseline step time: {med[label] / med['baseline']:.3f} "
              f"(peak RSS {peak_rss_mib():.0f} MiB)")
    if FLAGS.reference:
        ref = keras_resnet50_reference(cfg, FLAGS.warmup, FLAGS.iters)
        print(f"reference: Keras ResNet-50 alone, same input and batch: median step {ref:.3f} s "
              f"(baseline detector / reference = {median / ref:.2f})")


if __name__ == "__main__":
    app.run(main)
