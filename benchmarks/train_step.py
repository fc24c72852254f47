"""Measures the training step: median step time, images/s, peak RSS, and how far the step is
from the machine's limit.

    python benchmarks/train_step.py --config configs/baseline_r50_fpn_coco.yaml \
        --override train.batch_size=1 --override model.backbone_weights=none
    python benchmarks/train_step.py --config configs/internet_r50_fpn_coco.yaml --internet_ratio \
        --override train.batch_size=1 --override model.backbone_weights=none --noreference
    python benchmarks/train_step.py --config configs/internet_r50_fpn_coco.yaml --internet_ratio \
        --override train.batch_size=8 --override model.backbone_weights=none \
        --override train.mixed_precision=bfloat16 --override train.jit_compile=true

    python benchmarks/train_step.py --config configs/demo.yaml --replicas 2 --noreference
    python benchmarks/train_step.py --config configs/baseline_r50_fpn_coco.yaml --method_ratio labelenc_step2 \
        --override train.batch_size=1 --override model.backbone_weights=none

Uses synthetic images (random pixels, a few random boxes) so no dataset is needed; the
graph, shapes and losses are exactly the training ones. Prints one line per setting.
``--replicas N`` splits the CPU into N logical devices and runs the step under a
MirroredStrategy over them (the global batch split N ways); ``benchmarks/replicas.py``
compares 1 and 2.

Against the limit (``--flops``, on by default; one replica only), printed in the same run
for every model timed:
- forward FLOPs of the model's training graph (``train_losses``: backbone to losses, the
  training-time methods included), counted by ``tf.compat.v1.profiler`` on the traced graph;
  a multiply-add counts as 2 FLOPs; products whose row count is only known at run time (the
  intertwiner's reliable sets) are counted from one run (``common.forward_flops``);
- the forward pass's convolutions and matrix products per layer (``common.part_of``: the
  backbone, FPN, RPN head, box head, and each part of a training-time method), to see what a
  method adds;
- achieved GFLOP/s = 3 × forward FLOPs / median step time (the usual convention: the
  backward pass costs twice the forward). The step graph's own count of forward + backward
  (Conv2DBackprop* included; frozen layers take no weight gradient) is printed beside it;
- the machine's ceiling for the step's dtype (``train.mixed_precision``: float32, bfloat16
  or float16): a chain of 2048×2048 matrix products (``common.MatmulCeiling``), one call
  in every timed round and ``--ceiling_iters`` more after them, best of all; a 3×3
  256→256 convolution at 128² is printed for comparison;
- achieved / ceiling, one number per model; beside it the ratio against the ceiling's
  median over the same rounds, which a shared machine's load moves least (the best call
  catches a quiet moment, the step medians do not);
- for scale, the lone 3×3 convolution's rate over the best matmul call (what the library's
  convolutions reach at all: the detector's FLOPs are 94 % convolutions) and each model's
  achieved rate over that convolution's.
"""
from __future__ import annotations

import importlib
import statistics

from absl import app, flags

importlib.import_module("internet_tf.cli")  # quiets TF's C++ logging; before TF loads
from common import (MatmulCeiling, compute_dtype, conv_gflops, describe, forward_flops, peak_rss_mib,
                    prepare, step_graph_flops, timed, xla_note)
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
flags.DEFINE_bool("flops", True, "Count each model's forward FLOPs, measure the machine's matrix-"
                  "product ceiling for the step's dtype and print achieved / ceiling (one replica).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matrices of the ceiling.")
flags.DEFINE_integer("ceiling_iters", 10, "Timed calls of the ceiling's products (best of).")
FLAGS = flags.FLAGS


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
    return statistics.median(timed(lambda: step(x).numpy(), iters))


# --method_ratio: the method's overrides on top of the plain baseline. Step 2 is timed from
# freshly initialised weights (its step-1 folder is only read when a run starts).
METHODS = {
    "internet": ("InterNet", ["model.intertwiner.enabled=true"]),
    "labelenc_step1": ("LabelEnc step 1", ["model.labelenc.enabled=true", "model.labelenc.step=1"]),
    "labelenc_step2": ("LabelEnc step 2", ["model.labelenc.enabled=true", "model.labelenc.step=2",
                                           "model.labelenc.step1_dir=unused"]),
}


def policy_note(cfg, model) -> str:
    """A line when the model does not run the policy ``train.mixed_precision`` asks for."""
    want = cfg.train.mixed_precision
    got = model.dtype_policy.name
    if want != "none" and want not in got:
        return f"note: train.mixed_precision={want} but the built model's dtype policy is {got}"
    return ""


def rounds(steps: dict, iters: int, ceiling=None) -> dict:
    """``iters`` rounds, each timing one call of every step in turn (and one ``ceiling`` call):
    a change of machine load hits all alike. Returns {name: [seconds]} (``"ceiling"`` too)."""
    times = {name: [] for name in steps}
    if ceiling is not None:
        times["ceiling"] = []
    for _ in range(iters):
        for name, step in steps.items():
            times[name] += timed(step, 1)
        if ceiling is not None:
            times["ceiling"].append(ceiling.seconds())
    return times


