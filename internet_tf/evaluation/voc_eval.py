"""PASCAL VOC detection metrics (Li et al. 2019, Table 5).

Written from the definition of the VOC development kit's detection evaluation
(``VOCevaldet`` with ``VOCap``, and the 11-point rule of VOC2007):

- Per class, the detections of all evaluated images are sorted by score (descending; ties
  keep the order in which the detections were added). Each one is compared with the ground
  truths of its class in its image; its best-IoU ground truth (the first on a tie) decides:
  IoU >= 0.5 with a ground truth that is *difficult* -> ignored (neither TP nor FP); with a
  non-difficult one not yet matched -> TP (the box is now matched); with one already matched
  -> FP (a duplicate); best IoU < 0.5 or no ground truth in the image -> FP.
- IoU is computed as the devkit does, on 1-based inclusive pixel coordinates with "+1"
  widths: ``w = xmax - xmin + 1``. Our boxes are 0-based continuous (docs/conventions.md) and
  become ``xmin1 = x0 + 1, ymin1 = y0 + 1, xmax1 = x1, ymax1 = y1`` at this edge (the shared
  contract with the VOC reader, the inverse of the VOC reader's conversion), so the devkit's "+1"
  width of a converted box is exactly its continuous width: the IoU equals the plain IoU of
  the 0-based continuous boxes, as COCOeval computes it on the same boxes.
- Recall = TP / (number of non-difficult ground truths); precision = TP / (TP + FP). Ignored
  detections are dropped from the ranked list: the devkit keeps them as points with the same
  recall and precision as the previous one (or a 0/0 precision before any TP or FP, which its
  ``max`` skips), which changes neither AP.
- AP, VOC2010+ ("all-point", the default ``mAP``): the area under the monotone precision
  envelope, ``sum over recall steps of (r_i - r_{i-1}) * max(p_j for j >= i)`` with a
  point (0, 0) before and (1, 0) after the curve. AP, VOC2007 ("11-point", ``mAP_07``): the
  mean over ``t = 0, 0.1, ..., 1`` of the largest precision at recall >= t (0 if recall never
  reaches t); the thresholds are ``k / 10``, so a recall of exactly 3/10 reaches t = 0.3.
- mAP = the mean of the per-class APs over the classes that have ground truth.

A class without any non-difficult ground truth in the evaluated images has no recall to
measure (the devkit divides by zero and gives NaN). Here its per-class APs are -1.0, the
value the COCO route uses for "nothing to measure", and it is left out of the means;
``metrics.json`` never holds NaN. With no ground truth at all every mean is -1.0 too.
Crowd annotations (``iscrowd`` 1, which VOC data never has) are ignored like difficult ones.

:class:`VocEvaluator` has the shape of :class:`~internet_tf.evaluation.coco_eval.CocoEvaluator`
(``update`` per batch, ``evaluate``, ``write``); it collects detections through a
``CocoEvaluator`` so both routes convert model outputs to original-image boxes with the same
code and write the same ``detections.json``. Its ``write`` adds the devkit's per-class
result files ``voc_results/comp4_det_test_<class>.txt``, lines
``<voc_id> <score> <xmin> <ymin> <xmax> <ymax>`` in 1-based inclusive coordinates.
"""
from __future__ import annotations

import os

import numpy as np

from internet_tf.evaluation.coco_eval import CocoEvaluator
from internet_tf.files import write_atomic, write_json_atomic

IOU_THRESHOLD = 0.5
RESULTS_DIR = "voc_results"            # under the evaluation's out_dir
RESULT_FILE = "comp4_det_test_{}.txt"  # the devkit's name for a class's detections
NO_GROUND_TRUTH = -1.0                 # the AP of a class with nothing to find
TP, FP, IGNORED = 1, 0, -1             # the outcomes of ``match_detections``


