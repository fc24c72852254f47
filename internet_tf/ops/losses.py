"""Detection losses (Lin et al. 2017; Eq. 5's L_standard): RPN objectness (sigmoid cross-entropy)
and box (smooth-L1, beta 1/9) over the 256 sampled anchors; head classification (softmax
cross-entropy) and class-specific box regression (smooth-L1, beta 1) over sampled RoIs.
Both box losses are normalised by the number of sampled examples — of the global batch
under a distribution strategy (``ops.replica.global_count``).
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops.replica import global_count


def smooth_l1(diff, beta: float):
    absd = tf.abs(diff)
    if beta <= 0:
        return absd
    return tf.where(absd < beta, 0.5 * absd * absd / beta, absd - 0.5 * beta)


def rpn_losses(logits, deltas, targets, *, beta: float = 1.0 / 9.0):
    """``targets`` from ``ops.targets.rpn_targets`` (labels 1/0/-1, deltas)."""
    labels = targets["labels"]
    sampled = tf.cast(labels >= 0, tf.float32)
    positive = tf.cast(labels > 0, tf.float32)
    normaliser = global_count(tf.reduce_sum(sampled))
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=positive, logits=logits)
    cls_loss = tf.reduce_sum(bce * sampled) / normaliser
    box = tf.reduce_sum(smooth_l1(deltas - targets["deltas"], beta), axis=-1)
    box_loss = tf.reduce_sum(box * positive) / normaliser
    return {"rpn_class": cls_loss, "rpn_box": box_loss}


def head_losses(class_logits, box_deltas, targets, *, beta: float = 1.0):
    """``targets`` from ``ops.targets.roi_targets`` (classes 0..K or -1 padding, deltas)."""
    classes = targets["classes"]
    valid = tf.cast(classes >= 0, tf.float32)
    foreground = tf.cast(classes > 0, tf.float32)
    normaliser = global_count(tf.reduce_sum(valid))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(classes, 0), logits=class_logits)
    cls_loss = tf.reduce_sum(ce * valid) / normaliser
    # Deltas of each RoI's own ground-truth class (background rows are masked out).
    own = tf.gather(box_deltas, tf.maximum(classes - 1, 0), axis=2, batch_dims=2)
    box = tf.reduce_sum(smooth_l1(own - targets["deltas"], beta), axis=-1)
    box_loss = tf.reduce_sum(box * foreground) / normaliser
    return {"head_class": cls_loss, "head_box": box_loss}
