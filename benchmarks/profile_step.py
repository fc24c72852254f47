"""Where a train step's time goes, stage by stage: baseline and InterNet, ResNet-50-FPN 512²,
batch 1 by default.

    python benchmarks/profile_step.py --config configs/internet_r50_fpn_coco.yaml \
        --override train.batch_size=1 --override model.backbone_weights=none
    python benchmarks/profile_step.py --config configs/demo.yaml --steps 2 --models baseline

For each model (``baseline``: the config with the intertwiner and LabelEnc off; ``internet``:
the config with the intertwiner on) it builds the model and its real train step on a
synthetic batch (``common.prepare``, as ``train_step.py``), times ``--iters`` steps without
the profiler (the wall median), then runs ``--steps`` steps under ``tf.profiler`` and reads
the trace (the ``.xplane.pb`` file) back: every op kernel's time, summed per stage, forward
and backward apart (TF names a gradient op ``gradient_tape/<forward op's scope>/...``).

Stages come from the op's name scope. Keras layers name their own (``backbone``, ``fpn``,
``rpn_head``, ``box_head``, ``critic``, ``make_up``, ``ot_generator``, ...); the pure tensor
functions of ``ops/`` have none, so while this script runs, each is wrapped in a
``tf.name_scope`` of its own (``STAGE_PATCHES``: proposals, RPN / RoI targets, RoIAlign,
losses, the intertwiner's reliable-set crops, sets, loss, merge, class buffer, Sinkhorn). The
package's code is not changed; a function that no longer exists is reported and skipped.
An op counts for the innermost stage scope in its name; ops in no stage scope (e.g. inside a
``while`` body) go by their type (NMS: proposals) or to "other".

Op times are kernel times on the CPU's threads: ops that run side by side (TF runs
independent ops in parallel, and the two cores are shared) each count in full, so the sum
over stages is more than the wall time; the percentages are of that sum. On a GPU the
device's kernel times (``tf_op`` of each kernel event) are used instead: that path has not
been run yet (no GPU here).
"""
from __future__ import annotations

import collections
import contextlib
import functools
import glob
import importlib
import os
import re
import shutil
import statistics
import tempfile

# (module, attribute — "Class.method" for a method —, stage scope) wrapped in tf.name_scope.
STAGE_PATCHES = [
    ("internet_tf.modeling.detector", "generate_proposals", "proposals"),
    ("internet_tf.modeling.detector", "assign_levels", "roi_align"),
    ("internet_tf.modeling.detector", "multilevel_roi_align", "roi_align"),
    ("internet_tf.ops.targets", "rpn_targets", "rpn_targets"),
    ("internet_tf.ops.targets", "roi_targets", "roi_targets"),
    ("internet_tf.ops.losses", "rpn_losses", "detection_losses"),
    ("internet_tf.ops.losses", "head_losses", "detection_losses"),
    ("internet_tf.methods.intertwiner.method", "Intertwiner.losses", "intertwiner_losses"),
    ("internet_tf.methods.intertwiner.method", "crop_level", "reliable_crops"),
    ("internet_tf.methods.intertwiner.method", "roi_align_flat", "reliable_crops"),
    ("internet_tf.methods.intertwiner.method", "small_large_masks", "intertwiner_sets"),
    ("internet_tf.methods.intertwiner.method", "level_loss", "intertwiner_loss"),
    ("internet_tf.methods.intertwiner.method", "merge", "merge"),
    ("internet_tf.methods.intertwiner.class_buffer", "ClassBuffer.batch_statistics", "class_buffer"),
    ("internet_tf.methods.intertwiner.class_buffer", "ClassBuffer.apply_statistics", "class_buffer"),
    ("internet_tf.methods.intertwiner.class_buffer", "ClassBuffer.update", "class_buffer"),
    ("internet_tf.methods.intertwiner.class_buffer", "ClassBuffer.representatives", "class_buffer"),
    ("internet_tf.methods.intertwiner.ot", "sinkhorn", "sinkhorn"),
    ("internet_tf.methods.intertwiner.ot", "biased_sinkhorn_divergence", "sinkhorn"),
]

