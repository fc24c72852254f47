"""Measures exported-model (SavedModel) inference time: baseline vs InterNet (issue: speed goals).

    python benchmarks/export_inference.py
    python benchmarks/export_inference.py --iters 10 --batch 2 --json /tmp/export_inference.json
    python benchmarks/export_inference.py --override model.rpn.post_nms_topk_test=300

Both configs (``--baseline_config``, ``--internet_config``; the COCO R50-FPN ones by default)
are built with random weights (``model.backbone_weights=none``: nothing is downloaded),
exported with ``internet_tf.export.saved_model.export`` — the same function
``internet-export`` uses, so the graph is exactly the served one: resize/pad, backbone, FPN,
RPN + proposal NMS, RoIAlign, (make-up and critic for InterNet), box head, predictor, per-class
NMS — into ``--out`` (a temporary folder by default). The Python models are then dropped and
each export is loaded back with plain ``tf.saved_model.load`` in this process, and
``serving_default(images=uint8 [batch, S, S, 3])`` is called on one fixed-seed random-noise
image batch: ``--warmup`` untimed calls each, then ``--iters`` timed rounds that alternate
baseline and InterNet, so a change of machine load hits both alike. Prints median and mean
seconds per image, images/s, InterNet / baseline (the project targets: <= 2.0x, <= 1.3x with
``merge: separate``) and the
detections returned, then a markdown table; ``--json`` also writes the numbers.

Random weights do not make the timing unrepresentative where it matters: the RPN always
keeps ``model.rpn.post_nms_topk_test`` proposals (1000 in these configs; fewer survivors
are zero-padded to that count), and the box head, make-up and critic run on every one of
them, as they would with trained weights. Only the final per-class NMS depends on the
scores; the detections returned are printed so its load can be judged (an untrained R50
model here returns the full ``model.head.max_detections``, i.e. that NMS is not idle).

``--override key=value`` (repeatable) applies to both configs, after the defaults
``model.backbone_weights=none`` and ``model.image_size=--image_size``.
"""
from __future__ import annotations

import datetime
import gc
import json
import os
import shutil
import statistics
import tempfile
import time

from absl import app, flags, logging

import internet_tf.cli  # noqa: F401  (quiets TF's C++ logging)
from common import peak_rss_mib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("baseline_config", os.path.join(REPO, "configs", "baseline_r50_fpn_coco.yaml"),
                    "Baseline YAML config.")
flags.DEFINE_string("internet_config", os.path.join(REPO, "configs", "internet_r50_fpn_coco.yaml"),
                    "InterNet YAML config.")
flags.DEFINE_multi_string("override", [], "key=value config override for both configs, "
                          "repeatable, e.g. --override model.rpn.post_nms_topk_test=300")
flags.DEFINE_integer("image_size", 512, "Model input size (model.image_size) and the side of "
                     "the square uint8 test image.")
flags.DEFINE_integer("num_classes", 80, "Foreground classes of the exported models (COCO: 80).")
flags.DEFINE_integer("batch", 1, "Images per serving call.")
flags.DEFINE_integer("warmup", 2, "Untimed serving calls per model after loading.")
flags.DEFINE_integer("iters", 5, "Timed serving calls per model (alternating rounds).")
flags.DEFINE_integer("seed", 0, "Seed of the random-noise test image.")
flags.DEFINE_string("out", None, "Directory for the two SavedModels (kept); a temporary "
                    "folder, removed at the end, by default.")
flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
FLAGS = flags.FLAGS

MODELS = ("baseline", "InterNet")


def target_ratio(cfg) -> float:
    """The project's inference targets, InterNet's time against the baseline's: <= 2.0x with the
    critic merged into the head, <= 1.3x with ``merge: separate`` (no critic at inference)."""
    return 1.3 if cfg.model.intertwiner.merge == "separate" else 2.0


