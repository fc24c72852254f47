"""Runs a detector over the validation split and scores it with COCOeval (SPEC §5).

Writes ``<out_dir>/metrics.json`` and ``<out_dir>/detections.json`` (COCO results format,
original image pixels, the dataset's own category ids). Given a summary writer, it also
writes the scalars ``eval/<metric>`` (``eval/AP``, ``eval/AP50``, ...) and one image summary
``eval/detections``: the first ``num_images`` validation images with ground truth in green
and detections scoring >= 0.5 in red (``evaluation/visualize.py``), from the detections
already computed for COCOeval (no extra inference).
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from internet_tf.config import Config
from internet_tf.data.datasets import DatasetBundle, eval_dataset
from internet_tf.evaluation.coco_eval import CocoEvaluator
from internet_tf.evaluation.visualize import detection_images

_SHOWN_BATCH_KEYS = ("images", "gt_boxes", "gt_classes", "image_info")
_SHOWN_DET_KEYS = ("detection_boxes", "detection_scores", "num_detections")


def _take_first(parts: list, source: dict, keys, count: int):
    """Appends the first ``count`` examples of ``source[keys]`` (as numpy) to ``parts``."""
    parts.append({k: np.asarray(source[k][:count]) for k in keys})


def _joined(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def evaluate_model(model, bundle: DatasetBundle, cfg: Config, out_dir: str, *, summary_writer=None,
                   step: int | None = None, num_images: int = 4) -> dict:
    """Returns the metrics dict; writes metrics.json / detections.json under ``out_dir``.

    With ``summary_writer``, also writes the ``eval/*`` scalars and the ``eval/detections``
    image summary of the first ``num_images`` images (0 writes no image summary).
    """
    evaluator = CocoEvaluator(bundle.val.coco, bundle.label_to_cat_id, bundle.class_names[1:])
    size = model.image_size
    # A None batch dimension: the last, smaller batch reuses the same trace.
    infer = tf.function(model.inference, input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    to_show = num_images if summary_writer is not None else 0
    shown_batches, shown_dets = [], []
    seen = 0
    for batch in eval_dataset(bundle, cfg):
        dets = infer(batch["images"], batch["image_info"])
        evaluator.update(dets["detection_boxes"], dets["detection_scores"], dets["detection_classes"],
                         dets["num_detections"], batch["image_info"])
        wanted = to_show - seen
        if wanted > 0:
            _take_first(shown_batches, batch, _SHOWN_BATCH_KEYS, wanted)
            _take_first(shown_dets, dets, _SHOWN_DET_KEYS, wanted)
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
            if shown_batches:
                pictures = detection_images(_joined(shown_batches), _joined(shown_dets))
                tf.summary.image("eval/detections", pictures, max_outputs=num_images)
        summary_writer.flush()
    return metrics