# Stage scope -> label, in the order of the step. Scopes named by Keras layers and by
# STAGE_PATCHES; tf.linalg.global_norm / tf.clip_by_global_norm and Keras' SGD (in the
# step's tf.cond branch) name their own.
STAGES = {
    "backbone": "backbone",
    "fpn": "FPN",
    "projection": "FPN",
    "rpn_head": "RPN head",
    "proposals": "proposals (top-k, decode, NMS)",
    "rpn_targets": "RPN targets (anchor IoU, match, sample)",
    "roi_targets": "RoI targets (IoU, sample)",
    "roi_align": "RoIAlign (levels, crop_and_resize, stitch)",
    "make_up": "make-up",
    "critic": "critic",
    "merge": "merge",
    "box_head": "box head",
    "box_predictor": "predictor",
    "detection_losses": "detection losses",
    "reliable_crops": "reliable-set crops",
    "intertwiner_sets": "small/large sets (Eq. 7)",
    "class_buffer": "class buffer",
    "intertwiner_loss": "intertwiner loss (Eq. 3)",
    "ot_generator": "OT generator F (generator_p<l>)",
    "ot_critic": "OT critic H (critic_p<l>)",
    "sinkhorn": "Sinkhorn",
    "ot_module": "OT other",
    "intertwiner_losses": "intertwiner, other",
    "global_norm": "gradient norm + clip",
    "clip_by_global_norm": "gradient norm + clip",
    "gradient_sums": "gradient sums (AddN over a tensor's uses)",
    "sgd": "optimizer update (SGD)",
}
OTHER = "other (no stage scope)"
# Ops that run in no stage scope (bodies of while loops, cond branches) placed by their type.
TYPE_STAGES = {"NonMaxSuppressionV3": "proposals", "NonMaxSuppressionV4": "proposals",
               "NonMaxSuppressionV5": "proposals", "AddN": "gradient_sums"}
# Container ops whose kernel time covers the ops they run (counted on their own).
CONTAINERS = {"While", "StatelessWhile", "If", "StatelessIf", "PartitionedCall",
              "StatefulPartitionedCall", "Case", "StatelessCase"}
_SUFFIX = re.compile(r"_\d+$")
# Layer names that carry a level (OTModule's per-level F_l and H_l) -> their stage scope.
_LEVEL_NAMES = [(re.compile(r"generator_p\d$"), "ot_generator"), (re.compile(r"critic_p\d$"), "ot_critic")]
_OP_EVENT = re.compile(r"^([^:\s]+):(\w+)$")


def stage_of(node_name: str, op_type: str) -> tuple:
    """An op's ``(stage scope or OTHER, is_backward)`` from its graph name and type: the
    innermost scope of ``STAGES`` in the name (Keras' ``_1`` suffixes dropped)."""
    parts = node_name.split("/")
    backward = parts[0] == "gradient_tape"
    stage = None
    for part in parts[:-1]:
        key = _SUFFIX.sub("", part)
        key = next((scope for pattern, scope in _LEVEL_NAMES if pattern.match(key)), key)
        if key in STAGES:
            stage = key
    return stage or TYPE_STAGES.get(op_type, OTHER), backward


def op_event(name: str):
    """``(node name, op type)`` of a trace event named ``node:Type``, else None."""
    match = _OP_EVENT.match(name)
    return (match.group(1), match.group(2)) if match else None


def _stat(plane, event, wanted: str):
    for stat in event.stats:
        if plane.stat_metadata[stat.metadata_id].name == wanted:
            if stat.ref_value:
                return plane.stat_metadata[stat.ref_value].name
            return stat.str_value
    return None


