"""Importing the library leaves the process environment alone; the CLI package quiets TF's
C++ logging (unless the user set TF_CPP_MIN_LOG_LEVEL) and turns Grappler off only when
INTERNET_TF_GRAPPLER=0. One fresh process checks it all: the CLI package's import-time
settings are re-run with ``importlib.reload`` under each environment, in the order that lets
every case be seen (the Grappler switch, once set, stays set)."""
import os
import subprocess
import sys

CODE = """
import importlib, os
env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "INTERNET_TF_GRAPPLER")}
os.environ.clear(); os.environ.update(env)
import tensorflow as tf
import internet_tf.modeling.factory
assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ, "the library changed os.environ"

def grappler_off():
    return bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer"))

import internet_tf.cli
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
importlib.reload(internet_tf.cli)
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0", "the user's own setting was overridden"
assert not grappler_off(), "Grappler off without INTERNET_TF_GRAPPLER"
os.environ["INTERNET_TF_GRAPPLER"] = "1"
importlib.reload(internet_tf.cli)
assert not grappler_off(), "Grappler off with INTERNET_TF_GRAPPLER=1"
os.environ["INTERNET_TF_GRAPPLER"] = "0"
importlib.reload(internet_tf.cli)
assert grappler_off(), "Grappler still on with INTERNET_TF_GRAPPLER=0"
from internet_tf.training.distribute import split_cpu
split_cpu(2)  # still possible: the CLI package ran no op
assert len(tf.config.list_logical_devices("CPU")) == 2
print("ok")
"""


def test_library_leaves_environ_and_cli_sets_defaults_and_grappler_switch():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
