"""``internet-eval --config FILE --model_dir DIR``: evaluation of the latest checkpoint
(SPEC §5 "Evaluation", §6).

The metrics follow the dataset's kind with no flag (``evaluation/runner.py``): COCOeval for a
COCO-format dataset, the VOC metrics (mAP, mAP_07, per-class AP) for one read as PASCAL VOC
(``data.dataset: voc`` or ``data.embedded.format: voc``). Writes ``DIR/eval/metrics.json`` and
``DIR/eval/detections.json``, for VOC also ``DIR/eval/voc_results/comp4_det_test_<class>.txt``.
"""
from __future__ import annotations

import os

from absl import app, flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import (define_config_flags, latest_checkpoint,
                                    run_with_config)

define_config_flags()
FLAGS = flags.FLAGS


def evaluate_checkpoint(cfg, model_dir: str) -> dict:
    latest = latest_checkpoint(model_dir)
    tf = start_tensorflow()
    # deferred: these import TensorFlow, which starts only once the run folder is checked
    from internet_tf.data.datasets import load_datasets
    from internet_tf.evaluation.runner import evaluate_model, metrics_text
    from internet_tf.assembly.factory import restore_model
    from internet_tf.graph.policy import policy_scope

    bundle = load_datasets(cfg, train=False)
    with policy_scope(cfg.train.mixed_precision):  # as internet-train's final evaluation
        model = restore_model(cfg.model, bundle.num_classes, latest)
    step = int(latest.rsplit("-", 1)[-1])
    out = os.path.join(model_dir, "eval")
    metrics = evaluate_model(model, bundle, cfg, out, step=step,
                             summary_writer=tf.summary.create_file_writer(out))
    name, table = metrics_text(metrics)
    print(f"{name} metrics of {latest} (written to {out}):")
    print(table)
    return metrics


def main(argv):
    del argv
    run_with_config(lambda cfg: evaluate_checkpoint(cfg, FLAGS.model_dir))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
