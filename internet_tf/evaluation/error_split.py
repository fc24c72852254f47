"""Where a detector's COCO AP is lost: wrong labels or imprecise boxes.

The class-aware AP against the class-agnostic one (COCOeval with ``useCats = 0``: any detection
may match any ground truth) is the price of wrong labels; AP at IoU 0.5 against 0.75 is the
price of imprecise boxes. The intertwiner's targets are class centroids of large-object features
(Sec. 3.2, Eq. 2), so it can only recover the first: on data where the two APs are equal there is
no classification error left for it to remove.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools.coco import COCO

from internet_tf.evaluation.coco_eval import run_cocoeval

# COCOeval's precision array: [T iou thresholds, R recall, K categories, A areas, M maxDets].
_IOU = {"": slice(None), "50": 0, "75": 5}
_AREA = {"": "all", "s": "small", "m": "medium", "l": "large"}
KEYS = ("AP", "AP50", "AP75", "APs", "APs50", "APs75", "APm", "APl")


def load_ground_truth(path: str) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


def _precision(coco_gt: COCO, detections: list, use_cats: bool) -> tuple[np.ndarray, list]:
    ev = run_cocoeval(coco_gt, detections, use_cats=use_cats)
    return ev.eval["precision"], ev.params.areaRngLbl


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else -1.0


def error_split(coco_gt: COCO, detections: list) -> dict:
    """``{"class_aware": {key: AP}, "class_agnostic": {key: AP}}`` for ``KEYS`` (AP over
    IoU .50:.95, at .50 and .75; ``s``/``m``/``l`` by COCO's areas; maxDets 100), each as
    COCOeval averages it (-1.0 where no ground truth of that size exists). No detections:
    every AP is 0.0."""
    out = {}
    for name, use_cats in (("class_aware", True), ("class_agnostic", False)):
        if not detections:
            out[name] = {k: 0.0 for k in KEYS}
            continue
        precision, areas = _precision(coco_gt, detections, use_cats)
        values = {}
        for key in KEYS:
            rest = key[2:]
            area = rest[:1] if rest[:1] in ("s", "m", "l") else ""
            iou = rest[len(area):]
            values[key] = _mean_valid(precision[_IOU[iou], :, :, areas.index(_AREA[area]), -1])
        out[name] = values
    return out
