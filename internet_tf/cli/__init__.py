"""The command-line tools (``internet-train``, ``internet-eval``, ...; setup.py entry points).

Every tool imports this package before TensorFlow: TF's C++ INFO/WARNING lines (oneDNN
notices, grappler cost-model chatter) drown the progress bar, so they are off unless you set
TF_CPP_MIN_LOG_LEVEL yourself; errors still show. Importing the library does not do this.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
