"""Evaluation pictures for TensorBoard: the ``eval/detections`` image summary.

Ground-truth boxes are drawn in green, then detections in red (so red wins where the two
coincide), one pixel wide, with ``tf.image.draw_bounding_boxes`` on the padded model inputs.
Boxes follow docs/conventions.md: ``(ymin, xmin, ymax, xmax)`` in input pixels, a pixel
covering ``[i, i+1)``, so a box is outlined on rows ``floor(ymin)`` and ``ceil(ymax) - 1``
(columns likewise). ``draw_bounding_boxes`` takes normalised coordinates and truncates
``coord * (size - 1)`` to a pixel index, so each edge is passed as the centre of its pixel
row/column, ``(index + 0.5) / (size - 1)``, which truncates back to ``index`` exactly.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops.proposals import valid_image_size

GT_COLOUR = (0.0, 1.0, 0.0, 1.0)   # RGBA in [0, 1]
DET_COLOUR = (1.0, 0.0, 0.0, 1.0)
MIN_SCORE = 0.5  # detections drawn: score >= MIN_SCORE


def _normalised(boxes, height: int, width: int):
    """Pixel boxes [n, 4] -> draw_bounding_boxes coordinates of their edge pixels."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    top, left = tf.floor(boxes[:, 0]), tf.floor(boxes[:, 1])
    bottom = tf.maximum(tf.math.ceil(boxes[:, 2]) - 1.0, top)
    right = tf.maximum(tf.math.ceil(boxes[:, 3]) - 1.0, left)
    rows = tf.clip_by_value(tf.stack([top, bottom], -1), 0.0, height - 1.0)
    cols = tf.clip_by_value(tf.stack([left, right], -1), 0.0, width - 1.0)
    rows = (rows + 0.5) / max(height - 1, 1)
    cols = (cols + 0.5) / max(width - 1, 1)
    return tf.stack([rows[:, 0], cols[:, 0], rows[:, 1], cols[:, 1]], -1)


def draw_boxes(images, gt_boxes, gt_valid, det_boxes, det_valid):
    """Draws the valid boxes on each image.

    Args:
      images: float [B, H, W, 3] in 0..255 (the model input).
      gt_boxes: [B, M, 4] yxyx input pixels; gt_valid: bool [B, M] (rows to draw, green).
      det_boxes: [B, N, 4] yxyx input pixels; det_valid: bool [B, N] (rows to draw, red).
    Returns:
      float32 [B, H, W, 3] in [0, 1].
    """
    images = tf.clip_by_value(tf.cast(images, tf.float32) / 255.0, 0.0, 1.0)
    height, width = int(images.shape[1]), int(images.shape[2])
    drawn = []
    for i in range(int(images.shape[0])):
        image = images[i:i + 1]
        for boxes, valid, colour in ((gt_boxes, gt_valid, GT_COLOUR),
                                     (det_boxes, det_valid, DET_COLOUR)):
            chosen = tf.boolean_mask(tf.convert_to_tensor(boxes, tf.float32)[i],
                                     tf.convert_to_tensor(valid, tf.bool)[i])
            image = tf.image.draw_bounding_boxes(
                image, _normalised(chosen, height, width)[None], tf.constant([colour]))
        drawn.append(image)
    return tf.concat(drawn, 0)


def detection_images(batch: dict, detections: dict, *, min_score: float = MIN_SCORE):
    """The ``eval/detections`` picture of a (sliced) eval batch and its detections.

    Draws ground truth (``gt_classes >= 0``) and detections with ``score >= min_score``
    inside ``num_detections``, then crops away the padding shared by every image: the result
    is ``[B, h, w, 3]`` float32 in [0, 1] with ``h, w`` the largest valid size
    ``round(orig * scale)`` among the images (one summary tensor needs one shape).
    """
    scores = tf.convert_to_tensor(detections["detection_scores"])
    in_range = (tf.range(tf.shape(scores)[1])[None, :]
                < tf.cast(detections["num_detections"], tf.int32)[:, None])
    det_valid = in_range & (scores >= min_score)
    gt_valid = tf.convert_to_tensor(batch["gt_classes"]) >= 0
    pictures = draw_boxes(batch["images"], batch["gt_boxes"], gt_valid,
                          detections["detection_boxes"], det_valid)
    heights, widths = valid_image_size(tf.convert_to_tensor(batch["image_info"], tf.float32))
    crop_h = max(int(tf.reduce_max(heights)), 1)
    crop_w = max(int(tf.reduce_max(widths)), 1)
    return pictures[:, :crop_h, :crop_w]
