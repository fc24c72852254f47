"""Runs a detector over the validation split and scores it (COCOeval or the PASCAL VOC
metric, Li et al. 2019, Table 5).

The metrics follow the dataset's kind (``DatasetBundle.kind``): a COCO-format dataset is
scored with COCOeval (``evaluation/coco_eval.py``), one read as PASCAL VOC with the VOC
metrics (``evaluation/voc_eval.py``: mAP all-point and 11-point, per-class AP and the
devkit's result files under ``voc_results/``). No flag is needed: ``internet-train``'s final
evaluation and ``internet-eval`` both land here.

Writes ``<out_dir>/metrics.json`` and ``<out_dir>/detections.json`` (COCO results format,
original image pixels, the dataset's own category ids). Given a summary writer, it also
writes every float metric as the scalar ``eval/<metric>`` (``eval/AP``, ``eval/AP50``, ... for
COCO; ``eval/mAP``, ``eval/mAP_07``, ``eval/AP50``, ``eval/AP/<class>``, ... for VOC) and one
image summary ``eval/detections``: the first ``num_images`` validation images with ground
truth in green and detections scoring >= 0.5 in red (``evaluation/visualize.py``), from the
detections already computed for the metrics (no extra inference).

While it runs it writes progress lines (``progress.py``: images done of the total,
images/s and the time left; a line about every 10 s in a piped log), and COCOeval its
phases. An image the pipeline could not decode (the index checks headers and file ends, not
every pixel) is left out by the pipeline: the evaluation counts and names such images.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from absl import logging

from internet_tf.config import Config
from internet_tf.data.datasets import DatasetBundle, eval_dataset
from internet_tf.evaluation import coco_eval, voc_eval
from internet_tf.evaluation.visualize import detection_images
from internet_tf.graph.jit import jit_function
from internet_tf.progress import Phase, Progress

# dataset kind -> (evaluator class, metrics formatter, name in messages)
EVALUATORS = {
    "coco": (coco_eval.CocoEvaluator, coco_eval.format_metrics, "COCO"),
    "voc": (voc_eval.VocEvaluator, voc_eval.format_metrics, "VOC"),
}
_SHOWN_BATCH_KEYS = ("images", "gt_boxes", "gt_classes", "image_info")
_SHOWN_DET_KEYS = ("detection_boxes", "detection_scores", "num_detections")
PROGRESS_SECONDS = 9.0  # after a batch, an image-count line when this long passed since the last
# The guard's ``still running`` line after this long without any line: half a second after a
# phase's own 10 s line would come, so the two do not both write.
SILENCE_SECONDS = 10.5
_NAMED_FILES = 5


def dataset_kind(bundle: DatasetBundle) -> str:
    """``"voc"`` or ``"coco"``: the bundle's ``kind`` (a bundle without one is COCO)."""
    kind = getattr(bundle, "kind", "coco")
    if kind not in EVALUATORS:
        raise ValueError(f"dataset kind {kind!r} has no evaluator; expected one of {sorted(EVALUATORS)}")
    return kind


def make_evaluator(bundle: DatasetBundle, kind: str | None = None):
    """The evaluator of the bundle's validation set for ``kind`` (default: the bundle's)."""
    cls = EVALUATORS[kind or dataset_kind(bundle)][0]
    return cls(bundle.val.coco, bundle.label_to_cat_id, bundle.class_names[1:])


def metrics_text(metrics: dict) -> tuple[str, str]:
    """``(name, table)`` for printing: ``("VOC", ...)`` for VOC metrics (they hold ``mAP``),
    else ``("COCO", ...)``."""
    _, formatter, name = EVALUATORS["voc" if "mAP" in metrics else "coco"]
    return name, formatter(metrics)


def _take_first(parts: list, source: dict, keys, count: int):
    """Appends the first ``count`` examples of ``source[keys]`` (as numpy) to ``parts``."""
    parts.append({k: np.asarray(source[k][:count]) for k in keys})


