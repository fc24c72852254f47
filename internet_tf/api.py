"""The Python API: load a config, train, evaluate, export, and run an exported detector.

A thin layer over the functions the command-line tools call (``assembly/train.py``,
``evaluation/runner.py``, ``assembly/export.py``), importable from the package top level
(``import internet_tf as it; it.train(...)``). Exporting is ``export_run``: the package's
``internet_tf.export`` is its export subpackage. Importing it does not import TensorFlow; each
function imports it when called.

Example::

    import internet_tf as it

    cfg = it.load_config("configs/demo.yaml", ["train.steps=200"])
    result = it.train(cfg, "runs/mine")
    metrics = it.evaluate("runs/mine")
    it.export_run("runs/mine", "runs/mine/export")
    detector = it.load_detector("runs/mine/export")
    for found in detector(["a.jpg", "b.png"]):
        print(found.class_names, found.scores)
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Union

from internet_tf.config import Config
from internet_tf.config import load_config as _load_config

__all__ = ["Detections", "Detector", "TrainResult", "evaluate", "export_run", "load_config",
           "load_detector", "train"]


def load_config(path: Optional[str] = None, overrides: Optional[Sequence[str]] = None) -> Config:
    """Loads and validates a config.

    Args:
      path: a YAML config file (see ``configs/``; a file may start from another with
        ``base:``). None starts from the defaults (``docs/configuration.md``).
      overrides: ``key=value`` strings applied after the file, e.g. ``["train.steps=100"]``;
        the value is read as YAML.

    Returns:
      The validated ``Config``. Raises ``ConfigError`` naming the key for an unknown key or a
      bad value.
    """
    return _load_config(path, list(overrides or []))


def _config(config: Union[Config, str, None]) -> Optional[Config]:
    return load_config(config) if isinstance(config, str) else config


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
      run_dir: the run directory (config.yaml, labels.json, checkpoints/, train/, eval/).
      metrics: the final evaluation's metrics (COCO: ``AP``, ``AP50``, ...; VOC: ``mAP``, ...);
        empty when ``train.evaluate_at_end`` is false or on a worker other than the chief.
    """
    run_dir: str
    metrics: dict


def train(config: Union[Config, str], run_dir: str, *, strategy: str = "auto") -> TrainResult:
    """Trains a detector to ``train.steps``, then evaluates it, as ``internet-train`` does.

    Calling it again with the same ``run_dir`` resumes from the run's last checkpoint.

    Args:
      config: a ``Config`` (``load_config``) or the path of a YAML config file.
      run_dir: where the checkpoints, logs and evaluation go.
      strategy: ``auto`` (all visible GPUs when there are several, else one device),
        ``default``, ``mirrored`` or ``multi_worker`` (the cluster from ``TF_CONFIG``).

    Returns:
      A ``TrainResult`` with the run directory and the final metrics.
    """
    from internet_tf.cli import start_tensorflow
    from internet_tf.data.datasets import load_datasets

    cfg = _config(config)
    data = load_datasets(cfg)  # a dataset error is raised before TensorFlow starts
    start_tensorflow()
    from internet_tf.training import distribute
    from internet_tf.assembly.train import train_and_evaluate

    metrics = train_and_evaluate(cfg, run_dir, distribute.make_strategy(strategy), data=data)
    return TrainResult(run_dir=run_dir, metrics=metrics)


def evaluate(run_dir: str, config: Union[Config, str, None] = None) -> dict:
    """Evaluates the latest checkpoint of a run on its validation split.

    Args:
      run_dir: a directory written by ``train`` or ``internet-train``.
      config: the config to evaluate with (e.g. another validation set); None uses the
        run's own ``config.yaml``.

    Returns:
      The metrics dict (COCO or VOC, by the dataset's kind), also written to
      ``run_dir/eval/metrics.json`` with the detections next to it.
    """
    from internet_tf.cli import start_tensorflow
    from internet_tf.run_dir import read_run

    run = read_run(run_dir, _config(config))
    start_tensorflow()
    from internet_tf.data.datasets import load_datasets
    from internet_tf.evaluation.runner import evaluate_model
    from internet_tf.assembly.factory import restore_model
    from internet_tf.graph.policy import policy_scope

    bundle = load_datasets(run.cfg, train=False)
    with policy_scope(run.cfg.train.mixed_precision):
        model = restore_model(run.cfg.model, bundle.num_classes, run.checkpoint)
    step = int(run.checkpoint.rsplit("-", 1)[-1])
    return evaluate_model(model, bundle, run.cfg, os.path.join(run_dir, "eval"), step=step)


