"""Training targets of Faster R-CNN + FPN (Ren et al. 2015; Lin et al. 2017):
the RPN targets and the head's RoI sampling.

`rpn_targets`: anchors vs. ground truth, IoU >= 0.7 positive, < 0.3 negative, plus the
best anchor of every gt; 256 anchors per image, at most half positive (Ren et al. 2015,
Sec. 3.1.2-3.1.3). `roi_targets`: proposals (+ the gt boxes) vs. ground truth, IoU >= 0.5
foreground, [0, 0.5) background, a fixed number of RoIs per image with at most 25%
foreground (Fast R-CNN, Girshick 2015, Sec. 2.3). A gt is valid iff its class is > 0.
All outputs are targets: they carry no gradient (`tf.stop_gradient`).
"""
import tensorflow as tf

from internet_tf.ops import boxes as box_ops
from internet_tf.ops import sampling


def trim_padding(gt_boxes, gt_classes):
    """``gt_boxes [B, M, 4]``, ``gt_classes [B, M]`` cut after the batch's last valid column
    (at least one column kept). The pipeline pads ground truth with −1 at the end up to
    ``data.max_instances`` (100 for COCO), so the anchors-vs-gt IoU ``[B, N, M]`` would
    mostly compare anchors with padding; the columns cut are all invalid, and the valid ones
    keep their indices, so every target is unchanged, and the IoU shrinks to the columns that
    hold boxes."""
    gt_boxes, gt_classes = tf.convert_to_tensor(gt_boxes), tf.convert_to_tensor(gt_classes)
    m = tf.shape(gt_classes)[1]
    position = tf.where(gt_classes > 0, tf.range(1, m + 1)[None, :], 0)
    keep = tf.maximum(tf.reduce_max(position), tf.minimum(m, 1))
    return gt_boxes[:, :keep], gt_classes[:, :keep]


def rpn_targets(anchors, gt_boxes, gt_classes, *, pos_iou=0.7, neg_iou=0.3,
                num_samples=256, positive_fraction=0.5, seed=None):
    """RPN objectness / box targets.

    Args: `anchors [N, 4]`, `gt_boxes [B, M, 4]`, `gt_classes [B, M]` (padding -1).
    Returns dict: `labels` int32 `[B, N]` (1 sampled positive, 0 sampled negative,
    -1 not sampled); `deltas` float32 `[B, N, 4]` encoded (weights 1, 1, 1, 1) against the
    matched gt, zero where the label is not 1.
    """
    anchors = tf.cast(anchors, tf.float32)
    gt_boxes, gt_classes = trim_padding(tf.cast(gt_boxes, tf.float32), gt_classes)
    gt_valid = gt_classes > 0
    similarity = box_ops.iou(anchors, gt_boxes)  # [B, N, M]
    matched_idx, labels = sampling.match(similarity, gt_valid, pos_iou, neg_iou,
                                         allow_low_quality=True)
    sampled_pos, sampled_neg = sampling.balanced_sample(
        labels == 1, labels == 0, num_samples, positive_fraction, seed=seed)
    out_labels = tf.where(sampled_pos, 1, tf.where(sampled_neg, 0, -1))
    matched_boxes = sampling.gather_rows(gt_boxes, matched_idx)  # [B, N, 4]
    deltas = box_ops.encode(matched_boxes, anchors[None])
    deltas = tf.where(sampled_pos[..., None], deltas, 0.0)
    return {"labels": tf.stop_gradient(tf.cast(out_labels, tf.int32)),
            "deltas": tf.stop_gradient(deltas)}


