"""Runs a detector over the validation split and scores it with COCOeval (SPEC §5).

Writes ``<out_dir>/metrics.json`` and ``<out_dir>/detections.json`` (COCO results format,
original image pixels, the dataset's own category ids).
"""
from __future__ import annotations

import os

import tensorflow as tf
from absl import logging

from internet_tf.config import Config
from internet_tf.data.datasets import DatasetBundle, eval_dataset
from internet_tf.evaluation.coco_eval import CocoEvaluator


def evaluate_model(model, bundle: DatasetBundle, cfg: Config, out_dir: str, *, summary_writer=None,
                   step: int | None = None) -> dict:
    """Returns the metrics dict; writes metrics.json / detections.json under ``out_dir``."""
    evaluator = CocoEvaluator(bundle.val.coco, bundle.label_to_cat_id, bundle.class_names[1:])
    size = model.image_size
    # A None batch dimension: the last, smaller batch reuses the same trace.
    infer = tf.function(model.inference, input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    seen = 0
    for batch in eval_dataset(bundle, cfg):
        dets = infer(batch["images"], batch["image_info"])
        evaluator.update(dets["detection_boxes"], dets["detection_scores"], dets["detection_classes"],
                         dets["num_detections"], batch["image_info"])
        seen += int(batch["images"].shape[0])
        if cfg.eval.max_images and seen >= cfg.eval.max_images:
            break
    metrics = evaluator.evaluate()
    os.makedirs(out_dir, exist_ok=True)
    evaluator.write(out_dir)
    logging.info("COCOeval on %d images:\n%s", seen, evaluator.summary_text)
    if summary_writer is not None:
        with summary_writer.as_default(step=step or 0):
            for key, value in metrics.items():
                if isinstance(value, float):
                    tf.summary.scalar("eval/" + key, value)
        summary_writer.flush()
    return metrics
