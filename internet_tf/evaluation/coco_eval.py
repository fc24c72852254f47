"""COCO box evaluation of detector outputs.

The evaluation contract: pycocotools ``COCOeval`` (AP, AP50, AP75,
APs, APm, APl and the six AR numbers), per-class AP, and detections saved in COCO result
format. This is the output edge of the box conventions (docs/conventions.md): model boxes
``(ymin, xmin, ymax, xmax)`` in resized-input pixels become COCO ``[x, y, w, h]`` in original
image pixels (``box / scale``, clipped to the original image), and contiguous labels ``1..K``
become the dataset's own category ids.

Image ids travel inside the float32 ``image_info[..., 3]``; float32 represents every integer
in ``[0, 2**24]`` exactly, so ids above ``MAX_IMAGE_ID = 2**24`` (16,777,216) are rejected with
a ``ValueError`` rather than silently rounded to a neighbouring id.

COCOeval takes about a minute on 500,000 detections (5,000 images at 100 each), so each of its
phases (loading the detections, matching them per image and category, accumulating the
precision tables) writes a line with its time, and a ``still running`` line every 10 s while
it lasts (``progress.py: Phase``).
"""
import contextlib
import io
import os

import numpy as np
from pycocotools.cocoeval import COCOeval

from internet_tf.data.coco import MAX_IMAGE_ID
from internet_tf.files import write_json_atomic
from internet_tf.progress import Phase

METRIC_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
               "ARmax1", "ARmax10", "ARmax100", "ARs", "ARm", "ARl")  # COCOeval.stats order


def _to_numpy(x):
    """Eager tf.Tensor / array-like -> numpy (no TensorFlow import needed here)."""
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


class CocoEvaluator:
    """Accumulates batched detections and scores them with pycocotools ``COCOeval`` ('bbox').

    Args:
      coco_gt: ``pycocotools.coco.COCO`` ground truth (index already created).
      label_to_cat_id: ``{label: category_id}`` for the contiguous labels ``1..K``.
      class_names: optional names for per-class AP keys, either a sequence ordered by label
        (``class_names[label - 1]``) or a ``{label: name}`` dict. Without it the keys are
        ``str(category_id)``.

    Only the categories in ``label_to_cat_id`` are evaluated (``params.catIds``), and only the
    images passed to ``update`` (``params.imgIds``), including images with no detections.
    An image id seen a second time (e.g. padded / repeated batches in distributed eval) is
    ignored, so every image counts once.
    """

    def __init__(self, coco_gt, label_to_cat_id, class_names=None):
        self.coco_gt = coco_gt
        self.label_to_cat_id = {int(k): int(v) for k, v in label_to_cat_id.items()}
        self._cat_to_label = {c: k for k, c in sorted(self.label_to_cat_id.items())}
        unknown = set(self.label_to_cat_id.values()) - set(coco_gt.getCatIds())
        if unknown:
            raise ValueError(f"category ids {sorted(unknown)} are not in the ground truth")
        if class_names is not None and not isinstance(class_names, dict):
            class_names = {i + 1: n for i, n in enumerate(class_names)}
        self.class_names = class_names
        self.summary_text = ""
        self.reset()

    def reset(self):
        """Forget all accumulated detections and images."""
        self._results = []
        self._img_ids = set()
        self._metrics = None
        self.num_duplicate_images = 0

    @property
    def detections(self):
        """The accumulated COCO result dicts (``image_id, category_id, bbox, score``)."""
        return list(self._results)

    @property
    def image_ids(self):
        return sorted(self._img_ids)

    def update(self, detection_boxes, detection_scores, detection_classes, num_detections,
               image_info):
        """Adds one batch of model outputs (numpy arrays or eager tensors).

        boxes [B, D, 4] yxyx resized-input pixels; scores [B, D]; classes [B, D] labels 1..K
        (entries <= 0 are padding and skipped); num_detections [B];
        image_info [B, 4] = (orig_h, orig_w, scale, image_id).
        """
        boxes = _to_numpy(detection_boxes).astype(np.float64)
        scores = _to_numpy(detection_scores)
        classes = _to_numpy(detection_classes).astype(np.int64)
        nums = _to_numpy(num_detections).astype(np.int64).reshape(-1)
        info = _to_numpy(image_info).astype(np.float64).reshape(-1, 4)
        for b in range(info.shape[0]):
            orig_h, orig_w, scale, raw_id = info[b]
            image_id = self._checked_image_id(raw_id)
            if image_id in self._img_ids:
                self.num_duplicate_images += 1
                continue
            self._img_ids.add(image_id)
            self._metrics = None
            n = min(int(nums[b]), boxes.shape[1])
            yxyx = boxes[b, :n] / scale
            y1 = np.clip(yxyx[:, 0], 0.0, orig_h)
            x1 = np.clip(yxyx[:, 1], 0.0, orig_w)
            y2 = np.clip(yxyx[:, 2], 0.0, orig_h)
            x2 = np.clip(yxyx[:, 3], 0.0, orig_w)
            for i in range(n):
                label = int(classes[b, i])
                if label <= 0:
                    continue
                if label not in self.label_to_cat_id:
                    raise ValueError(f"detection label {label} is not in label_to_cat_id")
                self._results.append({
                    "image_id": image_id,
                    "category_id": self.label_to_cat_id[label],
                    "bbox": [float(x1[i]), float(y1[i]),
                             float(max(x2[i] - x1[i], 0.0)), float(max(y2[i] - y1[i], 0.0))],
                    "score": float(scores[b, i]),
                })

    def _checked_image_id(self, raw_id):
        if not np.isfinite(raw_id) or raw_id < 0 or raw_id != np.round(raw_id):
            raise ValueError(f"image_info image_id {raw_id!r} is not a non-negative integer")
        if raw_id > MAX_IMAGE_ID:
            raise ValueError(
                f"image id {int(raw_id)} exceeds {MAX_IMAGE_ID} (2**24): it cannot round-trip "
                "through the float32 image_info; remap the dataset's image ids")
        image_id = int(raw_id)
        if image_id not in self.coco_gt.imgs:
            raise ValueError(f"image id {image_id} is not in the ground-truth COCO set")
        return image_id

    def evaluate(self):
        """Runs COCOeval on the images seen so far and returns the metrics dict.

        Returns ``{AP, AP50, AP75, APs, APm, APl, ARmax1, ARmax10, ARmax100, ARs, ARm, ARl}``
        as floats exactly as ``COCOeval.stats`` reports them (-1.0 where COCO has no ground
        truth, e.g. APs without small objects), plus ``per_class_AP``: {name: AP@[.5:.95]}
        over area 'all', maxDets 100, the mean of the valid (> -1) precision entries;
        a class without ground truth in the evaluated images gets -1.0.
        With no detections at all every metric is 0.0 (and per-class AP 0.0 / -1.0).
        pycocotools' printed table is kept in ``self.summary_text``, not printed.
        """
        cat_ids = sorted(set(self.label_to_cat_id.values()))
        img_ids = sorted(self._img_ids)
        if not self._results:
            gt_cats = {a["category_id"] for a in
                       self.coco_gt.loadAnns(self.coco_gt.getAnnIds(imgIds=img_ids))}
            metrics = {k: 0.0 for k in METRIC_KEYS}
            metrics["per_class_AP"] = {self._class_key(c): (0.0 if c in gt_cats else -1.0)
                                       for c in self._cats_by_label()}
            self.summary_text = "No detections: all metrics are 0.\n"
            self._metrics = metrics
            return metrics

        coco_eval = run_cocoeval(self.coco_gt, self._results, img_ids=img_ids, cat_ids=cat_ids)
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            coco_eval.summarize()
        self.summary_text = summary.getvalue()

        metrics = {k: float(v) for k, v in zip(METRIC_KEYS, coco_eval.stats)}
        # precision: [T iou, R recall, K cats (params.catIds order), A areas, M maxDets]
        precision = coco_eval.eval["precision"]
        area_idx = coco_eval.params.areaRngLbl.index("all")
        det_idx = coco_eval.params.maxDets.index(100)
        per_class = {}
        for cat_id in self._cats_by_label():
            p = precision[:, :, cat_ids.index(cat_id), area_idx, det_idx]
            valid = p[p > -1]
            per_class[self._class_key(cat_id)] = float(valid.mean()) if valid.size else -1.0
        metrics["per_class_AP"] = per_class
        self._metrics = metrics
        return metrics

    def _cats_by_label(self):
        return [self.label_to_cat_id[k] for k in sorted(self.label_to_cat_id)]

    def _class_key(self, cat_id):
        label = self._cat_to_label[cat_id]
        if self.class_names and label in self.class_names:
            return str(self.class_names[label])
        return str(cat_id)

    def write(self, out_dir):
        """Atomically writes ``metrics.json`` (pretty) and ``detections.json`` (COCO results).

        Evaluates first if the metrics are stale. Returns ``(metrics_path, detections_path)``.
        """
        os.makedirs(out_dir, exist_ok=True)
        metrics = self._metrics if self._metrics is not None else self.evaluate()
        det_path = write_json_atomic(os.path.join(out_dir, "detections.json"), self._results)
        met_path = write_json_atomic(os.path.join(out_dir, "metrics.json"), metrics, indent=2)
        return met_path, det_path


