"""InterNet-TF: Feature Intertwiner (ICLR 2019) on Faster R-CNN + FPN, TensorFlow 2 / Keras 3."""
import os

# TensorFlow's C++ INFO/WARNING lines (oneDNN notices, grappler cost-model chatter) drown the
# progress bar; errors still show. Set TF_CPP_MIN_LOG_LEVEL yourself to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