def _joined(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def images_to_evaluate(bundle: DatasetBundle, cfg: Config) -> int:
    """How many validation images an evaluation reads: all, or ``cfg.eval.max_images``."""
    total = len(bundle.val.records)
    return min(total, cfg.eval.max_images) if cfg.eval.max_images else total


def _report_undecoded(bundle: DatasetBundle, seen_ids: set, wanted: int) -> None:
    """Counts and names the images the pipeline dropped because they did not decode."""
    records = bundle.val.records[:wanted]
    lost = [r["path"] for r in records if r["image_id"] not in seen_ids]
    if not lost:
        return
    bundle.val.skips["undecodable_image"] = len(lost)
    more = len(lost) - _NAMED_FILES
    logging.warning("%d validation image%s did not decode and %s left out of the evaluation "
                    "(undecodable_image): %s%s", len(lost), "s" if len(lost) > 1 else "",
                    "were" if len(lost) > 1 else "was", ", ".join(lost[:_NAMED_FILES]),
                    f" and {more} more" if more > 0 else "")


def run_detector(model, bundle: DatasetBundle, cfg: Config, evaluators, *, num_images: int = 0,
                 stream=None):
    """Runs ``model.inference`` over the validation split (``cfg.eval.max_images`` at most)
    and feeds every batch to each of ``evaluators``, writing progress lines to ``stream``
    (default stdout). Returns ``(images seen, pictures)``: the inputs and detections of the
    first ``num_images`` images, or None."""
    size = model.image_size
    seen, seen_ids = 0, set()
    total = images_to_evaluate(bundle, cfg)
    progress = Progress(total, images_per_step=1, every=max(1, total // 10), stream=stream,
                        unit="images", first="first batch", seconds=PROGRESS_SECONDS)
    with progress.waiting(1):  # the input pipeline is built and traced here
        # A None batch dimension: the last, smaller batch reuses the same trace. XLA as
        # ``eval.jit_compile`` says (auto|true|false, ``graph/jit.py``).
        infer = jit_function(model.inference, cfg.eval.jit_compile, "eval.jit_compile", "inference function",
                             input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32),
                                              tf.TensorSpec([None, 4], tf.float32)])
        batches = iter(eval_dataset(bundle, cfg))
    shown_batches, shown_dets = [], []
    while True:
        with progress.waiting(seen + 1):
            batch = next(batches, None)
            if batch is None:
                break
            dets = infer(batch["images"], batch["image_info"])
        for evaluator in evaluators:
            evaluator.update(dets["detection_boxes"], dets["detection_scores"], dets["detection_classes"],
                             dets["num_detections"], batch["image_info"])
        wanted = num_images - seen
        if wanted > 0:
            _take_first(shown_batches, batch, _SHOWN_BATCH_KEYS, wanted)
            _take_first(shown_dets, dets, _SHOWN_DET_KEYS, wanted)
        seen += int(batch["images"].shape[0])
        seen_ids.update(int(i) for i in np.asarray(batch["image_info"][:, 3]))
        progress.update(min(seen, total))
        if seen >= total:
            break
    progress.close()
    _report_undecoded(bundle, seen_ids, total)
    pictures = (_joined(shown_batches), _joined(shown_dets)) if shown_batches else None
    return seen, pictures


def evaluate_model(model, bundle: DatasetBundle, cfg: Config, out_dir: str, *, summary_writer=None,
                   step: int | None = None, num_images: int = 4) -> dict:
    """Returns the metrics dict (COCO or VOC, by the bundle's kind); writes metrics.json /
    detections.json (and for VOC the devkit files) under ``out_dir``.

    With ``summary_writer``, also writes the ``eval/*`` scalars and the ``eval/detections``
    image summary of the first ``num_images`` images (0 writes no image summary).
    """
    kind = dataset_kind(bundle)
    evaluator = make_evaluator(bundle, kind)
    to_show = num_images if summary_writer is not None else 0
    # The guard: whatever between the image counts and COCOeval's phases has no line of its
    # own still gets a ``still running`` line after SILENCE_SECONDS of silence (the image
    # counts come earlier, so the guard stays quiet while batches flow).
    with Phase("evaluation", seconds=SILENCE_SECONDS, report=False, when_silent=True):
        seen, pictures = run_detector(model, bundle, cfg, [evaluator], num_images=to_show)
        metrics = evaluator.evaluate()
        os.makedirs(out_dir, exist_ok=True)
        evaluator.write(out_dir)
    logging.info("%s evaluation on %d images:\n%s", EVALUATORS[kind][2], seen, evaluator.summary_text)
    if summary_writer is not None:
        with summary_writer.as_default(step=step or 0):
            for key, value in metrics.items():
                if isinstance(value, float):
                    tf.summary.scalar("eval/" + key, value)
            if pictures is not None:
                tf.summary.image("eval/detections", detection_images(*pictures), max_outputs=num_images)
        summary_writer.flush()
    return metrics
