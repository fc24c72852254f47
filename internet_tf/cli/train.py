"""``internet-train --config FILE --model_dir DIR [--override key=value ...]
[--strategy auto|default|mirrored|multi_worker]``.

Rerunning the same command resumes from the last checkpoint. Training ends with a COCO
evaluation written to ``DIR/eval/`` (by the chief). ``--strategy multi_worker`` reads the
cluster from ``TF_CONFIG``; every worker runs the same command with its own task index.
"""
from __future__ import annotations

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import define_config_flags, fail, load_flags_config, run_tool
from internet_tf.config import ConfigError
from internet_tf.progress import Phase
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
    from internet_tf.training.init_from import InitFromError, locate

    try:  # the data and train.init_from are checked before TensorFlow starts (no TF needed)
        if cfg.train.init_from:
            locate(cfg.train.init_from)
        data = load_datasets(cfg)
    except (DatasetError, ConfigError, InitFromError) as e:
        fail(str(e))
    with Phase("starting TensorFlow"):  # the import and the library's TF modules take a while
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
    except (DatasetError, BackboneWeightsError, ConfigError, InitFromError, distribute.StrategyError) as e:
        fail(str(e))


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