def to_voc_boxes(x0, y0, x1, y1) -> np.ndarray:
    """0-based continuous corners -> ``[N, 4]`` float64 1-based inclusive VOC
    ``(xmin, ymin, xmax, ymax)``: ``(x0 + 1, y0 + 1, x1, y1)``."""
    x0, y0, x1, y1 = (np.asarray(v, np.float64) for v in (x0, y0, x1, y1))
    return np.stack([x0 + 1.0, y0 + 1.0, x1, y1], axis=-1).reshape(-1, 4)


def coco_to_voc_boxes(bboxes) -> np.ndarray:
    """COCO ``[x, y, w, h]`` (0-based continuous) -> 1-based inclusive VOC boxes."""
    b = np.asarray(bboxes, np.float64).reshape(-1, 4)
    return to_voc_boxes(b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3])


def voc_iou(box, gt_boxes) -> np.ndarray:
    """IoU of one 1-based inclusive box ``[4]`` with ``gt_boxes [M, 4]`` the devkit's way
    (``+1`` widths; no overlap when the intersection's width or height is <= 0)."""
    box, gt = np.asarray(box, np.float64), np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    iw = np.minimum(box[2], gt[:, 2]) - np.maximum(box[0], gt[:, 0]) + 1.0
    ih = np.minimum(box[3], gt[:, 3]) - np.maximum(box[1], gt[:, 1]) + 1.0
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_box = (box[2] - box[0] + 1.0) * (box[3] - box[1] + 1.0)
    area_gt = (gt[:, 2] - gt[:, 0] + 1.0) * (gt[:, 3] - gt[:, 1] + 1.0)
    union = area_box + area_gt - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_detections(image_ids, boxes, ground_truth: dict, iou_threshold: float = IOU_THRESHOLD):
    """Outcome per detection (``TP``, ``FP`` or ``IGNORED``), the detections already ranked.

    Args:
      image_ids: ``[N]`` image of each detection, in rank order (highest score first).
      boxes: ``[N, 4]`` their 1-based inclusive VOC boxes.
      ground_truth: ``{image_id: (gt_boxes [M, 4] 1-based, ignore [M] bool)}`` of this class;
        ``ignore`` marks difficult (or crowd) boxes.
    """
    matched = {img: np.zeros(len(g[0]), bool) for img, g in ground_truth.items()}
    outcomes = np.full(len(image_ids), FP, np.int8)
    for i, (img, box) in enumerate(zip(image_ids, boxes)):
        gt = ground_truth.get(img)
        if gt is None or len(gt[0]) == 0:
            continue
        iou = voc_iou(box, gt[0])
        j = int(np.argmax(iou))
        if iou[j] < iou_threshold:
            continue
        if gt[1][j]:
            outcomes[i] = IGNORED
        elif not matched[img][j]:
            outcomes[i] = TP
            matched[img][j] = True
    return outcomes


def precision_recall(outcomes, num_positives: int):
    """Recall and precision after each non-ignored detection of the ranked ``outcomes``."""
    kept = np.asarray(outcomes)[np.asarray(outcomes) != IGNORED]
    tp = np.cumsum(kept == TP, dtype=np.float64)
    fp = np.cumsum(kept == FP, dtype=np.float64)
    return tp / num_positives, tp / np.maximum(tp + fp, 1.0)


def ap_11_point(recall, precision) -> float:
    """VOC2007: mean over t = 0, 0.1, ..., 1 of max(precision at recall >= t), 0 if none."""
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    total = 0.0
    for k in range(11):
        reached = precision[recall >= k / 10]
        total += float(reached.max()) if reached.size else 0.0
    return total / 11


def ap_all_point(recall, precision) -> float:
    """VOC2010+: the area under the monotone (non-increasing) envelope of the curve."""
    r = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    p = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]        # p_i = max(p_j for j >= i)
    steps = np.nonzero(r[1:] != r[:-1])[0] + 1
    return float(np.sum((r[steps] - r[steps - 1]) * p[steps]))


