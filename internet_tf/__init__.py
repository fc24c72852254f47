"""InterNet-TF: Feature Intertwiner (ICLR 2019) on Faster R-CNN + FPN, TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
