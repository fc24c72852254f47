"""Train then evaluate, the body of ``internet-train`` and ``make demo``: the trainer is
built here from a config (datasets, detector, optimizer) and the trained detector handed to
the evaluation, so that training never imports the evaluation."""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from internet_tf.assembly.factory import build_model_and_optimizer, restore_model
from internet_tf.config import Config
from internet_tf.data.datasets import DatasetBundle, load_datasets
from internet_tf.evaluation.runner import evaluate_model, metrics_text
from internet_tf.progress import Phase
from internet_tf.training.trainer import Trainer


def build_trainer(cfg: Config, model_dir: str, strategy: tf.distribute.Strategy | None = None,
                  data: DatasetBundle | None = None) -> Trainer:
    """Loads the datasets (unless given), builds the model (every variable; ``cfg.seed``
    fixes the initialisation on every worker) and its optimizer in ``strategy``'s scope.
    The trainer gets ``restore_model`` for the methods that start from another run's
    detector (LabelEnc step 2)."""
    data = data or load_datasets(cfg)
    strategy = strategy or tf.distribute.get_strategy()
    keras.utils.set_random_seed(cfg.seed)
    with Phase(f"building the {cfg.model.backbone} detector ({data.num_classes} classes) and its optimizer"):
        model, optimizer = build_model_and_optimizer(cfg, data.num_classes, len(data.train), strategy)
    return Trainer(cfg, model_dir, data, model, optimizer, strategy, restore_model=restore_model)


def train_and_evaluate(cfg: Config, model_dir: str, strategy=None, data=None) -> dict:
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
