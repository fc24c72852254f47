"""``internet-train --config FILE --model_dir DIR [--override key=value ...]`` (SPEC §5).

Rerunning the same command resumes from the last checkpoint. Training ends with a COCO
evaluation written to ``DIR/eval/``.
"""
from __future__ import annotations

import os

from absl import app, flags

from internet_tf.cli.common import define_config_flags, fail, load_flags_config
from internet_tf.data.coco import DatasetError
from internet_tf.evaluation.coco_eval import format_metrics
from internet_tf.modeling.backbone import BackboneWeightsError

define_config_flags()
FLAGS = flags.FLAGS


def train_and_evaluate(cfg, model_dir: str) -> dict:
    """Trains to the configured step (resuming), then evaluates; returns the metrics."""
    import tensorflow as tf

    from internet_tf.evaluation.runner import evaluate_model
    from internet_tf.training.trainer import Trainer

    trainer = Trainer(cfg, model_dir)
    trainer.train()
    if not cfg.train.evaluate_at_end:
        return {}
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    metrics = evaluate_model(trainer.model, trainer.data, cfg, os.path.join(model_dir, "eval"),
                             summary_writer=writer, step=trainer.step)
    print(f"\nCOCO metrics after step {trainer.step} (written to {os.path.join(model_dir, 'eval')}):")
    print(format_metrics(metrics))
    return metrics


def main(argv):
    del argv
    cfg = load_flags_config()
    try:
        train_and_evaluate(cfg, FLAGS.model_dir)
    except (DatasetError, BackboneWeightsError) as e:
        fail(str(e))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
