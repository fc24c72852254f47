"""Importing the library leaves the process environment alone; the CLI package quiets TF's
C++ logging (unless the user set TF_CPP_MIN_LOG_LEVEL) and turns Grappler off only when
INTERNET_TF_GRAPPLER=0."""
import os
import subprocess
import sys

CODE = """
import os
env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
os.environ.clear(); os.environ.update(env)
import internet_tf.modeling.factory
assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ, "the library changed os.environ"
import internet_tf.cli
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
import importlib; importlib.reload(internet_tf.cli)
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0", "the user's own setting was overridden"
print("ok")
"""


def test_library_import_leaves_environ_and_cli_sets_a_default_only():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


GRAPPLER = """
import tensorflow as tf
import internet_tf.cli
from internet_tf.training.distribute import split_cpu
split_cpu(2)  # still possible: the CLI package ran no op
print(bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer")),
      len(tf.config.list_logical_devices("CPU")))
"""


def test_cli_turns_grappler_off_only_when_asked():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for value, expected in (("0", "True 2"), ("1", "False 2"), (None, "False 2")):
        env = {k: v for k, v in os.environ.items() if k != "INTERNET_TF_GRAPPLER"}
        if value is not None:
            env["INTERNET_TF_GRAPPLER"] = value
        proc = subprocess.run([sys.executable, "-c", GRAPPLER], capture_output=True, text=True, timeout=300,
                              cwd=root, env=env)
        assert proc.returncode == 0 and proc.stdout.split("\n")[-2] == expected, (value, proc.stdout, proc.stderr[-2000:])