def load_configs() -> dict:
    from internet_tf.cli.common import fail
    from internet_tf.config import ConfigError, load_config

    overrides = ["model.backbone_weights=none", f"model.image_size={FLAGS.image_size}"] + FLAGS.override
    cfgs = {}
    for name, path in zip(MODELS, (FLAGS.baseline_config, FLAGS.internet_config)):
        try:
            cfgs[name] = load_config(path, overrides)
        except ConfigError as e:
            fail(f"config error in {path}: {e}")
    if cfgs["baseline"].model.intertwiner.enabled or not cfgs["InterNet"].model.intertwiner.enabled:
        fail("--baseline_config must have model.intertwiner.enabled false and --internet_config true")
    return cfgs


def export_one(cfg, num_classes: int, export_dir: str) -> float:
    """Builds ``cfg``'s model with random weights and exports it; returns the seconds taken."""
    from internet_tf.export.saved_model import export
    from internet_tf.assembly.factory import build_model

    t0 = time.perf_counter()
    model = build_model(cfg.model, num_classes)
    model.build_all()
    label_to_cat_id = {label: label for label in range(1, num_classes + 1)}
    names = ["background"] + [f"class_{label}" for label in range(1, num_classes + 1)]
    export(model, label_to_cat_id, names, export_dir)
    del model
    gc.collect()
    return time.perf_counter() - t0


