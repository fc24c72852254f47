"""RPN proposals (Lin et al. 2017, Ren et al. 2015 with FPN): per-level top-k by objectness, decode,
clip to the image, NMS per level (0.7), then the best ``post_nms_topk`` over all levels per
image. Pure tensor functions; the RPN head layer is ``modeling/rpn.py``.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops import boxes as box_ops
from internet_tf.ops.levels import RPN_LEVELS as LEVELS


def valid_image_size(image_info):
    """(height, width) [B] of the resized image inside the padded input."""
    scale = image_info[:, 2]
    return tf.round(image_info[:, 0] * scale), tf.round(image_info[:, 1] * scale)


def _batched_nms(boxes, scores, max_output: int, iou_threshold: float):
    """Per-image NMS -> (indices [B, max_output] zero-padded, counts [B]).

    The C++ ``non_max_suppression`` kernel per image is faster on CPU than
    ``non_max_suppression_padded`` for a few thousand boxes.
    """
    def one(args):
        b, s = args
        idx = tf.image.non_max_suppression(b, s, max_output, iou_threshold)
        n = tf.shape(idx)[0]
        return tf.pad(idx, [[0, max_output - n]]), n

    return tf.map_fn(one, (boxes, scores), fn_output_signature=(
        tf.TensorSpec([max_output], tf.int32), tf.TensorSpec([], tf.int32)))


def generate_proposals(logits, deltas, anchors_per_level: dict, image_info, *, pre_nms_topk: int,
                       post_nms_topk: int, nms_iou: float, min_size: float = 0.0):
    """Returns ``(proposals [B, post_nms_topk, 4], valid [B, post_nms_topk] bool)``, no gradient.

    ``logits``/``deltas`` are the RPN outputs with levels concatenated in ``LEVELS`` order;
    ``anchors_per_level`` maps level -> [N_l, 4].
    """
    logits = tf.stop_gradient(logits)
    deltas = tf.stop_gradient(deltas)
    height, width = valid_image_size(image_info)
    height, width = height[:, None], width[:, None]
    level_boxes, level_scores = [], []
    start = 0
    # Offsetting each level's boxes apart makes one NMS call act per level.
    offset_step = tf.cast(tf.maximum(tf.reduce_max(height), tf.reduce_max(width)), tf.float32) + 1.0
    for i, level in enumerate(LEVELS):
        anchors = anchors_per_level[level]
        n = int(anchors.shape[0])
        k = min(pre_nms_topk, n)
        scores, idx = tf.math.top_k(logits[:, start:start + n], k=k, sorted=False)
        lvl_deltas = tf.gather(deltas[:, start:start + n], idx, batch_dims=1)
        lvl_anchors = tf.gather(anchors, idx)
        boxes = box_ops.clip_boxes(box_ops.decode(lvl_deltas, lvl_anchors), height, width)
        # Empty boxes (anchors in the padding clip to zero area) and boxes under min_size
        # get -inf, which non_max_suppression never selects.
        h, w = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        size_ok = (h > 0) & (w > 0) & (h >= min_size) & (w >= min_size)
        scores = tf.where(size_ok, scores, float("-inf"))
        level_boxes.append(boxes + offset_step * i)
        level_scores.append(scores)
        start += n
    boxes = tf.concat(level_boxes, axis=1)
    scores = tf.concat(level_scores, axis=1)
    topk = min(post_nms_topk, int(boxes.shape[1]))
    selected, num_valid = _batched_nms(boxes, scores, topk, nms_iou)
    valid = tf.range(topk)[None, :] < num_valid[:, None]
    proposals = tf.gather(boxes, selected, batch_dims=1)
    level_index = tf.floor(proposals[..., :1] / offset_step)
    proposals = proposals - level_index * offset_step  # undo the per-level offset
    proposals = tf.where(valid[..., None], proposals, 0.0)
    if topk < post_nms_topk:
        pad = post_nms_topk - topk
        proposals = tf.pad(proposals, [[0, 0], [0, pad], [0, 0]])
        valid = tf.pad(valid, [[0, 0], [0, pad]])
    return tf.stop_gradient(proposals), valid
