"""``make demo``: train on the embedded dataset, evaluate, print the COCO metrics, export a
SavedModel and draw its predictions on a few validation images.

Equivalent to ``internet-train --config configs/demo.yaml --model_dir runs/demo``.
"""
from __future__ import annotations

import os
import time

from absl import app, flags

from internet_tf.cli.common import define_config_flags, fail, load_flags_config
from internet_tf.data.coco import DatasetError
from internet_tf.data.datasets import dataset_paths
from internet_tf.export.predict import predict
from internet_tf.export.saved_model import export_checkpoint
from internet_tf.training.run import train_and_evaluate

define_config_flags(model_dir_required=False)
FLAGS = flags.FLAGS
NUM_PICTURES = 4
DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "demo.yaml")


def main(argv):
    del argv
    if FLAGS.config is None:
        FLAGS.config = os.path.normpath(DEFAULT_CONFIG)
    model_dir = FLAGS.model_dir or "runs/demo"
    cfg = load_flags_config()
    start = time.time()
    try:
        metrics = train_and_evaluate(cfg, model_dir)
    except DatasetError as e:
        fail(str(e))
    export_dir = os.path.join(model_dir, "export")
    export_checkpoint(cfg, model_dir, export_dir)
    val = load_coco_paths(cfg)
    pictures = os.path.join(model_dir, "predictions")
    predict(export_dir, val[:NUM_PICTURES], pictures)
    minutes = (time.time() - start) / 60
    print(f"\nDemo finished in {minutes:.1f} min. AP50 on the embedded validation split: "
          f"{metrics.get('AP50', float('nan')):.3f}")
    print(f"  metrics:     {os.path.join(model_dir, 'eval', 'metrics.json')}")
    print(f"  detections:  {os.path.join(model_dir, 'eval', 'detections.json')}")
    print(f"  checkpoints: {os.path.join(model_dir, 'checkpoints')}")
    print(f"  TensorBoard: tensorboard --logdir {model_dir}")
    print(f"  SavedModel:  {export_dir}")
    print(f"  pictures:    {pictures}/*.png (and one .json of detections per image)")


def load_coco_paths(cfg) -> list:
    """Image paths of the validation split, in file order."""
    import json

    paths = dataset_paths(cfg)
    with open(paths["val_annotations"]) as f:
        images = json.load(f)["images"]
    return [os.path.join(paths["val_images"], im["file_name"]) for im in images]


def run():
    app.run(main)


if __name__ == "__main__":
    run()
