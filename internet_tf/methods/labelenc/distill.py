"""The LabelEnc distillation loss (Hao et al. 2020, appendix Eq. 1's L_dis).

Both pyramids — the student adapt(FPN(I)) and the teacher FPN_h(h(y)) — go through a
parameter-free layer norm per sample and level: mean and (biased) variance over (H, W, C),
x -> (x - mean) / sqrt(var + eps), i.e. GroupNorm with one group and no affine, with
eps = 1e-5 (``LAYER_NORM_EPSILON``, the default of the authors' ``nn.GroupNorm``). The
teacher is detached (``tf.stop_gradient``). All levels are flattened and concatenated into
one vector per sample and a single mean-squared error is taken over all of them, so each
level weighs by its element count (P2 dominates). The concatenation is never materialised:
the MSE is the sum of squared differences over every level / the total element count.

Distribution strategies (docs/conventions.md, "Losses under a distribution strategy"):
the loss is ``Σ over this replica's elements / element count over the global batch``
(``ops.replica.global_mean``), so the replicas' losses and gradients add up to the
single-device MSE of the whole batch; with one replica it is the plain MSE.
"""
from __future__ import annotations

import tensorflow as tf

from internet_tf.ops.replica import global_mean

LAYER_NORM_EPSILON = 1e-5


def layer_norm(x, epsilon: float = LAYER_NORM_EPSILON):
    """Parameter-free normalisation of each sample of ``x`` [B, H, W, C] over (H, W, C)."""
    mean, variance = tf.nn.moments(x, axes=[1, 2, 3], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon)


def distillation_loss(student_pyramid: dict, teacher_pyramid: dict,
                      epsilon: float = LAYER_NORM_EPSILON):
    """MSE between the layer-normalised pyramids (same levels, same shapes) -> scalar float32.

    ``student_pyramid``/``teacher_pyramid``: {level: [B, H_l, W_l, C]}; gradients flow to
    the student only.
    """
    if set(student_pyramid) != set(teacher_pyramid) or not student_pyramid:
        raise ValueError(f"distillation needs the same non-empty levels, got {sorted(student_pyramid)} "
                         f"and {sorted(teacher_pyramid)}")
    total, count = 0.0, 0.0
    for level in sorted(student_pyramid):
        student = layer_norm(tf.cast(student_pyramid[level], tf.float32), epsilon)
        teacher = layer_norm(tf.stop_gradient(tf.cast(teacher_pyramid[level], tf.float32)), epsilon)
        total += tf.reduce_sum(tf.math.squared_difference(student, teacher))
        count += tf.cast(tf.size(student, out_type=tf.int64), tf.float32)
    return global_mean(total, count)
