"""The intertwiner loss (paper Eq. 3; Table 2b): D between each small-set critic
feature and its class's buffer representative, averaged over a level's small set."""
from __future__ import annotations

import tensorflow as tf

from internet_tf.config import check_choice
from internet_tf.ops.replica import global_mean


def intertwiner_distance(small, reference, kind: str = "l2", eps: float = 1e-6):
    """Eq. 3's D between rows of ``small`` [N, D] and their class representatives [N, D] -> [N].

    ``l2``/``l1`` average the squared/absolute difference over the D feature dimensions (the
    mean-reduced MSE/L1 of the authors' code), so the loss scale does not grow with D; ``kl``
    is a proper KL divergence of the two features normalised to sum 1.
    """
    check_choice("model.intertwiner.loss", kind)
    if kind == "l2":
        return tf.reduce_mean(tf.square(small - reference), axis=-1)
    if kind == "l1":
        return tf.reduce_mean(tf.abs(small - reference), axis=-1)
    f = small / (tf.reduce_sum(small, axis=-1, keepdims=True) + eps)  # kl
    b = reference / (tf.reduce_sum(reference, axis=-1, keepdims=True) + eps)
    return tf.reduce_sum(b * (tf.math.log(b + eps) - tf.math.log(f + eps)), axis=-1)


def level_loss(critic_small, classes, small_mask, reps, valid, kind: str):
    """Mean of D over the small set's RoIs whose class has a buffer entry (0 if none; never NaN).

    ``critic_small`` [B, R, D], ``classes``/``small_mask`` [B, R], ``reps`` [K+1, D], ``valid`` [K+1].
    """
    idx = tf.where(small_mask)
    feats = tf.cast(tf.gather_nd(critic_small, idx), tf.float32)  # the loss is float32 under a mixed policy
    labels = tf.gather_nd(classes, idx)
    weight = tf.cast(tf.gather(valid, labels), feats.dtype)
    dist = intertwiner_distance(feats, tf.gather(reps, labels), kind)
    return global_mean(tf.reduce_sum(dist * weight), tf.reduce_sum(weight))
