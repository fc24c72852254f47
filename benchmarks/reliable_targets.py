"""What the OT module does to the intertwiner's targets: for trained InterNet runs with
the learned generator F (``reliable_source: generator``), the reliable source P_{m|l} = F_l(P_{l+1})
of each level l in {2, 3, 4} on validation images, against the detector's own P_l.

Per run and level it prints:
- ``dead``: the fraction of F_l's outputs that its ReLU zeroes;
- ``PR``: the participation ratio of F_l's channel covariance ((Σλ)² / Σλ², the number of
  channels its output effectively spans; at most the FPN width);
- ``sep F`` / ``sep P``: the class separation of the critic features of the ground-truth boxes
  cropped from F_l(P_{l+1}) (the class buffer's targets) and from P_l: the mean distance of a
  box's feature to its own class's centroid over its mean distance to the other classes'
  centroids (``evaluation/mechanism.py: feature_separation`` with every box in both roles;
  lower separates the classes better). The critic runs as on the reliable set in training
  (batch statistics, ``training=True``, its moving averages untouched).

    python benchmarks/reliable_targets.py --model_dirs runs/study/demo_colours/default/seed0,runs/study/demo_colours/default_no_ot/seed0
"""
from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from internet_tf.cli import start_tensorflow  # noqa: E402

FLAGS = flags.FLAGS


def participation_ratio(x) -> float:
    """(Σλ)² / Σλ² of the covariance of the rows of ``x`` [N, C]."""
    eig = np.clip(np.linalg.eigvalsh(np.cov(np.asarray(x, np.float64).T)), 0.0, None)
    return float(eig.sum() ** 2 / max(float((eig ** 2).sum()), 1e-30))


def separation(features, labels) -> float:
    from internet_tf.evaluation.mechanism import feature_separation

    # Every box in both roles: one copy of the set makes the centroids, the other is measured.
    first = np.arange(2 * len(labels)) < len(labels)
    return feature_separation(np.concatenate([features, features]), np.concatenate([labels, labels]),
                              is_small=~first, is_large=first)["ratio"]


def reliable_targets(model_dir: str, max_images: int) -> dict:
    """{level: {"dead", "PR", "sep F", "sep P"}} of one run (see the module docstring)."""
    import tensorflow as tf

    from internet_tf.data.datasets import eval_dataset, load_datasets
    from internet_tf.methods.intertwiner.sets import RELIABLE_LEVELS
    from internet_tf.assembly.factory import restore_model
    from internet_tf.ops.roi_align import crop_level
    from internet_tf.run_dir import read_run

    run = read_run(model_dir)
    cfg = run.cfg
    if not cfg.model.intertwiner.enabled or cfg.model.intertwiner.reliable_source != "generator":
        raise SystemExit(f"error: {model_dir} is not an InterNet run with reliable_source: generator")
    model = restore_model(cfg.model, run.num_classes, run.checkpoint)
    method = model.intertwiner
    roi = cfg.model.roi
    dead, pr = {l: [] for l in RELIABLE_LEVELS}, {l: [] for l in RELIABLE_LEVELS}
    feats = {(s, l): [] for s in ("F", "P") for l in RELIABLE_LEVELS}
    labels, seen = [], 0
    for batch in eval_dataset(load_datasets(cfg, train=False), cfg):
        pyramid = model.pyramid(tf.cast(batch["images"], tf.float32), training=False)
        upsampled = method.ot.upsampled(pyramid, training=False)
        classes = np.asarray(batch["gt_classes"])
        where = np.argwhere(classes > 0)
        boxes = tf.constant(np.asarray(batch["gt_boxes"], np.float32)[where[:, 0], where[:, 1]])
        images = tf.constant(where[:, 0].astype(np.int32))
        labels.append(classes[where[:, 0], where[:, 1]])
        for l in RELIABLE_LEVELS:
            out = upsampled[l].numpy()
            dead[l].append(float((out <= 0).mean()))
            pr[l].append(participation_ratio(out.reshape(-1, out.shape[-1])))
            for source, maps in (("F", upsampled[l]), ("P", pyramid[l])):
                crops = crop_level(maps, boxes, images, model.strides[l], roi.output_size, roi.sampling_ratio)
                feats[(source, l)].append(method.critic(crops, training=True, update_statistics=False).numpy())
        seen += len(classes)
        if seen >= max_images:
            break
    labels = np.concatenate(labels)
    return {l: {"dead": float(np.mean(dead[l])), "PR": float(np.mean(pr[l])),
                "sep F": separation(np.concatenate(feats[("F", l)]), labels),
                "sep P": separation(np.concatenate(feats[("P", l)]), labels)}
            for l in RELIABLE_LEVELS}


def main(argv):
    del argv
    if not FLAGS.model_dirs:
        raise app.UsageError("give --model_dirs")
    start_tensorflow()
    print("| run | level | dead | PR | sep F | sep P |\n|---|---|---|---|---|---|")
    for model_dir in FLAGS.model_dirs:
        for level, row in reliable_targets(model_dir, FLAGS.max_images).items():
            print(f"| {model_dir} | {level} | {row['dead']:.3f} | {row['PR']:.1f} | "
                  f"{row['sep F']:.3f} | {row['sep P']:.3f} |", flush=True)


if __name__ == "__main__":  # the flags only here: tests import the helpers beside other tools' flags
    flags.DEFINE_list("model_dirs", [], "InterNet run folders (internet-train --model_dir) with the generator F.")
    flags.DEFINE_integer("max_images", 48, "Validation images to read per run.")
    app.run(main)
