"""``internet-feature-norms --baseline_dir A --labelenc_dir B``: LabelEnc's feature-norm
pictures (Hao et al. 2020, appendix Fig. 1).

Restores the latest checkpoint of both runs (each with the ``config.yaml`` it was trained
with; B must be a LabelEnc run, step 1 or 2, whose h gives h(y)) and, for the first
``--num_images`` validation images of B's dataset, writes ``OUT/feature_norms_<i>.png``: one
row of (image | baseline P3 norm | LabelEnc P3 norm | h(y) P3 norm), each norm map scaled to
its own range; the same rows go to TensorBoard (``OUT``, image ``feature_norms/P<level>``).
OUT defaults to ``B/feature_norms``.
"""
from __future__ import annotations

import os

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import fail, run_tool

flags.DEFINE_string("baseline_dir", None, "Model dir of the baseline run.")
flags.DEFINE_string("labelenc_dir", None, "Model dir of the LabelEnc run (step 1 or 2).")
flags.DEFINE_string("norms_out", None, "Output folder (default: <labelenc_dir>/feature_norms).")
flags.DEFINE_integer("num_images", 4, "Validation images to draw.", lower_bound=1)
flags.DEFINE_integer("level", 3, "FPN level whose norms are drawn.", lower_bound=2, upper_bound=6)
flags.mark_flags_as_required(["baseline_dir", "labelenc_dir"])
FLAGS = flags.FLAGS


def _read(model_dir: str):
    from internet_tf.run_dir import RunDirError, read_run  # deferred: tools start fast

    try:
        return read_run(model_dir)
    except RunDirError as e:
        fail(f"{e}; was it written by internet-train?")


def feature_norm_pictures(baseline_dir: str, labelenc_dir: str, out_dir: str, num_images: int = 4,
                          level: int = 3) -> list:
    """Writes the PNG rows and the TensorBoard images; returns the PNG paths."""
    import numpy as np

    tf = start_tensorflow()
    # deferred: these import TensorFlow, which starts only once the checks above passed
    from internet_tf.data.datasets import eval_dataset, load_datasets
    from internet_tf.evaluation.feature_norms import norm_maps, png_bytes, row_image
    from internet_tf.files import write_atomic
    from internet_tf.assembly.factory import restore_model

    run, base = _read(labelenc_dir), _read(baseline_dir)
    cfg = run.cfg
    if not cfg.model.labelenc.enabled:
        fail(f"{labelenc_dir} is not a LabelEnc run (model.labelenc.enabled is false)")
    if base.num_classes != run.num_classes:
        fail(f"{baseline_dir} was trained with {base.num_classes} classes, {labelenc_dir} with {run.num_classes}")
    if base.cfg.model.image_size != cfg.model.image_size:
        fail(f"{baseline_dir} has image_size {base.cfg.model.image_size}, {labelenc_dir} {cfg.model.image_size}")
    labelenc_model = restore_model(cfg.model, run.num_classes, run.checkpoint)
    baseline = restore_model(base.cfg.model, base.num_classes, base.checkpoint)
    bundle = load_datasets(cfg, train=False)
    os.makedirs(out_dir, exist_ok=True)
    paths, rows = [], []
    for batch in eval_dataset(bundle, cfg):
        maps = norm_maps(baseline, labelenc_model, batch, level)
        for i in range(int(batch["images"].shape[0])):
            if len(rows) == num_images:
                break
            rows.append(row_image(batch["images"][i].numpy(), maps, i))
            path = os.path.join(out_dir, f"feature_norms_{len(rows) - 1}.png")
            paths.append(write_atomic(path, png_bytes(rows[-1])))
        if len(rows) == num_images:
            break
    with tf.summary.create_file_writer(out_dir).as_default():
        tf.summary.image(f"feature_norms/P{level}", np.stack(rows), step=0, max_outputs=len(rows))
    print(f"wrote {len(paths)} feature-norm rows (image | baseline | LabelEnc | h(y), P{level}) to {out_dir}")
    return paths


def main(argv):
    del argv
    from internet_tf.data.coco import DatasetError  # deferred: pycocotools only when the tool runs

    out = FLAGS.norms_out or os.path.join(FLAGS.labelenc_dir, "feature_norms")
    try:
        feature_norm_pictures(FLAGS.baseline_dir, FLAGS.labelenc_dir, out, FLAGS.num_images, FLAGS.level)
    except DatasetError as e:
        fail(str(e))


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
