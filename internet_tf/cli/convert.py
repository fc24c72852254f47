"""``internet-convert``: a COCO-format split to PASCAL VOC and back (Li et al. 2019, Table 5).

    internet-convert --to voc --annotations A.json --images DIR --out ROOT --split NAME [--prefix P]
    internet-convert --to coco --voc_roots R1,R2 --split NAME --out A.json [--classes found|voc]

The first writes ``ROOT/Annotations``, ``ROOT/JPEGImages`` and ``ROOT/ImageSets/Main/NAME.txt``;
the second a COCO json whose ``file_name`` entries are absolute image paths (use any
``--images`` / ``data.*_images`` folder with it). Conversion rules (box rounding, non-JPEG
images, skips): ``internet_tf/data/convert.py``. A bad input exits with its message (code 2).
"""
from __future__ import annotations

from absl import app, flags

from internet_tf.cli.common import fail, run_tool
from internet_tf.config import CHOICES

flags.DEFINE_enum("to", None, ["voc", "coco"], "Target format.")
flags.DEFINE_string("annotations", None, "--to voc: the COCO json to convert.")
flags.DEFINE_string("images", None, "--to voc: folder the json's file_name entries are relative to.")
flags.DEFINE_string("out", None, "--to voc: the VOC root to write; --to coco: the json file to write.")
flags.DEFINE_string("split", None, "The split name (ImageSets/Main/<split>.txt).")
flags.DEFINE_string("prefix", "", "--to voc: prefix for the written file names (keeps splits apart).")
flags.DEFINE_list("voc_roots", [], "--to coco: VOC root folders, comma separated.")
flags.DEFINE_enum("classes", "found", list(CHOICES["data.voc.classes"]),
                  "--to coco: 'found' (names in the XML, sorted) or 'voc' (the 20 VOC classes).")
flags.mark_flags_as_required(["to", "out", "split"])
FLAGS = flags.FLAGS


def main(argv):
    # deferred: --help and a refused flag answer before the converters (PIL, pycocotools) load
    from internet_tf.data import convert
    from internet_tf.data.coco import DatasetError

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        if FLAGS.to == "voc":
            if not FLAGS.annotations or not FLAGS.images:
                raise app.UsageError("--to voc needs --annotations and --images")
            print(convert.coco_to_voc(FLAGS.annotations, FLAGS.images, FLAGS.out, FLAGS.split,
                                      prefix=FLAGS.prefix).report())
        else:
            if not FLAGS.voc_roots:
                raise app.UsageError("--to coco needs --voc_roots")
            written = convert.voc_to_coco(FLAGS.voc_roots, FLAGS.split, FLAGS.out, classes=FLAGS.classes)
            print(f"Wrote {FLAGS.out}: {len(written.data['images'])} images, "
                  f"{len(written.data['annotations'])} boxes, {len(written.classes)} classes. "
                  f"Skipped: {convert.skip_text(written.skips)}.")
    except DatasetError as e:
        fail(str(e))


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
