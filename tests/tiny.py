"""tests/tiny.yaml, the tiny model and data every test builds or trains, loaded in one place.

``config(*overrides)`` is tests/tiny.yaml with ``key=value`` overrides (``PATH`` is the file,
for ``--config`` on a command line); ``overrides(prefix)`` gives the file's own settings (not
its base's) as ``key=value`` overrides, to put the tiny sizes on top of another config file.
"""
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
