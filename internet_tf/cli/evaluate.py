"""``internet-eval --config FILE --model_dir DIR [--max_images N]``: evaluation of the latest
checkpoint (COCO metrics, or the VOC metric of Li et al. 2019, Table 5).

It evaluates the whole validation split unless told otherwise: ``--max_images N`` (or
``--override eval.max_images=N``) evaluates the first N images. A run's saved ``eval.max_images``
(a quick check during training) is not taken over. The first line says what is evaluated:
the checkpoint's step, the split and how many of its images.

The metrics follow the dataset's kind with no flag (``evaluation/runner.py``): COCOeval for a
COCO-format dataset, the VOC metrics (mAP, mAP_07, per-class AP) for one read as PASCAL VOC
(``data.dataset: voc`` or ``data.embedded.format: voc``). Writes ``DIR/eval/metrics.json`` and
``DIR/eval/detections.json``, for VOC also ``DIR/eval/voc_results/comp4_det_test_<class>.txt``.
"""
from __future__ import annotations

import os

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import (define_config_flags, latest_checkpoint, run_tool,
                                    run_with_config)
from internet_tf.config import copy_config, parse_override
from internet_tf.data.datasets import val_source
from internet_tf.progress import Phase

define_config_flags()
if "max_images" not in flags.FLAGS:  # internet-mechanism defines one too, with the same meaning
    flags.DEFINE_integer("max_images", None, "Evaluate the first N validation images (default: "
                         "all, whatever eval.max_images the run was trained with).", lower_bound=1)
FLAGS = flags.FLAGS
_KEY = "eval.max_images"


def images_limit(overrides, max_images):
    """The ``eval.max_images`` an evaluation runs with: ``--max_images``, else an override of
    ``eval.max_images`` (``None`` when it names no limit), else None (every image)."""
    if max_images is not None:
        return max_images
    given = [text.split("=", 1)[1] for text in overrides
             if "=" in text and text.split("=", 1)[0].strip() == _KEY]
    return parse_override(f"{_KEY}={given[-1]}")["eval"]["max_images"] if given else None


def evaluate_checkpoint(cfg, model_dir: str, max_images=None) -> dict:
    """Evaluates ``model_dir``'s latest checkpoint on the first ``max_images`` validation
    images (None: all; ``cfg.eval.max_images`` is replaced by it)."""
    latest = latest_checkpoint(model_dir)
    cfg = copy_config(cfg, [f"{_KEY}={'null' if max_images is None else max_images}"])
    step = int(latest.rsplit("-", 1)[-1])
    images = f"the first {max_images} images" if max_images else "every image"
    print(f"Evaluating checkpoint step {step} ({latest}) on {images} of the validation split "
          f"({val_source(cfg)})", flush=True)
    with Phase("starting TensorFlow"):
        tf = start_tensorflow()
        # deferred: these import TensorFlow, which starts only once the run folder is checked
        from internet_tf.data.datasets import load_datasets
        from internet_tf.evaluation.runner import evaluate_model, images_to_evaluate, metrics_text
        from internet_tf.assembly.factory import restore_model
        from internet_tf.graph.policy import policy_scope

    bundle = load_datasets(cfg, train=False)
    with Phase(f"restoring the detector from {latest}"), policy_scope(cfg.train.mixed_precision):
        model = restore_model(cfg.model, bundle.num_classes, latest)  # as internet-train's evaluation
    out = os.path.join(model_dir, "eval")
    metrics = evaluate_model(model, bundle, cfg, out, step=step,
                             summary_writer=tf.summary.create_file_writer(out))
    name, table = metrics_text(metrics)
    print(f"{name} metrics of {latest} on {images_to_evaluate(bundle, cfg)} of the "
          f"{len(bundle.val)} validation images (written to {out}):")
    print(table)
    return metrics


def main(argv):
    del argv
    # (the overrides are checked with the config before they are read here)
    run_with_config(lambda cfg: evaluate_checkpoint(
        cfg, FLAGS.model_dir, images_limit(FLAGS.override, FLAGS.max_images)))


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