def export_run(run_dir: str, export_dir: Optional[str] = None,
               config: Union[Config, str, None] = None) -> str:
    """Exports the latest checkpoint of a run as a SavedModel (pre- and post-processing in
    the graph, ``labels.json`` next to it).

    Args:
      run_dir: a directory written by ``train`` or ``internet-train``.
      export_dir: where to write the SavedModel; None writes ``run_dir/export``.
      config: None uses the run's own ``config.yaml``.

    Returns:
      The export directory.
    """
    from internet_tf.cli import start_tensorflow
    from internet_tf.run_dir import read_run

    cfg = read_run(run_dir, _config(config)).cfg  # a RunDirError before TensorFlow starts
    export_dir = export_dir or os.path.join(run_dir, "export")
    start_tensorflow()
    from internet_tf.assembly.export import export_checkpoint

    export_checkpoint(cfg, run_dir, export_dir)
    return export_dir


@dataclasses.dataclass
class Detections:
    """One image's detections, best first.

    Attributes:
      boxes: float32 ``[N, 4]``, (ymin, xmin, ymax, xmax) in the image's own pixels.
      scores: float32 ``[N]``.
      class_ids: int64 ``[N]``, the dataset's category ids.
      class_names: ``N`` names from the export's ``labels.json``.
    """
    boxes: "np.ndarray"  # noqa: F821
    scores: "np.ndarray"  # noqa: F821
    class_ids: "np.ndarray"  # noqa: F821
    class_names: list


def _pixels(image):
    """uint8 ``[H, W, 3]`` from a path (EXIF orientation applied), a PIL image or an array."""
    import numpy as np
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        from internet_tf.data.orientation import open_oriented

        image = open_oriented(os.fspath(image))
    if isinstance(image, Image.Image):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"an image must be uint8 [height, width, 3] (or [height, width]); got "
                         f"{pixels.dtype} {list(pixels.shape)}")
    return pixels


class Detector:
    """An exported detector as a callable: ``detector(images) -> [Detections, ...]``.

    Made by ``load_detector``; it holds the SavedModel's ``serving_default`` signature and the
    export's class names.
    """

    def __init__(self, export_dir: str):
        from internet_tf.cli import start_tensorflow
        from internet_tf.export.predict import load_labels

        tf = start_tensorflow()
        self.export_dir = export_dir
        self._serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        self.class_names = load_labels(export_dir)  # category id -> name

    def __call__(self, images: Sequence, min_score: float = 0.0) -> list:
        """Runs the detector on each image (any sizes; one call per image).

        Args:
          images: a list of image file paths, PIL images or uint8 arrays ``[H, W, 3]``
            (``[H, W]`` grey is repeated to three channels).
          min_score: drop detections scoring below this.

        Returns:
          One ``Detections`` per image, in order.
        """
        import numpy as np
        import tensorflow as tf

        found = []
        for image in images:
            out = self._serve(images=tf.constant(_pixels(image)[None], tf.uint8))
            n = int(out["num_detections"][0])
            scores = out["detection_scores"][0, :n].numpy()
            keep = scores >= min_score
            ids = out["detection_classes"][0, :n].numpy().astype(np.int64)[keep]
            found.append(Detections(boxes=out["detection_boxes"][0, :n].numpy()[keep],
                                    scores=scores[keep], class_ids=ids,
                                    class_names=[self.class_names.get(int(c), str(c)) for c in ids]))
        return found


def load_detector(export_dir: str) -> Detector:
    """Loads a SavedModel written by ``export_run`` or ``internet-export``.

    Args:
      export_dir: the export directory.

    Returns:
      A ``Detector``: call it on a list of images to get one ``Detections`` per image.
    """
    return Detector(export_dir)
