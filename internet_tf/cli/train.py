"""``internet-train --config FILE --model_dir DIR [--override key=value ...]`` (SPEC §5).

Rerunning the same command resumes from the last checkpoint. Training ends with a COCO
evaluation written to ``DIR/eval/``.
"""
from __future__ import annotations

from absl import app, flags

from internet_tf.cli.common import define_config_flags, fail, load_flags_config
from internet_tf.data.coco import DatasetError
from internet_tf.modeling.backbone import BackboneWeightsError
from internet_tf.training.run import train_and_evaluate

define_config_flags()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = load_flags_config()
    try:
        train_and_evaluate(cfg, FLAGS.model_dir)
    except (DatasetError, BackboneWeightsError) as e:
        fail(str(e))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
