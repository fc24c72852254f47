"""``internet-export --model_dir DIR --export_dir OUT [--config FILE]``: SavedModel of the
latest checkpoint with in-graph pre/post-processing."""
from __future__ import annotations

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import define_config_flags, fail, load_flags_config, run_tool
from internet_tf.progress import Phase

define_config_flags()
flags.DEFINE_string("export_dir", None, "Where to write the SavedModel.")
flags.mark_flag_as_required("export_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = load_flags_config()
    with Phase("starting TensorFlow"):
        start_tensorflow()
        # deferred: imports TensorFlow, which starts only once the flags and config are checked
        from internet_tf.assembly.export import ExportError, export_checkpoint

    try:
        with Phase(f"exporting to {FLAGS.export_dir} (tracing the serving signature)"):
            latest = export_checkpoint(cfg, FLAGS.model_dir, FLAGS.export_dir)
    except ExportError as e:
        fail(str(e))
    print(f"Exported {latest} to {FLAGS.export_dir} (serving_default: uint8 images -> detections)")


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