def roi_head_gmacs(cfg) -> dict:
    """Analytic multiply-accumulates (G) of the head-side layers at inference: over all
    test-time proposals, the box head's two FCs and InterNet's critic (3x3/2 conv C->hidden,
    7x7 conv hidden->fc_dim, the optional 1x1 fc_dim->fc_dim; none with ``merge: separate``);
    InterNet's make-up (k x k conv C->C) on every S x S RoI, or once on each map P2-P5 with
    ``makeup_placement: map``. A guide to where the extra time goes, not a measurement."""
    m = cfg.model
    rois = m.rpn.post_nms_topk_test
    s, c, d = m.roi.output_size, m.fpn_channels, m.head.fc_dim
    gmacs = {"box_head": ((s // 2) ** 2 * c * d + d * d) * rois}
    it = m.intertwiner
    if it.enabled:
        conv = it.makeup_kernel ** 2 * c * c
        if it.makeup_placement == "map":
            gmacs["make_up"] = sum((m.image_size // 2 ** l) ** 2 for l in (2, 3, 4, 5)) * conv
        else:
            gmacs["make_up"] = s * s * conv * rois
        if it.merge != "separate":
            h, half = it.critic_hidden, (s + 1) // 2
            per_roi = half * half * 9 * c * h + max(half - 6, 1) ** 2 * 49 * h * d
            gmacs["critic"] = (per_roi + (d * d if it.critic_extra_conv else 0)) * rois
    return {k: v / 1e9 for k, v in gmacs.items()}


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    logging.set_verbosity(logging.WARNING)  # TF's SavedModel writer logs every save at INFO
    cfgs = load_configs()
    size, batch = FLAGS.image_size, FLAGS.batch
    out = FLAGS.out or tempfile.mkdtemp(prefix="export-inference-")
    dirs = {name: os.path.join(out, name.lower()) for name in MODELS}
    load_avg = {"before": os.getloadavg()}
    try:
        export_s = {}
        for name in MODELS:
            export_s[name] = export_one(cfgs[name], FLAGS.num_classes, dirs[name])
            print(f"{name}: exported to {dirs[name]} in {export_s[name]:.1f} s", flush=True)

        images = tf.constant(np.random.default_rng(FLAGS.seed).integers(
            0, 256, size=(batch, size, size, 3), dtype=np.uint8))
        serve, load_s, first_s, detections = {}, {}, {}, {}
        for name in MODELS:
            t0 = time.perf_counter()
            serve[name] = tf.saved_model.load(dirs[name]).signatures["serving_default"]
            load_s[name] = time.perf_counter() - t0
            for i in range(FLAGS.warmup):
                t0 = time.perf_counter()
                result = serve[name](images=images)
                detections[name] = result["num_detections"].numpy().tolist()
                if i == 0:
                    first_s[name] = time.perf_counter() - t0
            print(f"{name}: loaded in {load_s[name]:.1f} s, first call "
                  f"{first_s.get(name, float('nan')):.2f} s", flush=True)

        times = {name: [] for name in MODELS}
        for i in range(FLAGS.iters):
            for name in MODELS:
                t0 = time.perf_counter()
                result = serve[name](images=images)
                detections[name] = result["num_detections"].numpy().tolist()
                times[name].append((time.perf_counter() - t0) / batch)
            print(f"round {i + 1}/{FLAGS.iters}: " + ", ".join(
                f"{name} {times[name][-1]:.3f} s/image" for name in MODELS), flush=True)
        load_avg["after"] = os.getloadavg()
    finally:
        if FLAGS.out is None:
            shutil.rmtree(out, ignore_errors=True)

    m = cfgs["baseline"].model
    desc = (f"{m.backbone}-FPN {size}x{size}, batch {batch}, {FLAGS.num_classes} classes, "
            f"{m.rpn.post_nms_topk_test} test proposals, random weights, SavedModel serving_default")
    results = {"setting": desc, "warmup": FLAGS.warmup, "iters": FLAGS.iters, "models": {}}
    for name in MODELS:
        med, mean = statistics.median(times[name]), statistics.mean(times[name])
        results["models"][name] = {
            "median_s_per_image": med, "mean_s_per_image": mean, "images_per_s": 1.0 / med,
            "times_s_per_image": times[name], "num_detections": detections[name],
            "export_s": export_s[name], "load_s": load_s[name], "first_call_s": first_s.get(name),
            "roi_head_gmacs": roi_head_gmacs(cfgs[name]),
        }
    r = results["models"]
    ratio = r["InterNet"]["median_s_per_image"] / r["baseline"]["median_s_per_image"]
    mean_ratio = r["InterNet"]["mean_s_per_image"] / r["baseline"]["mean_s_per_image"]
    target = target_ratio(cfgs["InterNet"])
    results.update(ratio_median=ratio, ratio_mean=mean_ratio, target_ratio=target,
                   target_met=ratio <= target, peak_rss_mib=peak_rss_mib(),
                   load_avg_before=list(load_avg["before"]), load_avg_after=list(load_avg.get("after", ())),
                   cpu_count=os.cpu_count(), date=datetime.datetime.now().isoformat(timespec="seconds"))

    print()
    for name in MODELS:
        x = r[name]
        print(f"{desc} {name}: median {x['median_s_per_image']:.3f} s/image, mean "
              f"{x['mean_s_per_image']:.3f} s/image over {FLAGS.iters} calls, "
              f"{x['images_per_s']:.2f} images/s, detections {x['num_detections']}")
    print(f"InterNet / baseline inference time: {ratio:.3f} (mean {mean_ratio:.3f}); target <= "
          f"{target:.2f}: {'met' if ratio <= target else 'NOT met'} "
          f"(peak RSS {results['peak_rss_mib']:.0f} MiB)")
    gm = {name: r[name]["roi_head_gmacs"] for name in MODELS}
    print("per-RoI layers over all proposals (analytic GMACs): " + "; ".join(
        f"{name} " + ", ".join(f"{k} {v:.1f}" for k, v in gm[name].items()) for name in MODELS))
    la = load_avg
    print(f"load average (1/5/15 min) before {'/'.join(f'{v:.2f}' for v in la['before'])}, after "
          f"{'/'.join(f'{v:.2f}' for v in la.get('after', ()))} on {os.cpu_count()} CPUs")

    print()
    print("| model | median s/image | mean s/image | images/s | vs baseline | detections |")
    print("|---|---|---|---|---|---|")
    for name in MODELS:
        x = r[name]
        rel = x["median_s_per_image"] / r["baseline"]["median_s_per_image"]
        print(f"| {name} | {x['median_s_per_image']:.3f} | {x['mean_s_per_image']:.3f} | "
              f"{x['images_per_s']:.2f} | {rel:.3f}x | {', '.join(map(str, x['num_detections']))} |")
    print(f"\nInterNet / baseline (median): {ratio:.3f}x; target <= {target:.2f}x "
          f"{'met' if ratio <= target else 'NOT met'}")

    if FLAGS.json:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.json)), exist_ok=True)
        with open(FLAGS.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {FLAGS.json}")


if __name__ == "__main__":
    app.run(main)
