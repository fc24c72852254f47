"""The run directory — an ``internet-train --model_dir`` — and its one owner.

A run dir holds ``config.yaml`` (the config it was trained with), ``labels.json`` (the
detector's labels: one schema, also written next to an export), ``checkpoints/`` (written
by ``tf.train.CheckpointManager``), ``train/`` and ``eval/``. Files are written atomically
(``files.write_atomic``), so a crash never leaves half a file behind.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re

from internet_tf.config import Config, ConfigError, load_config
from internet_tf.files import write_atomic, write_json_atomic

CONFIG_FILE = "config.yaml"
LABELS_FILE = "labels.json"
CHECKPOINTS = "checkpoints"


class RunDirError(ValueError):
    """A run folder that cannot be restored; ``problem`` says why, without the folder's name."""

    def __init__(self, model_dir: str, problem: str):
        super().__init__(f"{model_dir} {problem}")
        self.model_dir, self.problem = model_dir, problem


def write_labels(folder: str, label_to_cat_id: dict, class_names: list) -> str:
    """``folder/labels.json``: one entry per label 1..K, ``{"label", "category_id", "name"}``
    (``class_names[0]`` is the background)."""
    entries = [{"label": int(label), "category_id": int(cat_id), "name": class_names[label]}
               for label, cat_id in sorted(label_to_cat_id.items())]
    return write_json_atomic(os.path.join(folder, LABELS_FILE), entries, indent=1)


def read_labels(folder: str):
    """Inverse of ``write_labels`` -> (label_to_cat_id, class_names with 'background' first);
    OSError when the file is missing."""
    with open(os.path.join(folder, LABELS_FILE)) as f:
        entries = sorted(json.load(f), key=lambda e: e["label"])
    return ({e["label"]: e["category_id"] for e in entries},
            ["background"] + [e["name"] for e in entries])


def write_run(model_dir: str, cfg: Config, data) -> None:
    """What a run dir needs besides its checkpoints: ``config.yaml`` and ``labels.json`` of
    ``data`` (a ``DatasetBundle``)."""
    os.makedirs(model_dir, exist_ok=True)
    write_atomic(os.path.join(model_dir, CONFIG_FILE), cfg.to_yaml())
    write_labels(model_dir, data.label_to_cat_id, data.class_names)


def latest_checkpoint(model_dir: str) -> str | None:
    """The latest checkpoint named by ``model_dir/checkpoints/checkpoint``, or None (without
    that file, at once: no TensorFlow import for a folder that was never trained)."""
    folder = os.path.join(model_dir, CHECKPOINTS)
    index = os.path.join(folder, "checkpoint")
    if not os.path.isfile(index):
        return None
    # The index is a text proto; its usual form is read here without importing TensorFlow
    # (which takes seconds), so a tool can say what it evaluates at once.
    with open(index) as f:
        match = re.search(r'^model_checkpoint_path: "([^"\\]+)"$', f.read(), re.MULTILINE)
    if match:
        path = os.path.join(folder, match.group(1))
        if os.path.isfile(path + ".index"):
            return path
    import tensorflow as tf

    return tf.train.latest_checkpoint(folder)


@dataclasses.dataclass
class Run:
    cfg: Config  # the config.yaml it was trained with
    num_classes: int  # from its labels.json
    checkpoint: str  # its latest checkpoint
    label_to_cat_id: dict
    class_names: list


def read_run(model_dir: str, cfg: Config | None = None) -> Run:
    """What restoring the run in ``model_dir`` needs, read without building anything (with
    ``cfg``, that config instead of the saved one); raises ``RunDirError`` for a missing
    folder, config.yaml, labels.json or checkpoint."""
    if not model_dir or not os.path.isdir(model_dir):
        raise RunDirError(model_dir, "does not exist")
    if cfg is None:
        try:
            cfg = load_config(os.path.join(model_dir, CONFIG_FILE))
        except (OSError, ConfigError) as err:
            raise RunDirError(model_dir, f"has no readable {CONFIG_FILE} ({err})") from err
    try:
        label_to_cat_id, names = read_labels(model_dir)
    except OSError as err:
        raise RunDirError(model_dir, f"has no {LABELS_FILE} (it is written by internet-train)") from err
    checkpoint = latest_checkpoint(model_dir)
    if not checkpoint:
        raise RunDirError(model_dir, f"has no checkpoint in {CHECKPOINTS}/ (train first with internet-train)")
    return Run(cfg, len(label_to_cat_id), checkpoint, label_to_cat_id, names)