def class_average_precision(image_ids, scores, boxes, ground_truth: dict,
                            iou_threshold: float = IOU_THRESHOLD):
    """``(AP all-point, AP 11-point)`` of one class, or ``None`` when it has no
    non-difficult ground truth. Detections in any order; ``ground_truth`` as in
    ``match_detections``."""
    num_positives = int(sum(np.count_nonzero(~np.asarray(g[1], bool)) for g in ground_truth.values()))
    if num_positives == 0:
        return None
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    outcomes = match_detections(np.asarray(image_ids)[order], np.asarray(boxes).reshape(-1, 4)[order],
                                ground_truth, iou_threshold)
    recall, precision = precision_recall(outcomes, num_positives)
    return ap_all_point(recall, precision), ap_11_point(recall, precision)


def _mean(values) -> float:
    values = [v for v in values if v != NO_GROUND_TRUTH]
    return float(np.mean(values)) if values else NO_GROUND_TRUTH


class VocEvaluator:
    """Accumulates batched detections and scores them with the VOC metrics above.

    Args:
      coco_gt: ``pycocotools.coco.COCO`` ground truth; annotations may carry ``difficult``
        (0/1, default 0) and images ``voc_id`` (the devkit's image name, default the id).
      label_to_cat_id: ``{label: category_id}`` for the contiguous labels ``1..K``.
      class_names: names ordered by label (or ``{label: name}``) for the metric keys and the
        devkit file names; without it the category ids.
      iou_threshold: 0.5, the VOC criterion.

    Only the images passed to ``update`` are evaluated (each once, as in the COCO route).
    """

    def __init__(self, coco_gt, label_to_cat_id, class_names=None, iou_threshold: float = IOU_THRESHOLD):
        self._collector = CocoEvaluator(coco_gt, label_to_cat_id, class_names)
        self.coco_gt = coco_gt
        self.iou_threshold = float(iou_threshold)
        self.summary_text = ""
        self._metrics = None

    def reset(self):
        """Forget all accumulated detections and images."""
        self._collector.reset()
        self._metrics = None

    @property
    def detections(self):
        """The accumulated detections as COCO result dicts (original image pixels)."""
        return self._collector.detections

    @property
    def image_ids(self):
        return self._collector.image_ids

    def update(self, detection_boxes, detection_scores, detection_classes, num_detections, image_info):
        """Adds one batch of model outputs; the arguments of ``CocoEvaluator.update``."""
        self._collector.update(detection_boxes, detection_scores, detection_classes,
                               num_detections, image_info)
        self._metrics = None

    def class_names(self) -> dict:
        """``{category_id: name}`` in label order (the name is ``str(category_id)`` without names)."""
        names = self._collector.class_names or {}
        return {cat: str(names.get(label, cat))
                for label, cat in sorted(self._collector.label_to_cat_id.items())}

    def _ground_truth(self, cat_ids) -> dict:
        """``{category_id: {image_id: (boxes [M, 4] 1-based, ignore [M])}}`` of the seen images."""
        per_image = {cat: {} for cat in cat_ids}
        seen = self.image_ids  # (an empty imgIds would make pycocotools return every image's)
        anns = self.coco_gt.loadAnns(self.coco_gt.getAnnIds(imgIds=seen, catIds=list(cat_ids))) if seen else []
        for ann in anns:
            entry = per_image[ann["category_id"]].setdefault(ann["image_id"], ([], []))
            entry[0].append(ann["bbox"])
            entry[1].append(bool(ann.get("difficult", 0)) or bool(ann.get("iscrowd", 0)))
        return {cat: {img: (coco_to_voc_boxes(b), np.array(ig, bool)) for img, (b, ig) in imgs.items()}
                for cat, imgs in per_image.items()}

    def _detections_by_class(self, cat_ids) -> dict:
        """``{category_id: (image_ids [N], scores [N], boxes [N, 4] 1-based)}``."""
        grouped = {cat: ([], [], []) for cat in cat_ids}
        for d in self.detections:
            ids, scores, boxes = grouped[d["category_id"]]
            ids.append(d["image_id"])
            scores.append(d["score"])
            boxes.append(d["bbox"])
        return {cat: (np.array(i, np.int64), np.array(s, np.float64), coco_to_voc_boxes(b))
                for cat, (i, s, b) in grouped.items()}

    def evaluate(self) -> dict:
        """Scores the images seen so far; returns the metrics dict.

        ``mAP`` (all-point), ``mAP_07`` (11-point), ``AP50`` (= ``mAP``: tools that read the
        COCO route's AP50 read the VOC number), then ``AP/<class>`` and ``AP07/<class>`` in
        label order (-1.0 for a class without non-difficult ground truth). A readable table
        is kept in ``self.summary_text``.
        """
        names = self.class_names()
        gt = self._ground_truth(names)
        dets = self._detections_by_class(names)
        all_point, eleven = {}, {}
        for cat, name in names.items():
            aps = class_average_precision(*dets[cat], gt[cat], self.iou_threshold)
            all_point[name], eleven[name] = aps if aps is not None else (NO_GROUND_TRUTH, NO_GROUND_TRUTH)
        metrics = {"mAP": _mean(all_point.values()), "mAP_07": _mean(eleven.values())}
        metrics["AP50"] = metrics["mAP"]
        metrics.update({f"AP/{n}": v for n, v in all_point.items()})
        metrics.update({f"AP07/{n}": v for n, v in eleven.items()})
        self.summary_text = format_metrics(metrics) + "\n"
        self._metrics = metrics
        return metrics

    def result_files(self) -> dict:
        """``{file name: text}`` of the devkit's per-class result files (one per class, empty
        when the class has no detection), lines ``<voc_id> <score> <xmin> <ymin> <xmax> <ymax>``
        in 1-based inclusive coordinates, in the order the detections were added."""
        names = self.class_names()
        lines = {cat: [] for cat in names}
        imgs = self.coco_gt.imgs
        for d in self.detections:
            voc_id = str(imgs[d["image_id"]].get("voc_id", d["image_id"]))
            xmin, ymin, xmax, ymax = coco_to_voc_boxes(d["bbox"])[0]
            lines[d["category_id"]].append(
                f"{voc_id} {d['score']:.6f} {xmin:.2f} {ymin:.2f} {xmax:.2f} {ymax:.2f}\n")
        return {RESULT_FILE.format(result_file_stem(names[cat])): "".join(lines[cat]) for cat in names}

    def write(self, out_dir):
        """Atomically writes ``metrics.json``, ``detections.json`` (COCO results, as the COCO
        route) and ``voc_results/comp4_det_test_<class>.txt``; evaluates first if the metrics
        are stale. Returns ``(metrics_path, detections_path)``."""
        metrics = self._metrics if self._metrics is not None else self.evaluate()
        os.makedirs(os.path.join(out_dir, RESULTS_DIR), exist_ok=True)
        for name, text in self.result_files().items():
            write_atomic(os.path.join(out_dir, RESULTS_DIR, name), text, fsync=False)
        det_path = write_json_atomic(os.path.join(out_dir, "detections.json"), self.detections)
        met_path = write_json_atomic(os.path.join(out_dir, "metrics.json"), metrics, indent=2)
        return met_path, det_path


def result_file_stem(class_name: str) -> str:
    """The class name as it goes into a devkit file name (a path separator becomes ``_``)."""
    return str(class_name).replace(os.sep, "_")


def format_metrics(metrics: dict) -> str:
    """``mAP`` and ``mAP_07``, then one line per class: all-point and 11-point AP."""
    lines = [f"{'mAP':<10} {metrics['mAP']:.4f}   (VOC2010+ all-point, IoU 0.5)",
             f"{'mAP_07':<10} {metrics['mAP_07']:.4f}   (VOC2007 11-point)"]
    for key, value in metrics.items():
        if key.startswith("AP/"):
            name = key[3:]
            lines.append(f"AP[{name}] {value:.4f}  AP07[{name}] {metrics['AP07/' + name]:.4f}")
    return "\n".join(lines)
