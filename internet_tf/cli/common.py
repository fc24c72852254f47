"""Flags shared by the command-line tools (absl): --config, --override, --model_dir."""
from __future__ import annotations

import os
import sys

from absl import flags, logging

from internet_tf.config import Config, ConfigError, load_config

FLAGS = flags.FLAGS


def define_config_flags(model_dir_required: bool = True):
    if "config" in FLAGS:  # already defined by another imported CLI module
        return
    flags.DEFINE_string("config", None, "YAML config file (see configs/).")
    flags.DEFINE_multi_string("override", [], "key=value config override, repeatable, e.g. "
                              "--override train.steps=100 --override model.image_size=256")
    flags.DEFINE_string("model_dir", None, "Directory for checkpoints, logs and results.")
    if model_dir_required:
        flags.mark_flag_as_required("model_dir")


def load_flags_config() -> Config:
    """Loads the config named by the flags; a bad config exits with its message, no traceback.

    Without --config, a config.yaml saved in --model_dir by training is used."""
    path = FLAGS.config
    if path is None and FLAGS.model_dir:
        saved = os.path.join(FLAGS.model_dir, "config.yaml")
        path = saved if os.path.exists(saved) else None
    try:
        return load_config(path, FLAGS.override)
    except ConfigError as e:
        fail(f"config error: {e}")


def fail(message: str):
    logging.error(message)
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def latest_checkpoint(model_dir: str) -> str:
    """The latest checkpoint in ``model_dir/checkpoints``; exits with an error if there is none."""
    from internet_tf.run_dir import CHECKPOINTS, latest_checkpoint as find  # deferred: tools start fast

    latest = find(model_dir)
    if latest is None:
        fail(f"no checkpoint in {os.path.join(model_dir, CHECKPOINTS)}; train first with internet-train")
    return latest


def run_with_config(action):
    """Loads the flags' config and returns ``action(cfg)``; a dataset error exits with its
    message (exit code 2, no traceback)."""
    from internet_tf.data.coco import DatasetError  # deferred: pycocotools only when a tool reads data

    cfg = load_flags_config()
    try:
        return action(cfg)
    except DatasetError as e:
        fail(str(e))
