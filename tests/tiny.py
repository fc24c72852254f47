"""tests/tiny.yaml, the tiny model and data every test builds or trains, loaded in one place.

``config(*overrides)`` is tests/tiny.yaml with ``key=value`` overrides (``PATH`` is the file,
for ``--config`` on a command line); ``overrides(prefix)`` gives the file's own settings (not
its base's) as ``key=value`` overrides, to put the tiny sizes on top of another config file.
"""
import contextlib
import json
import os

import yaml

from internet_tf.config import load_config

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.yaml")


def config(*overrides):
    return load_config(PATH, list(overrides))


def overrides(prefix: str = "", exclude=()) -> list:
    """``['model.backbone="small_resnet"', ...]``: tiny.yaml's keys under ``prefix``, less
    ``exclude`` (JSON values, which YAML reads back as they were)."""
    with open(PATH) as f:
        settings = yaml.safe_load(f)
    settings.pop("base")
    out = []

    def walk(node, key):
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, f"{key}.{name}" if key else name)
        elif key.startswith(prefix) and key not in exclude:
            out.append(f"{key}={json.dumps(node)}")

    walk(settings, "")
    return out


def train_eagerly(trainer, steps: int) -> int:
    """Runs ``steps`` train steps of a ``build_trainer`` trainer with the train step run
    eagerly, then saves the checkpoint internet-train would leave (the folder then holds
    config.yaml, labels.json and it): for tests that need a trained run folder, not the
    training loop, without tracing its graph (seconds, where tracing takes ~20-40 s on 2
    cores). Returns the step."""
    import numpy as np

    from internet_tf.data.datasets import train_dataset
    from internet_tf.training.step import build_train_step

    start = trainer.restore()
    step = build_train_step(trainer.model, trainer.optimizer, trainer.cfg.train.clip_norm, compiled=False)
    for batch in train_dataset(trainer.data, trainer.cfg, start_step=start).take(steps):
        assert np.isfinite(float(step(batch)["loss/total"]))
    trainer.manager.save(checkpoint_number=trainer.step)
    return trainer.step


@contextlib.contextmanager
def eagerly():
    """Runs every ``tf.function`` eagerly inside the block (``tf.config.run_functions_eagerly``):
    for tests of what the training loop does around its step (resuming), whose
    compiled step is traced by another test of the same graph."""
    import warnings

    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        with warnings.catch_warnings():  # tf.data's map functions stay graphs, as they should
            warnings.filterwarnings("ignore", message="Even though the `tf.config.experimental_run_functions_eagerly`")
            yield
    finally:
        tf.config.run_functions_eagerly(False)
