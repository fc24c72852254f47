"""``make demo``: train on the embedded dataset, evaluate, print the COCO metrics, export a
SavedModel and draw its predictions on a few validation images.

Equivalent to ``internet-train --config configs/demo.yaml --model_dir runs/demo``.
"""
from __future__ import annotations

import os
import time

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import define_config_flags, fail, load_flags_config, run_tool

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
    start_tensorflow()
    # deferred: these import TensorFlow, which starts only once the flags and config are checked
    from internet_tf.data.coco import DatasetError
    from internet_tf.data.datasets import load_datasets
    from internet_tf.export.predict import predict
    from internet_tf.assembly.export import export_checkpoint
    from internet_tf.assembly.train import train_and_evaluate

    start = time.time()
    try:
        metrics = train_and_evaluate(cfg, model_dir)
    except DatasetError as e:
        fail(str(e))
    export_dir = os.path.join(model_dir, "export")
    export_checkpoint(cfg, model_dir, export_dir)
    val = load_datasets(cfg, train=False).val.records[:NUM_PICTURES]
    pictures = os.path.join(model_dir, "predictions")
    predict(export_dir, [r["path"] for r in val], pictures)
    minutes = (time.time() - start) / 60
    print(f"\nDemo finished in {minutes:.1f} min. AP50 on the embedded validation split: "
          f"{metrics.get('AP50', float('nan')):.3f}")
    print(f"  metrics:     {os.path.join(model_dir, 'eval', 'metrics.json')}")
    print(f"  detections:  {os.path.join(model_dir, 'eval', 'detections.json')}")
    print(f"  checkpoints: {os.path.join(model_dir, 'checkpoints')}")
    print(f"  TensorBoard: tensorboard --logdir {model_dir}")
    print(f"  SavedModel:  {export_dir}")
    print(f"  pictures:    {pictures}/*.png (and one .json of detections per image)")


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
