"""InterNet-TF: Feature Intertwiner (ICLR 2019) on Faster R-CNN + FPN, TensorFlow 2 / Keras 3.

The Python API (``internet_tf/api.py``) is reachable from here: ``load_config``, ``train``,
``evaluate``, ``export_run``, ``load_detector`` and their result types. It is imported on first
use, and TensorFlow only when a function that needs it runs.
"""

__version__ = "0.1.0"

_API = ("Detections", "Detector", "TrainResult", "evaluate", "export_run", "load_config",
        "load_detector", "train")
__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        from internet_tf import api

        return getattr(api, name)
    raise AttributeError(f"module 'internet_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
