"""Train-then-evaluate, the body of ``internet-train`` and ``make demo``."""
from __future__ import annotations

import os

import tensorflow as tf

from internet_tf.evaluation.runner import evaluate_model, metrics_text
from internet_tf.training.trainer import build_trainer


def train_and_evaluate(cfg, model_dir: str, strategy=None, data=None) -> dict:
    """Trains to the configured step (resuming), then the chief evaluates; returns the
    metrics ({} on other workers). ``data``: the loaded datasets (``load_datasets(cfg)``
    when not given)."""
    trainer = build_trainer(cfg, model_dir, strategy=strategy, data=data)
    trainer.train()
    if not cfg.train.evaluate_at_end or not trainer.is_chief:
        return {}
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "eval"))
    metrics = evaluate_model(trainer.model, trainer.data, cfg, os.path.join(model_dir, "eval"),
                             summary_writer=writer, step=trainer.step)
    name, table = metrics_text(metrics)  # COCO or VOC, by the keys the evaluator wrote
    print(f"\n{name} metrics after step {trainer.step} (written to {os.path.join(model_dir, 'eval')}):")
    print(table)
    return metrics