def read_trace(path: str) -> dict:
    """``{(node name, op type): picoseconds}`` of the op kernels in an ``.xplane.pb`` file: a
    GPU's kernels (by their ``tf_op`` stat) when the trace has any, else the host's ops."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    host, device = collections.Counter(), collections.Counter()
    for plane in space.planes:
        on_gpu = plane.name.startswith("/device:GPU")
        if not (on_gpu or plane.name.startswith("/host:CPU")):
            continue
        for line in plane.lines:
            for event in line.events:
                meta = plane.event_metadata[event.metadata_id]
                if on_gpu:
                    op = op_event(_stat(plane, event, "tf_op") or "")
                    if op:
                        device[op] += event.duration_ps
                elif "::" not in meta.name:
                    op = op_event(meta.name)
                    if op and op[1] not in CONTAINERS:
                        host[op] += event.duration_ps
    return dict(device or host)


def stage_table(op_times: dict, steps: int) -> dict:
    """``{stage: [forward s, backward s]}`` per step, plus ``{op type: s}`` under key None."""
    stages = collections.defaultdict(lambda: [0.0, 0.0])
    types = collections.Counter()
    for (node, op_type), ps in op_times.items():
        stage, backward = stage_of(node, op_type)
        stages[stage][int(backward)] += ps * 1e-12 / steps
        types[op_type] += ps * 1e-12 / steps
    return {**stages, None: types}


@contextlib.contextmanager
def stage_scopes():
    """Wraps each function of ``STAGE_PATCHES`` in ``tf.name_scope(scope)`` while inside;
    yields the patches that found nothing to wrap."""
    import tensorflow as tf

    done, missing = [], []
    for module_name, attr, scope in STAGE_PATCHES:
        owner = importlib.import_module(module_name)
        *cls, name = attr.split(".")
        if cls:
            owner = getattr(owner, cls[0], None)
        original = getattr(owner, name, None) if owner is not None else None
        if original is None:
            missing.append(f"{module_name}.{attr}")
            continue

        def wrapped(*args, __fn=original, __scope=scope, **kwargs):
            with tf.name_scope(__scope):
                return __fn(*args, **kwargs)

        setattr(owner, name, functools.wraps(original)(wrapped))
        done.append((owner, name, original))
    try:
        yield missing
    finally:
        for owner, name, original in reversed(done):
            setattr(owner, name, original)


def profile(step, steps: int, logdir: str) -> dict:
    """Runs ``step`` ``steps`` times under tf.profiler; returns ``read_trace`` of the trace."""
    import tensorflow as tf

    tf.profiler.experimental.start(logdir)
    try:
        for _ in range(steps):
            step()
    finally:
        tf.profiler.experimental.stop()
    paths = sorted(glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb")))
    return read_trace(paths[-1])


def by_label(table: dict) -> dict:
    """``stage_table`` rows merged by their label, in the step's order: {label: [fwd, bwd]}."""
    order = {key: i for i, key in enumerate(STAGES)}
    rows = {}
    for key in sorted((k for k in table if k is not None), key=lambda k: order.get(k, len(order))):
        row = rows.setdefault(STAGES.get(key, key), [0.0, 0.0])
        row[0] += table[key][0]
        row[1] += table[key][1]
    return rows


def print_model(name: str, wall: float, table: dict, op_times: dict, steps: int, top: int, nodes: int) -> None:
    types = table[None]
    total = sum(types.values())
    print(f"\n== {name}: wall median step {wall:.3f} s (no profiler); op time {total:.3f} s per step "
          f"({total / wall:.2f} × wall: ops overlap)")
    print("| stage | forward s | backward s | total s | % of op time |\n|---|---|---|---|---|")
    for label, (fwd, bwd) in by_label(table).items():
        print(f"| {label} | {fwd:.3f} | {bwd:.3f} | {fwd + bwd:.3f} | {100 * (fwd + bwd) / total:.1f} |")
    print(f"\nop types by time ({name}, top {top}):\n| op type | s per step | % |\n|---|---|---|")
    for op_type, seconds in types.most_common(top):
        print(f"| {op_type} | {seconds:.3f} | {100 * seconds / total:.1f} |")
    if nodes:
        print(f"\nops by time ({name}, top {nodes}):\n| op | type | stage | s per step |\n|---|---|---|---|")
        for (node, op_type), ps in sorted(op_times.items(), key=lambda kv: -kv[1])[:nodes]:
            stage, backward = stage_of(node, op_type)
            where = STAGES.get(stage, stage) + (" (backward)" if backward else "")
            print(f"| {node} | {op_type} | {where} | {ps * 1e-12 / steps:.4f} |")


