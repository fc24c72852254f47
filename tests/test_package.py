"""Importing the library leaves the process environment alone; the CLI package quiets TF's
C++ logging (unless the user set TF_CPP_MIN_LOG_LEVEL); the tools import TensorFlow only once
their own checks have passed (a refused command exits at once), and ``start_tensorflow`` turns
Grappler off only when INTERNET_TF_GRAPPLER=0. One fresh process checks it all: the CLI
package's import-time setting is re-run with ``importlib.reload``, and the Grappler switch is
applied under each environment in the order that lets every case be seen (once set, it stays
set)."""
import os
import subprocess
import sys

CODE = """
import importlib, os, sys
env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "INTERNET_TF_GRAPPLER")}
os.environ.clear(); os.environ.update(env)
import internet_tf.config, internet_tf.run_dir
assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ, "the library changed os.environ"
import internet_tf.cli
from internet_tf.cli import convert, evaluate, feature_norms, mechanism, train
assert "tensorflow" not in sys.modules, "a tool imported TensorFlow before its own checks"
assert internet_tf.run_dir.latest_checkpoint("nowhere") is None
assert "tensorflow" not in sys.modules, "TensorFlow imported to find no checkpoint"
import internet_tf.data.datasets  # internet-train reads and checks the data before TF starts
assert "tensorflow" not in sys.modules, "TensorFlow imported to load the datasets"
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
importlib.reload(internet_tf.cli)
assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0", "the user's own setting was overridden"

def grappler_off():
    tf = internet_tf.cli.start_tensorflow()
    return bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer"))

assert not grappler_off(), "Grappler off without INTERNET_TF_GRAPPLER"
os.environ["INTERNET_TF_GRAPPLER"] = "1"
assert not grappler_off(), "Grappler off with INTERNET_TF_GRAPPLER=1"
os.environ["INTERNET_TF_GRAPPLER"] = "0"
assert grappler_off(), "Grappler still on with INTERNET_TF_GRAPPLER=0"
os.environ.pop("TF_CPP_MIN_LOG_LEVEL")
import tensorflow as tf
import internet_tf.assembly.factory, internet_tf.training.trainer
assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ, "the library changed os.environ"
from internet_tf.training.distribute import split_cpu
split_cpu(2)  # still possible: starting TensorFlow ran no op
assert len(tf.config.list_logical_devices("CPU")) == 2
print("ok")
"""


def test_library_leaves_environ_tools_import_tf_late_and_grappler_switch():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
