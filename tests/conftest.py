"""Test-suite setup: quiet TensorFlow's C++ logging; ``tests/`` is importable (reference.py)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
