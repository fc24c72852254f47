"""Measures the training step: median step time, images/s and peak RSS (issue: speed goals).

    python benchmarks/train_step.py --config configs/baseline_r50_fpn_coco.yaml \
        --override train.batch_size=1 --override model.backbone_weights=none

Uses synthetic images (random pixels, a few random boxes) so no dataset is needed; the
graph, shapes and losses are exactly the training ones. Prints one line per setting.
"""
from __future__ import annotations

import resource
import statistics
import time

from absl import app, flags

import internet_tf  # noqa: F401  (quiets TF's C++ logging)
from internet_tf.cli.common import define_config_flags, load_flags_config

define_config_flags(model_dir_required=False)
flags.DEFINE_integer("warmup", 3, "Untimed steps after tracing.")
flags.DEFINE_integer("iters", 10, "Timed steps.")
flags.DEFINE_integer("num_classes", 80, "Foreground classes of the synthetic task.")
flags.DEFINE_bool("reference", True, "Also time a plain Keras ResNet-50 train step at the same "
                  "input size and batch, to calibrate against the machine's load.")
FLAGS = flags.FLAGS


def synthetic_batch(batch_size: int, image_size: int, max_instances: int, num_classes: int, seed=0):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    boxes = np.full((batch_size, max_instances, 4), -1.0, np.float32)
    classes = np.full((batch_size, max_instances), -1, np.int32)
    for b in range(batch_size):
        for i in range(8):
            h, w = rng.uniform(16, image_size / 2, size=2)
            y, x = rng.uniform(0, image_size - h), rng.uniform(0, image_size - w)
            boxes[b, i] = (y, x, y + h, x + w)
            classes[b, i] = rng.integers(1, num_classes + 1)
    return {
        "images": tf.constant(rng.uniform(0, 255, (batch_size, image_size, image_size, 3)), tf.float32),
        "gt_boxes": tf.constant(boxes),
        "gt_classes": tf.constant(classes),
        "image_info": tf.constant([[image_size, image_size, 1.0, b] for b in range(batch_size)], tf.float32),
    }


def measure(cfg, num_classes: int, warmup: int, iters: int) -> dict:
    """Builds the model + optimizer of ``cfg`` and times its compiled train step."""
    import tensorflow as tf

    from internet_tf.modeling.factory import build_model
    from internet_tf.training import optim
    from internet_tf.training.step import build_train_step

    model = build_model(cfg.model, num_classes)
    model.build_all()
    optimizer = optim.build_optimizer(cfg.train, 1000)
    optimizer.build(model.trainable_variables)
    batch = synthetic_batch(cfg.train.batch_size, cfg.model.image_size, cfg.data.max_instances, num_classes)

    train_step = build_train_step(model, optimizer, cfg.train.clip_norm)

    def step(batch):
        return train_step(batch)["loss/total"]

    t0 = time.perf_counter()
    step(batch).numpy()
    trace = time.perf_counter() - t0
    for _ in range(warmup):
        step(batch).numpy()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step(batch).numpy()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"median_step_s": median, "images_per_s": cfg.train.batch_size / median,
            "first_step_s": trace,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


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


def describe(cfg) -> str:
    m = cfg.model
    return f"{m.backbone}-FPN {m.image_size}px batch {cfg.train.batch_size}"


def main(argv):
    del argv
    cfg = load_flags_config()
    r = measure(cfg, FLAGS.num_classes, FLAGS.warmup, FLAGS.iters)
    print(f"{describe(cfg)}: median step {r['median_step_s']:.3f} s over {FLAGS.iters} steps, "
          f"{r['images_per_s']:.2f} images/s, peak RSS {r['peak_rss_mib']:.0f} MiB "
          f"(first step incl. tracing {r['first_step_s']:.1f} s)")
    if FLAGS.reference:
        ref = keras_resnet50_reference(cfg, FLAGS.warmup, FLAGS.iters)
        print(f"reference: Keras ResNet-50 alone, same input and batch: median step {ref:.3f} s "
              f"(detector/reference = {r['median_step_s'] / ref:.2f})")


if __name__ == "__main__":
    app.run(main)
