"""One checkpoint, both evaluation routes: COCOeval's AP50 and the VOC metric (Li et al. 2019, Table 5).

Takes a trained run of the embedded data (``--model_dir``; nothing is trained) and scores its
latest checkpoint on the validation images twice:

- the COCO route: the embedded data as COCO json, COCOeval's AP50 (101-point interpolation);
- the VOC route: the same data written as PASCAL VOC (``data.embedded.format=voc``, read by
  the VOC reader) and scored with ``evaluation/voc_eval.py``: mAP (all-point) and mAP_07.

It prints both numbers and their difference (they should agree within 0.02), and
splits the difference in two: the VOC metrics on the COCO route's own detections (same
predictions, so only the metric differs: at most 1/101 in theory, see
tests/evaluation/test_evaluation_voc_eval.py), and the rest, which comes from the data route
(e.g. an image re-encoded as JPEG for VOC gives slightly different pixels). The model's
labels are matched to each route's categories by class name. Run from the repository root:

    python benchmarks/voc_vs_coco.py --model_dir runs/study/demo_causes/baseline/seed0

Writes the evaluations (metrics.json, detections.json, the devkit files) and
``summary.json`` under ``--out`` (default ``<model_dir>/voc_vs_coco``); exit code 0 when the
difference is within ``--tolerance``, 1 when not, 2 for a run or data it cannot use.
"""
from __future__ import annotations

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from internet_tf.cli.common import fail  # noqa: E402  (imports internet_tf.cli first: quiet TF logs)
from internet_tf.config import ConfigError, load_config  # noqa: E402
from internet_tf.data.coco import DatasetError  # noqa: E402
from internet_tf.run_dir import CONFIG_FILE, RunDirError, read_run  # noqa: E402

flags.DEFINE_string("model_dir", None, "A trained run folder of the embedded data.")
flags.DEFINE_string("out", None, "Output folder (default <model_dir>/voc_vs_coco).")
flags.DEFINE_multi_string("override", [], "key=value applied to the run's config for both routes.")
flags.DEFINE_float("tolerance", 0.02, "Largest accepted |VOC mAP - COCO AP50|.")
flags.mark_flag_as_required("model_dir")
FLAGS = flags.FLAGS


class Unusable(ValueError):
    """A run or dataset this comparison cannot use; the message says why."""


def route_config(model_dir: str, fmt: str, overrides):
    """The run's saved config with the embedded data read as ``fmt`` (coco | voc)."""
    return load_config(os.path.join(model_dir, CONFIG_FILE), [*overrides, f"data.embedded.format={fmt}"])


def evaluator_for(bundle, run, cls):
    """``cls`` (an evaluator class) over ``bundle``'s val set for the model's labels, each
    matched to the bundle's category of the same name."""
    by_name = {name: bundle.label_to_cat_id[label] for label, name in enumerate(bundle.class_names) if label}
    missing = [name for name in run.class_names[1:] if name not in by_name]
    if missing:
        raise Unusable(f"classes {missing} of the model are not in the data ({sorted(by_name)})")
    label_to_cat = {label: by_name[name] for label, name in enumerate(run.class_names) if label}
    return cls(bundle.val.coco, label_to_cat, run.class_names[1:])


def compare(model_dir: str, out: str, overrides=(), tolerance: float = 0.02) -> dict:
    """Scores the run both ways, writes the evaluations under ``out``; returns the summary."""
    from internet_tf.data.datasets import load_datasets
    from internet_tf.evaluation.coco_eval import CocoEvaluator
    from internet_tf.evaluation.runner import dataset_kind, run_detector
    from internet_tf.evaluation.voc_eval import VocEvaluator
    from internet_tf.files import write_json_atomic
    from internet_tf.assembly.factory import restore_model

    run = read_run(model_dir)
    if run.cfg.data.dataset != "embedded":
        raise Unusable(f"{model_dir} was trained on data.dataset={run.cfg.data.dataset!r}; "
                       "this comparison needs a run of the embedded data")
    cfg_coco, cfg_voc = (route_config(model_dir, fmt, overrides) for fmt in ("coco", "voc"))
    coco_bundle = load_datasets(cfg_coco, train=False)
    voc_bundle = load_datasets(cfg_voc, train=False)
    if dataset_kind(voc_bundle) != "voc":
        raise Unusable("data.embedded.format=voc did not give a VOC dataset (no VOC reader?)")
    model = restore_model(run.cfg.model, run.num_classes, run.checkpoint)

    coco_ev = evaluator_for(coco_bundle, run, CocoEvaluator)
    same_dets = evaluator_for(coco_bundle, run, VocEvaluator)
    seen_coco, _ = run_detector(model, coco_bundle, cfg_coco, [coco_ev, same_dets])
    voc_ev = evaluator_for(voc_bundle, run, VocEvaluator)
    seen_voc, _ = run_detector(model, voc_bundle, cfg_voc, [voc_ev])
    for name, evaluator in (("coco", coco_ev), ("coco_detections_voc_metrics", same_dets), ("voc", voc_ev)):
        evaluator.write(os.path.join(out, name))

    coco_ap50 = coco_ev.evaluate()["AP50"]
    voc, same = voc_ev.evaluate(), same_dets.evaluate()
    summary = {
        "checkpoint": run.checkpoint, "images": {"coco": seen_coco, "voc": seen_voc},
        "coco_AP50": coco_ap50, "voc_mAP": voc["mAP"], "voc_mAP_07": voc["mAP_07"],
        "difference": voc["mAP"] - coco_ap50,
        "metric_part": same["mAP"] - coco_ap50,     # same detections, the two metrics
        "data_part": voc["mAP"] - same["mAP"],      # same metric, the two data routes
        "tolerance": tolerance,
    }
    summary["within_tolerance"] = abs(summary["difference"]) <= tolerance
    write_json_atomic(os.path.join(out, "summary.json"), summary, indent=1)
    return summary


def report(summary: dict) -> str:
    s = summary
    verdict = "within" if s["within_tolerance"] else "NOT within"
    return "\n".join([
        f"checkpoint {s['checkpoint']}; val images: COCO route {s['images']['coco']}, "
        f"VOC route {s['images']['voc']}",
        f"COCO route  COCOeval AP50 (101-point)   {s['coco_AP50']:.4f}",
        f"VOC route   mAP (VOC2010+ all-point)    {s['voc_mAP']:.4f}",
        f"VOC route   mAP_07 (VOC2007 11-point)   {s['voc_mAP_07']:.4f}",
        f"difference  VOC mAP - COCO AP50         {s['difference']:+.4f}  ({verdict} {s['tolerance']})",
        f"  of which  the metric (same detections) {s['metric_part']:+.4f}",
        f"            the data route (same metric) {s['data_part']:+.4f}",
    ])


def main(argv):
    del argv
    out = FLAGS.out or os.path.join(FLAGS.model_dir, "voc_vs_coco")
    try:
        summary = compare(FLAGS.model_dir, out, FLAGS.override, FLAGS.tolerance)
    except (Unusable, RunDirError, ConfigError, DatasetError) as e:
        fail(str(e))  # exit code 2
    print(report(summary) + f"\n\nwrote {out}/summary.json and the three evaluations")
    return 0 if summary["within_tolerance"] else 1


if __name__ == "__main__":
    app.run(main)
