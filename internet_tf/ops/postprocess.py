"""Inference post-processing (Lin et al. 2017): softmax scores, per-class decode and clip,
score threshold 0.05, per-class NMS (0.3, paper Sec. 6.5), at most 100 detections.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops.proposals import valid_image_size
from internet_tf.ops import boxes as box_ops


def detect(class_logits, box_deltas, rois, image_info, *, bbox_weights=(10.0, 10.0, 5.0, 5.0),
           score_threshold: float = 0.05, nms_iou: float = 0.3, max_detections: int = 100,
           rois_valid=None):
    """Returns dict of ``detection_boxes`` [B, D, 4] (input pixels, yxyx), ``detection_scores``
    [B, D], ``detection_classes`` int32 [B, D] (labels 1..K, -1 padding), ``num_detections`` [B].
    """
    num_classes = box_deltas.shape[2]
    scores = tf.nn.softmax(class_logits, axis=-1)[..., 1:]
    if rois_valid is not None:
        scores = scores * tf.cast(rois_valid[..., None], scores.dtype)
    anchors = tf.repeat(rois[:, :, None, :], num_classes, axis=2)
    boxes = box_ops.decode(box_deltas, anchors, weights=bbox_weights)
    height, width = valid_image_size(image_info)
    boxes = box_ops.clip_boxes(boxes, height[:, None, None], width[:, None, None])
    nmsed_boxes, nmsed_scores, nmsed_classes, num = tf.image.combined_non_max_suppression(
        boxes, scores, max_output_size_per_class=max_detections, max_total_size=max_detections,
        iou_threshold=nms_iou, score_threshold=score_threshold, pad_per_class=False,
        clip_boxes=False)
    valid = tf.range(max_detections)[None, :] < num[:, None]
    classes = tf.where(valid, tf.cast(nmsed_classes, tf.int32) + 1, -1)
    return {
        "detection_boxes": tf.where(valid[..., None], nmsed_boxes, 0.0),
        "detection_scores": tf.where(valid, nmsed_scores, 0.0),
        "detection_classes": classes,
        "num_detections": tf.cast(num, tf.int32),
    }
