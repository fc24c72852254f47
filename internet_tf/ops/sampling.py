"""IoU matching and balanced sampling for Faster R-CNN targets (Lin et al. 2017).

`match` is the Faster R-CNN / Detectron matcher (positive / ignore / negative by IoU
thresholds, plus the "low-quality" rule that makes the best anchor(s) of every ground-truth
box positive). `balanced_sample` draws a fixed-size minibatch with a bounded positive
fraction (Ren et al. 2015, Sec. 3.1.3). Everything is batched `[B, ...]`, vectorised
(random scores + `tf.math.top_k`, no loop over the batch) and works in `tf.function`.
"""
import tensorflow as tf


def gather_rows(params, indices):
    """Per-image gather: `params [B, N, ...]`, `indices [B, K]` -> `[B, K, ...]`.

    Negative indices (padding) are clamped to 0, so the rows they produce are arbitrary
    valid rows; callers mask them.
    """
    indices = tf.maximum(tf.cast(indices, tf.int32), 0)
    return tf.gather(params, indices, batch_dims=1)


def match(similarity, gt_valid, pos_threshold, neg_threshold, allow_low_quality):
    """Match every row (anchor / proposal) of `similarity [B, N, M]` to a ground-truth column.

    Returns `(matched_idx int32 [B, N], labels int32 [B, N])`: labels 1 if the best valid
    IoU >= pos_threshold, 0 if < neg_threshold, -1 (ignore) in between. Invalid columns
    (`gt_valid [B, M]` False) never match; an image without valid gt is all 0, index 0.
    `allow_low_quality`: for every valid gt whose best IoU is > 0, all rows reaching that
    best IoU (ties included) become positive and are matched to *that* gt (if a row is the
    best of several gts, the one with the highest IoU wins, then the lowest index).
    """
    similarity = tf.convert_to_tensor(similarity)
    gt_valid = tf.cast(gt_valid, tf.bool)
    if similarity.shape[-1] == 0:
        zeros = tf.zeros_like(similarity[..., 0], dtype=tf.int32)
        return zeros, zeros
    # Invalid columns get -1 < any real IoU, so they never win an argmax.
    sim = tf.where(gt_valid[:, None, :], similarity, tf.cast(-1.0, similarity.dtype))
    max_iou = tf.reduce_max(sim, axis=2)  # [B, N]
    matched_idx = tf.argmax(sim, axis=2, output_type=tf.int32)
    labels = tf.where(max_iou >= pos_threshold, 1,
                      tf.where(max_iou < neg_threshold, 0, -1))
    labels = tf.cast(labels, tf.int32)

    if allow_low_quality:
        gt_best = tf.reduce_max(sim, axis=1, keepdims=True)  # [B, 1, M]
        is_best = ((sim == gt_best) & (gt_best > 0.0) & gt_valid[:, None, :])  # [B, N, M]
        low_quality = tf.reduce_any(is_best, axis=2)
        best_sim = tf.where(is_best, sim, tf.cast(-1.0, sim.dtype))
        lq_idx = tf.argmax(best_sim, axis=2, output_type=tf.int32)
        matched_idx = tf.where(low_quality, lq_idx, matched_idx)
        labels = tf.where(low_quality, 1, labels)

    any_valid = tf.reduce_any(gt_valid, axis=1, keepdims=True)  # [B, 1]
    labels = tf.where(any_valid, labels, 0)
    matched_idx = tf.where(any_valid, matched_idx, 0)
    return matched_idx, labels


def random_subset(mask, k, seed=None):
    """Choose up to `k` entries of each row of `mask [B, N]` uniformly at random.

    Returns `(indices int32 [B, k'], valid bool [B, k'])` with `k' = min(k, N)` (N static)
    and the valid (chosen) entries first in every row; invalid entries' indices are
    arbitrary. A uniformly random score per entry, -1 outside the mask, then `top_k`.
    """
    mask = tf.cast(mask, tf.bool)
    n = mask.shape[1]
    k = int(k)
    if n is not None:
        k = min(k, n)
    scores = tf.random.uniform(tf.shape(mask), 0.0, 1.0, seed=seed)
    scores = tf.where(mask, scores, -1.0)
    values, indices = tf.math.top_k(scores, k=k, sorted=True)
    return indices, values >= 0.0


def indices_to_mask(indices, valid, n):
    """Scatter `indices [B, K]` where `valid [B, K]` into a bool mask `[B, n]` (n: int)."""
    batch = tf.shape(indices)[0]
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(indices))
    coords = tf.stack([rows, tf.cast(indices, tf.int32)], axis=-1)
    counts = tf.scatter_nd(coords, tf.cast(valid, tf.int32), tf.stack([batch, n]))
    out = counts > 0
    out.set_shape([indices.shape[0], n])
    return out


def balanced_sample(pos_mask, neg_mask, num_samples: int, positive_fraction: float,
                    seed=None):
    """Sample a minibatch per image from `pos_mask`, `neg_mask` (bool `[B, N]`).

    At most `floor(num_samples * positive_fraction)` positives uniformly at random among
    `pos_mask`; negatives (uniformly among `neg_mask & ~pos_mask`) fill up to
    `num_samples` in total. Returns `(sampled_pos, sampled_neg)` bool `[B, N]`.
    """
    pos_mask = tf.cast(pos_mask, tf.bool)
    neg_mask = tf.cast(neg_mask, tf.bool) & ~pos_mask
    n = pos_mask.shape[1]
    if n is None:
        raise ValueError("balanced_sample needs a static number of entries N")
    max_pos = int(num_samples * positive_fraction + 1e-6)  # floor, robust to 0.1*10=0.999..
    pos_idx, pos_valid = random_subset(pos_mask, max_pos, seed)
    num_pos = tf.reduce_sum(tf.cast(pos_valid, tf.int32), axis=1, keepdims=True)
    neg_seed = None if seed is None else seed + 1
    neg_idx, neg_valid = random_subset(neg_mask, num_samples, neg_seed)
    rank = tf.range(tf.shape(neg_idx)[1])[None, :]
    neg_valid &= rank < (num_samples - num_pos)
    return indices_to_mask(pos_idx, pos_valid, n), indices_to_mask(neg_idx, neg_valid, n)
