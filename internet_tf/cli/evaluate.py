"""``internet-eval --config FILE --model_dir DIR``: COCOeval of the latest checkpoint (SPEC §5).

Writes ``DIR/eval/metrics.json`` and ``DIR/eval/detections.json``.
"""
from __future__ import annotations

import os

from absl import app, flags

from internet_tf.cli.common import define_config_flags, fail, load_flags_config
from internet_tf.data.coco import DatasetError

define_config_flags()
FLAGS = flags.FLAGS


def evaluate_checkpoint(cfg, model_dir: str) -> dict:
    import tensorflow as tf

    from internet_tf.data.datasets import load_datasets
    from internet_tf.evaluation.coco_eval import format_metrics
    from internet_tf.evaluation.runner import evaluate_model
    from internet_tf.modeling.factory import build_model

    ckpt_dir = os.path.join(model_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest is None:
        fail(f"no checkpoint in {ckpt_dir}; train first with internet-train")
    bundle = load_datasets(cfg, train=False)
    model = build_model(cfg.model, bundle.num_classes)
    model.build_all()
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    step = int(latest.rsplit("-", 1)[-1])
    out = os.path.join(model_dir, "eval")
    metrics = evaluate_model(model, bundle, cfg, out, step=step,
                             summary_writer=tf.summary.create_file_writer(out))
    print(f"COCO metrics of {latest} (written to {out}):")
    print(format_metrics(metrics))
    return metrics


def main(argv):
    del argv
    cfg = load_flags_config()
    try:
        evaluate_checkpoint(cfg, FLAGS.model_dir)
    except DatasetError as e:
        fail(str(e))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