def print_comparison(tables: dict) -> None:
    """One row per stage, one column per model (seconds per step, forward + backward)."""
    rows = {name: by_label(table) for name, table in tables.items()}
    labels = list(dict.fromkeys(label for r in rows.values() for label in r))
    print("\n| stage | " + " | ".join(f"{n} s" for n in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for label in labels:
        print(f"| {label} | " + " | ".join(f"{sum(r.get(label, (0.0, 0.0))):.3f}" for r in rows.values()) + " |")
    totals = [sum(t[None].values()) for t in tables.values()]
    print("| op time, all stages | " + " | ".join(f"{t:.3f}" for t in totals) + " |")


def define_flags():
    from absl import flags

    from internet_tf.cli.common import define_config_flags

    define_config_flags(model_dir_required=False)
    flags.DEFINE_list("models", ["baseline", "internet"], "Which to profile: baseline (intertwiner "
                      "and LabelEnc off), internet (the intertwiner on).")
    flags.DEFINE_integer("warmup", 2, "Untimed steps after tracing.")
    flags.DEFINE_integer("iters", 3, "Steps timed without the profiler (wall median).")
    flags.DEFINE_integer("steps", 3, "Steps run under the profiler.")
    flags.DEFINE_integer("num_classes", 80, "Foreground classes of the synthetic task.")
    flags.DEFINE_integer("top", 15, "Op types listed per model.")
    flags.DEFINE_integer("nodes", 0, "Also list this many single ops (graph name, type, stage) per model.")
    flags.DEFINE_string("logdir", None, "Keep the traces here (TensorBoard's profile plugin reads "
                        "them); default: a temporary folder, removed.")


def main(argv):
    del argv
    from absl import flags

    from common import describe, prepare, timed
    from internet_tf.cli.common import load_flags_config
    from internet_tf.config import copy_config

    FLAGS = flags.FLAGS
    cfg = load_flags_config()
    overrides = {"baseline": ["model.intertwiner.enabled=false", "model.labelenc.enabled=false"],
                 "internet": ["model.intertwiner.enabled=true", "model.labelenc.enabled=false"]}
    logdir = FLAGS.logdir or tempfile.mkdtemp(prefix="profile_step_")
    tables = {}
    try:
        with stage_scopes() as missing:
            if missing:
                print("not scoped (no longer in the package): " + ", ".join(missing))
            for name in FLAGS.models:
                step, _, _ = prepare(copy_config(cfg, overrides[name]), FLAGS.num_classes)
                timed(step, FLAGS.warmup)
                wall = statistics.median(timed(step, FLAGS.iters))
                op_times = profile(step, FLAGS.steps, os.path.join(logdir, name))
                tables[name] = stage_table(op_times, FLAGS.steps)
                print_model(f"{name}, {describe(cfg)}", wall, tables[name], op_times, FLAGS.steps, FLAGS.top,
                            FLAGS.nodes)
    finally:
        if FLAGS.logdir is None:
            shutil.rmtree(logdir, ignore_errors=True)
    if len(tables) > 1:
        print_comparison(tables)


if __name__ == "__main__":
    from absl import app

    importlib.import_module("internet_tf.cli")  # quiets TF's C++ logging; before TF loads
    define_flags()
    app.run(main)
