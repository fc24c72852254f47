"""``internet-predict --export_dir OUT --images A.jpg [B.png ...] --out DIR``.

Runs an exported SavedModel (``internet-export``) on image files and writes, per image,
``<name>.json`` (detections: box as ymin/xmin/ymax/xmax in the image's pixels, score,
category id and name) and ``<name>.png`` with the labelled boxes drawn.
"""
from __future__ import annotations

from absl import app, flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import run_tool

flags.DEFINE_string("export_dir", None, "SavedModel written by internet-export.")
flags.DEFINE_multi_string("images", [], "Image files (repeat the flag or give several).")
flags.DEFINE_string("out", None, "Output folder for the JSON and PNG files.")
flags.DEFINE_float("min_score", 0.5, "Draw boxes with at least this score (the JSON keeps all).")
flags.mark_flags_as_required(["export_dir", "out"])
FLAGS = flags.FLAGS


def main(argv):
    images = list(FLAGS.images) + list(argv[1:])
    if not images:
        raise app.UsageError("give at least one image with --images")
    start_tensorflow()
    # deferred: imports TensorFlow, which starts only once the flags are checked
    from internet_tf.export.predict import predict

    predict(FLAGS.export_dir, images, FLAGS.out, FLAGS.min_score)


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
