"""Exports a run's latest checkpoint as a SavedModel (``internet-export``, ``make demo``):
the detector is rebuilt and restored here and handed to ``export/saved_model.py``."""
from __future__ import annotations

from internet_tf.assembly.factory import restore_model
from internet_tf.config import Config
from internet_tf.export.saved_model import export
from internet_tf.graph.policy import policy_scope
from internet_tf.run_dir import RunDirError, read_run


class ExportError(RuntimeError):
    """Nothing to export (no checkpoint or label map)."""


def export_checkpoint(cfg: Config, model_dir: str, export_dir: str) -> str:
    """Exports the latest checkpoint of ``model_dir``; returns the checkpoint path.

    The exported model is built under the float32 policy whatever ``train.mixed_precision``
    trained it (checkpoints hold float32 variables, ``training/precision.py``), so it
    computes in float32 and its signature's outputs are float32.
    """
    try:
        run = read_run(model_dir, cfg)
    except RunDirError as e:
        raise ExportError(str(e)) from e
    with policy_scope("none"):
        model = restore_model(cfg.model, run.num_classes, run.checkpoint)
    export(model, run.label_to_cat_id, run.class_names, export_dir)
    return run.checkpoint
