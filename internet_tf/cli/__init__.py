"""The command-line tools (``internet-train``, ``internet-eval``, ...; setup.py entry points).

Every tool imports this package before TensorFlow: TF's C++ INFO/WARNING lines (oneDNN
notices, grappler cost-model chatter) drown the progress bar, so they are off unless you set
TF_CPP_MIN_LOG_LEVEL yourself; errors still show. Importing the library does not do this.

``INTERNET_TF_GRAPPLER=0`` runs the tools' graphs as traced, without TensorFlow's graph
optimizer (Grappler): to rule it out when a result looks wrong, and for the test suite, whose
small graphs spend most of their first call in its rewrite. Unset (or any other value), the
tools run optimised graphs as usual.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("INTERNET_TF_GRAPPLER") == "0":
    import tensorflow as tf  # before any op: this only sets the context's options

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