def run_cocoeval(coco_gt, results, *, use_cats: bool = True, img_ids=None, cat_ids=None) -> COCOeval:
    """COCOeval (bbox) of COCO-format ``results`` against ``coco_gt``, evaluated and accumulated
    quietly; ``img_ids`` / ``cat_ids`` restrict it, ``use_cats=False`` matches across classes."""
    quiet = contextlib.redirect_stdout(io.StringIO())  # pycocotools prints as it goes
    with Phase("COCOeval: load detections") as phase, quiet:
        # loadRes mutates the dicts (adds area/id/segmentation): give it copies.
        coco_dt = coco_gt.loadRes([dict(r, bbox=list(r["bbox"])) for r in results])
        phase.result = f"{len(results)} detections"
    coco_eval = COCOeval(coco_gt, coco_dt, iouType="bbox")
    coco_eval.params.useCats = int(use_cats)
    if img_ids is not None:
        coco_eval.params.imgIds = img_ids
    if cat_ids is not None:
        coco_eval.params.catIds = cat_ids
    with Phase("COCOeval: match") as phase, quiet:
        coco_eval.evaluate()
        phase.result = f"{len(coco_eval.params.imgIds)} images"
    with Phase("COCOeval: accumulate"), quiet:
        coco_eval.accumulate()
    return coco_eval


def format_metrics(metrics):
    """One line per metric (the 12 COCO numbers, then per-class AP) for printing."""
    lines = [f"{k:<10} {metrics[k]:.4f}" for k in METRIC_KEYS if k in metrics]
    for name, ap in metrics.get("per_class_AP", {}).items():
        lines.append(f"AP[{name}] {ap:.4f}")
    return "\n".join(lines)
