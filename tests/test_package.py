"""Importing the library leaves the process environment alone; the CLI package quiets TF's
C++ logging (unless the user set TF_CPP_MIN_LOG_LEVEL)."""
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
