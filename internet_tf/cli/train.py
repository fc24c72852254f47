"""``internet-train --config FILE --model_dir DIR [--override key=value ...]
[--strategy auto|default|mirrored|multi_worker]`` (SPEC §5).

Rerunning the same command resumes from the last checkpoint. Training ends with a COCO
evaluation written to ``DIR/eval/`` (by the chief). ``--strategy multi_worker`` reads the
cluster from ``TF_CONFIG``; every worker runs the same command with its own task index.
"""
from __future__ import annotations

from absl import app, flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import define_config_flags, fail, load_flags_config
from internet_tf.config import ConfigError
from internet_tf.training.strategy_names import STRATEGIES

define_config_flags()
flags.DEFINE_enum("strategy", "auto", list(STRATEGIES),
                  "auto: MirroredStrategy when more than one GPU is visible, else one device; "
                  "multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG.")
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (to try "
                     "--strategy mirrored without GPUs); 0 leaves it whole.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = load_flags_config()
    # deferred: pycocotools loads only once the flags and config are checked
    from internet_tf.data.coco import DatasetError
    from internet_tf.data.datasets import load_datasets

    try:  # the data is read and checked before TensorFlow starts (no TF needed)
        data = load_datasets(cfg)
    except (DatasetError, ConfigError) as e:
        fail(str(e))
    start_tensorflow()
    # deferred: these import TensorFlow, which starts only once the data is checked
    from internet_tf.modeling.backbone import BackboneWeightsError
    from internet_tf.training import distribute
    from internet_tf.assembly.train import train_and_evaluate

    try:
        if FLAGS.cpu_devices:
            distribute.split_cpu(FLAGS.cpu_devices)
        strategy = distribute.make_strategy(FLAGS.strategy)
        train_and_evaluate(cfg, FLAGS.model_dir, strategy, data=data)
    except (DatasetError, BackboneWeightsError, ConfigError, distribute.StrategyError) as e:
        fail(str(e))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
