"""The command-line tools (``internet-train``, ``internet-eval``, ...; setup.py entry points).

Every tool imports this package before TensorFlow: TF's C++ INFO/WARNING lines (oneDNN
notices, grappler cost-model chatter) drown the progress bar, so they are off unless you set
TF_CPP_MIN_LOG_LEVEL yourself; errors still show. Importing the library does not do this.

``INTERNET_TF_GRAPPLER=0`` runs the tools' graphs as traced, without TensorFlow's graph
optimizer (Grappler): to rule it out when a result looks wrong, and for the test suite, whose
small graphs spend most of their first call in its rewrite. Unset (or any other value), the
tools run optimised graphs as usual. ``start_tensorflow`` applies it; each tool calls it once
its own checks (flags, config, run folder) have passed and before its first TensorFlow op, so
a refused command exits with its message without the seconds that importing TF takes.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def start_tensorflow():
    """Imports TensorFlow with ``INTERNET_TF_GRAPPLER`` applied; returns the module."""
    import tensorflow as tf

    if os.environ.get("INTERNET_TF_GRAPPLER") == "0":  # only sets the context's options
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    return tf