def limit_report(cfg, models: dict, medians: dict, ceiling, ceiling_times: list) -> None:
    """Prints forward FLOPs, achieved GFLOP/s and achieved / ceiling for each timed model.
    The ceiling is the best of the calls made between the rounds and ``--ceiling_iters``
    more; its median over the rounds is printed too (the ratio least moved by load)."""
    print("FLOPs: tf.compat.v1.profiler on the traced graph, a multiply-add = 2 FLOPs; "
          "achieved = 3 × forward FLOPs / median step (fwd + bwd ≈ 3 × fwd)")
    achieved = {}
    for name, parts in models.items():
        fwd = forward_flops(parts["model"], parts["batch"])
        graph = step_graph_flops(parts["train_step"], parts["batch"])
        types = fwd["by_type"]
        other = fwd["static"] - types.get("Conv2D", 0) - types.get("MatMul", 0)
        achieved[name] = 3 * fwd["total"] / medians[name] / 1e9
        print(f"{name}: forward {fwd['total'] / 1e9:.2f} GFLOP (Conv2D {types.get('Conv2D', 0) / 1e9:.2f}, "
              f"MatMul {types.get('MatMul', 0) / 1e9:.2f}, other {other / 1e9:.2f}, counted at run time "
              f"{fwd['dynamic'] / 1e9:.2f} in {fwd['dynamic_ops']} ops); step graph fwd+bwd "
              f"{graph / 1e9:.1f} GFLOP ({graph / fwd['static']:.2f} × its static forward); "
              f"achieved {achieved[name]:.1f} GFLOP/s")
        parts_text = ", ".join(f"{part} {flops / 1e9:.2f}" for part, flops in sorted(
            fwd["products_by_part"].items(), key=lambda item: -item[1]) if flops >= 1e7)
        print(f"{name}: forward convolutions and matrix products by layer, GFLOP: {parts_text}")
    calls = ceiling_times + [ceiling.seconds() for _ in range(FLAGS.ceiling_iters)]
    best, median = ceiling.gflops(min(calls)), ceiling.gflops(statistics.median(ceiling_times))
    conv = conv_gflops(ceiling.dtype, cfg.train.batch_size, iters=FLAGS.ceiling_iters)
    n = ceiling.n
    print(f"ceiling ({ceiling.dtype}): matmul {n}×{n} {best:.1f} GFLOP/s (best of {len(calls)} calls; "
          f"median over the timed rounds {median:.1f}); 3×3 conv 256→256 at 128² batch "
          f"{cfg.train.batch_size}: {conv:.1f} GFLOP/s (best of {FLAGS.ceiling_iters})")
    print("achieved / matmul ceiling: " + ", ".join(f"{name} {a / best:.2f}" for name, a in achieved.items())
          + " (against the rounds' median ceiling: "
          + ", ".join(f"{name} {a / median:.2f}" for name, a in achieved.items()) + ")")
    print(f"for scale: the lone 3×3 conv above reaches {conv / best:.2f} of the best matmul call; achieved / "
          "that conv's rate: " + ", ".join(f"{name} {a / conv:.2f}" for name, a in achieved.items()))


def main(argv):
    del argv
    from internet_tf.config import copy_config

    cfg = load_flags_config()
    method = "internet" if FLAGS.internet_ratio else FLAGS.method_ratio
    limit = FLAGS.flops and FLAGS.replicas == 1
    if not method:
        strategy = None
        if FLAGS.replicas > 1:
            from internet_tf.training.distribute import make_strategy, split_cpu

            split_cpu(FLAGS.replicas)
            strategy = make_strategy("mirrored")
        step, trace, parts = prepare(cfg, FLAGS.num_classes, strategy)
        steps, models = {"model": step}, {"model": parts}
    else:
        # Baseline and the method built in one process and timed in alternating rounds.
        off = ["model.intertwiner.enabled=false", "model.labelenc.enabled=false"]
        label, on = METHODS[method]
        steps, models = {}, {}
        for name, overrides in (("baseline", off), (label, off + on)):
            steps[name], _, models[name] = prepare(copy_config(cfg, overrides), FLAGS.num_classes)
    for step in steps.values():
        timed(step, FLAGS.warmup)
    ceiling = MatmulCeiling(compute_dtype(cfg), FLAGS.matmul_size) if limit else None
    times = rounds(steps, FLAGS.iters, ceiling)
    medians = {name: statistics.median(times[name]) for name in steps}
    if not method:
        median = medians["model"]
        print(f"{describe(cfg)}, {FLAGS.replicas} replica(s): median step {median:.3f} s over {FLAGS.iters} steps, "
              f"{cfg.train.batch_size / median:.2f} images/s, peak RSS {peak_rss_mib():.0f} MiB "
              f"(first step incl. tracing {trace:.1f} s)")
    else:
        median = medians["baseline"]
        for name in steps:
            print(f"{describe(cfg)} {name}: median step {medians[name]:.3f} s over {FLAGS.iters} steps, "
                  f"{cfg.train.batch_size / medians[name]:.2f} images/s")
        print(f"{label} / baseline step time: {medians[label] / medians['baseline']:.3f} "
              f"(peak RSS {peak_rss_mib():.0f} MiB)")
    for name, parts in models.items():
        for note in (policy_note(cfg, parts["model"]), xla_note(cfg, parts["train_step"])):
            if note:
                print(f"{name}: {note}")
    if limit:
        limit_report(cfg, models, medians, ceiling, times["ceiling"])
    if FLAGS.reference:
        ref = keras_resnet50_reference(cfg, FLAGS.warmup, FLAGS.iters)
        print(f"reference: Keras ResNet-50 alone, same input and batch: median step {ref:.3f} s "
              f"(baseline detector / reference = {median / ref:.2f})")


if __name__ == "__main__":
    app.run(main)
