"""Flags shared by the command-line tools (absl): --config, --override, --model_dir."""
from __future__ import annotations

import os
import re
import sys

from absl import app, flags, logging

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


def _one_line_flag_error(error: Exception) -> str:
    """absl's flag-parsing error as one line naming the flag."""
    message = " ".join(str(error).split())
    missing = re.search(r"Flag --(\w+) must have a value other than None", message)
    if missing:
        return f"missing required flag --{missing.group(1)}"
    return message


_HELP_FLAGS = {"--help", "-help", "-h", "-?", "--helpshort", "--helpfull", "--helpxml"}


def _parse_flags(argv):
    """absl's parser, with a bad or missing flag reported in one line (exit code 2) and a
    help request exiting with 0 (absl exits with 1 after printing it)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {_one_line_flag_error(e)} (--help lists the flags)", file=sys.stderr)
        sys.exit(2)
    except SystemExit as e:
        if e.code == 1 and _HELP_FLAGS & set(argv[1:]):
            sys.exit(0)
        raise


def run_tool(main, module_name: str):
    """Runs a tool's ``main`` under absl so that ``--help`` shows the tool's own flags.

    absl's ``--help`` lists the key flags of the module named by ``sys.argv[0]`` and prints
    ``__main__``'s docstring; for a console script both are the generated wrapper, so the tool's
    flags (its own module's and the shared ones defined here) are made key flags of
    ``sys.argv[0]`` and its docstring becomes the usage text.

    Args:
      main: the tool's ``main(argv)``.
      module_name: the tool module's ``__name__``.
    """
    by_module = FLAGS.flags_by_module_dict()
    for name in (module_name, __name__, sys.argv[0]):
        for flag in by_module.get(name, []):
            FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    wrapper = sys.modules["__main__"]
    tool = sys.modules.get(module_name)
    if not getattr(wrapper, "__doc__", None) and tool is not None and tool.__doc__:
        wrapper.__doc__ = tool.__doc__.replace("%", "%%")
    app.run(main, flags_parser=_parse_flags)
