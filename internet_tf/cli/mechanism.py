"""``internet-mechanism --model_dir DIR``: the paper's Fig. 1 mechanism check on a checkpoint.

Restores the latest checkpoint of DIR, takes the predictor features
(``Detector.predictor_features``) of every ground-truth box of the validation split, and
writes to ``--out`` (default ``DIR/mechanism``):

* ``mechanism.json``: ``evaluation.mechanism.feature_separation`` of the small and large
  boxes (COCO sizes, original image pixels), the checkpoint, the number of images and the
  class names;
* ``tsne.png`` (unless ``--notsne``): a t-SNE of those features (needs scikit-learn and
  matplotlib).

Prints ``small-to-own-class-large-centroid / small-to-other-class distance ratio: R ...``.
"""
from __future__ import annotations

import os

from absl import flags

from internet_tf.cli import start_tensorflow
from internet_tf.cli.common import (define_config_flags, fail, latest_checkpoint, run_tool,
                                    run_with_config)
from internet_tf.files import write_json_atomic

define_config_flags()
if "out" not in flags.FLAGS:  # internet-predict defines one too
    flags.DEFINE_string("out", None, "Output folder (default: <model_dir>/mechanism).")
if "max_images" not in flags.FLAGS:  # internet-eval defines one too, with the same meaning
    flags.DEFINE_integer("max_images", None, "Use at most this many validation images (default: all).",
                         lower_bound=1)
flags.DEFINE_boolean("tsne", True, "Also draw tsne.png (--notsne to skip; needs scikit-learn).")
FLAGS = flags.FLAGS


def summary_line(result: dict) -> str:
    return (f"small-to-own-class-large-centroid / small-to-other-class distance ratio: "
            f"{result['ratio']:.3f} (lower is better; {result['num_small']} small, "
            f"{result['num_large']} large features, {len(result['classes'])} classes)")


def mechanism_check(cfg, model_dir: str, out_dir: str, *, max_images=None,
                    tsne: bool = True) -> dict:
    """Writes ``out_dir/mechanism.json`` (and ``tsne.png``); returns the json's dict."""
    from internet_tf.evaluation import mechanism  # deferred: numpy and plotting only when the tool runs

    if tsne:
        try:
            mechanism.require_tsne()
        except ImportError as e:
            fail(f"{e}; or run with --notsne")
    latest = latest_checkpoint(model_dir)
    start_tensorflow()
    # deferred: these import TensorFlow, which starts only once the checks above passed
    from internet_tf.data.datasets import eval_dataset, load_datasets
    from internet_tf.assembly.factory import restore_model

    bundle = load_datasets(cfg, train=False)
    model = restore_model(cfg.model, bundle.num_classes, latest)
    extracted = mechanism.extract_features(model, eval_dataset(bundle, cfg), max_images=max_images)
    is_small, is_large = mechanism.size_masks(extracted.areas)
    try:
        result = mechanism.feature_separation(extracted.features, extracted.labels,
                                              is_small, is_large)
    except ValueError as e:
        fail(f"{e}; validation images read: {extracted.num_images}")
    result.update(checkpoint=latest, num_images=extracted.num_images,
                  class_names={c: bundle.class_names[c] for c in result["classes"]})
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(os.path.join(out_dir, "mechanism.json"), result, indent=1)
    if tsne:
        mechanism.tsne_plot(extracted.features, extracted.labels, is_small, is_large,
                            bundle.class_names, os.path.join(out_dir, "tsne.png"), seed=cfg.seed)
    print(summary_line(result))
    print(f"checkpoint {latest}, {extracted.num_images} images; written to {out_dir}")
    return result


def main(argv):
    del argv
    out = FLAGS.out or os.path.join(FLAGS.model_dir, "mechanism")
    run_with_config(lambda cfg: mechanism_check(cfg, FLAGS.model_dir, out,
                                                max_images=FLAGS.max_images, tsne=FLAGS.tsne))


def run():
    run_tool(main, __name__)


if __name__ == "__main__":
    run()