def roi_targets(proposals, proposal_valid, gt_boxes, gt_classes, *, num_samples=200,
                foreground_fraction=0.25, fg_iou=0.5, bg_iou_high=0.5, bg_iou_low=0.0,
                bbox_weights=(10.0, 10.0, 5.0, 5.0), add_gt_boxes=True, seed=None):
    """Sample `R = num_samples` RoIs per image and their box-head targets.

    Args: `proposals [B, P, 4]`, `proposal_valid [B, P]` bool, `gt_boxes [B, M, 4]`,
    `gt_classes [B, M]` (padding -1). With `add_gt_boxes` the valid gt boxes join the
    candidates. Foreground: best IoU with a valid gt >= fg_iou; background:
    bg_iou_low <= best IoU < bg_iou_high (best IoU is 0 in an image without gt). At most
    `round(num_samples * foreground_fraction)` foreground, background fills the rest, rows
    left over are padding. Rows are ordered: sampled fg, then bg, then padding.

    Returns dict (all `[B, R, ...]`): `rois` float32 (zeros for padding); `classes` int32
    (gt label for fg, 0 bg, -1 padding); `deltas` float32 encoded with `bbox_weights`
    against the matched gt (zeros unless fg); `matched_gt_index` int32 (index into M, -1
    unless fg); `matched_iou` float32 (best IoU for fg and bg, 0 for padding).
    """
    proposals = tf.cast(proposals, tf.float32)
    gt_boxes = tf.cast(gt_boxes, tf.float32)
    gt_valid = gt_classes > 0
    candidates, cand_valid = proposals, tf.cast(proposal_valid, tf.bool)
    if add_gt_boxes:
        candidates = tf.concat([candidates, gt_boxes], axis=1)
        cand_valid = tf.concat([cand_valid, gt_valid], axis=1)
    num_cand = candidates.shape[1]
    if num_cand is None:
        raise ValueError("roi_targets needs a static number of proposals")

    similarity = box_ops.iou(candidates, gt_boxes)  # [B, C, M]
    sim = tf.where(gt_valid[:, None, :], similarity, -1.0)
    matched_idx = tf.argmax(sim, axis=2, output_type=tf.int32)  # [B, C]
    best_iou = tf.maximum(tf.reduce_max(sim, axis=2), 0.0)  # 0 without valid gt
    has_gt = tf.reduce_any(gt_valid, axis=1, keepdims=True)
    is_fg = cand_valid & has_gt & (best_iou >= fg_iou)
    is_bg = cand_valid & ~is_fg & (best_iou >= bg_iou_low) & (best_iou < bg_iou_high)

    max_fg = int(round(num_samples * foreground_fraction))
    fg_idx, fg_ok = sampling.random_subset(is_fg, max_fg, seed)
    num_fg = tf.reduce_sum(tf.cast(fg_ok, tf.int32), axis=1, keepdims=True)
    bg_idx, bg_ok = sampling.random_subset(is_bg, num_samples,
                                           None if seed is None else seed + 1)
    bg_ok &= tf.range(tf.shape(bg_idx)[1])[None, :] < num_samples - num_fg

    # Order: valid fg (key = rank), valid bg (key = k_fg + rank), the rest last.
    k_fg, k_bg = fg_idx.shape[1], bg_idx.shape[1]
    big = k_fg + k_bg + num_samples
    keys = tf.concat([tf.where(fg_ok, tf.range(k_fg)[None, :], big),
                      tf.where(bg_ok, k_fg + tf.range(k_bg)[None, :], big)], axis=1)
    idx = tf.concat([fg_idx, bg_idx], axis=1)
    ok = tf.concat([fg_ok, bg_ok], axis=1)
    fg_flag = tf.concat([fg_ok, tf.zeros_like(bg_ok)], axis=1)
    pad = num_samples - (k_fg + k_bg)
    if pad > 0:  # fewer candidates than samples: append padding rows
        batch = tf.shape(idx)[0]
        keys = tf.concat([keys, tf.fill([batch, pad], big)], axis=1)
        idx = tf.concat([idx, tf.zeros([batch, pad], tf.int32)], axis=1)
        ok = tf.concat([ok, tf.zeros([batch, pad], tf.bool)], axis=1)
        fg_flag = tf.concat([fg_flag, tf.zeros([batch, pad], tf.bool)], axis=1)
    _, order = tf.math.top_k(-keys, k=num_samples, sorted=True)
    sel = sampling.gather_rows(idx, order)  # candidate index [B, R]
    ok = tf.gather(ok, order, batch_dims=1)
    fg = tf.gather(fg_flag, order, batch_dims=1)

    rois = tf.where(ok[..., None], sampling.gather_rows(candidates, sel), 0.0)
    gt_index = sampling.gather_rows(matched_idx, sel)
    gt_label = tf.cast(sampling.gather_rows(gt_classes, gt_index), tf.int32)
    classes = tf.where(fg, gt_label, tf.where(ok, 0, -1))
    matched_boxes = sampling.gather_rows(gt_boxes, gt_index)
    deltas = box_ops.encode(matched_boxes, rois, bbox_weights)
    deltas = tf.where(fg[..., None], deltas, 0.0)
    matched_iou = tf.where(ok, sampling.gather_rows(best_iou, sel), 0.0)
    return {"rois": tf.stop_gradient(rois),
            "classes": tf.stop_gradient(classes),
            "deltas": tf.stop_gradient(deltas),
            "matched_gt_index": tf.where(fg, gt_index, -1),
            "matched_iou": tf.stop_gradient(matched_iou)}
