"""Mechanism check: do small-object features sit near their class's large-object features?

Tests the claim of paper Fig. 1 / Sec. 3 (the intertwiner pulls small-object features toward
the reliable large-object features of the same class) on a trained detector:

* ``extract_features``: the features the classifier and box regressor see
  (``Detector.predictor_features``) for every valid ground-truth box of the validation
  images, with each box's label and area in original image pixels.
* ``size_masks``: COCOeval's small / large split of those areas.
* ``feature_separation``: mean distance of small features to their own class's
  large-feature centroid over the mean distance to the other classes' centroids (lower is
  better).
* ``tsne_plot``: a t-SNE picture of the small and large features (optional extra:
  scikit-learn and matplotlib).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

# COCOeval's area ranges (pycocotools ``Params.areaRng``); both ends are inclusive there.
SMALL_MAX_AREA = 32.0 ** 2
LARGE_MIN_AREA = 96.0 ** 2
_EXACT_TSNE_MAX_POINTS = 200


class ExtractedFeatures(NamedTuple):
    features: np.ndarray   # float32 [N, D]
    labels: np.ndarray     # int32 [N], 1..K
    areas: np.ndarray      # float32 [N], box area in original image pixels
    num_images: int        # images read


def size_masks(areas) -> tuple[np.ndarray, np.ndarray]:
    """(is_small, is_large) as COCOeval splits APs / APl: area <= 32² and area >= 96².

    COCOeval tests ``area < lo or area > hi`` to ignore a box, so both ends of its ranges are
    inclusive (an area of exactly 32² counts as small and as medium there)."""
    areas = np.asarray(areas, np.float64)
    return areas <= SMALL_MAX_AREA, areas >= LARGE_MIN_AREA


def _check_inputs(features, labels, is_small, is_large):
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    is_small = np.asarray(is_small, bool)
    is_large = np.asarray(is_large, bool)
    if features.ndim != 2:
        raise ValueError(f"features must be [N, D], got shape {features.shape}")
    n = features.shape[0]
    for name, arr in (("labels", labels), ("is_small", is_small), ("is_large", is_large)):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match features, got {arr.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    both = is_small & is_large
    if both.any():
        raise ValueError(f"{int(both.sum())} samples are marked both small and large")
    return features, labels.astype(np.int64), is_small, is_large


def feature_separation(features, labels, is_small, is_large) -> dict:
    """Small-to-own-class-large-centroid over small-to-other-class-centroid distance.

    The classes used are those with at least one small and one large sample; each has a
    centroid, the mean of its LARGE features. For a small sample ``i`` of such a class,
    ``own_i = ||f_i - centroid_{y_i}||`` and ``other_i`` is the mean of
    ``||f_i - centroid_c||`` over the other classes ``c`` used. Then::

        ratio = mean_i own_i / mean_i other_i      (over all small samples of those classes)

    Lower is better: below 1, small features lie closer to their own class's large features
    than to other classes'. Samples that are neither small nor large (medium) are ignored,
    and so are the samples of classes lacking a small or a large sample.

    Returns ``{"ratio", "own_distance" (mean own_i), "other_distance" (mean other_i),
    "num_small", "num_large" (samples of the classes used), "classes" (sorted labels),
    "per_class": {label: {"own", "other", "num_small", "num_large"}}}``.

    Raises ValueError when fewer than two classes have both a small and a large sample.
    """
    features, labels, is_small, is_large = _check_inputs(features, labels, is_small, is_large)
    present = np.unique(labels[is_small | is_large])
    counts = {int(c): (int(np.sum(is_small & (labels == c))), int(np.sum(is_large & (labels == c))))
              for c in present}
    classes = [c for c, (s, l) in counts.items() if s > 0 and l > 0]
    if len(classes) < 2:
        listed = ", ".join(f"class {c}: {s} small, {l} large" for c, (s, l) in counts.items())
        raise ValueError(
            f"the small/large distance ratio needs at least 2 classes with both a small and a "
            f"large sample, got {len(classes)} ({int(is_small.sum())} small and "
            f"{int(is_large.sum())} large samples in all; {listed or 'no small or large samples'})")
    centroids = np.stack([features[is_large & (labels == c)].mean(axis=0) for c in classes])
    used = is_small & np.isin(labels, classes)
    small = features[used]
    small_labels = labels[used]
    # [S, C]: distance of every used small sample to every centroid.
    dist = np.linalg.norm(small[:, None, :] - centroids[None, :, :], axis=-1)
    own_col = np.searchsorted(classes, small_labels)
    rows = np.arange(len(small))
    own = dist[rows, own_col]
    other = (dist.sum(axis=1) - own) / (len(classes) - 1)
    per_class = {}
    for k, c in enumerate(classes):
        mine = own_col == k
        per_class[c] = {"own": float(own[mine].mean()), "other": float(other[mine].mean()),
                        "num_small": counts[c][0], "num_large": counts[c][1]}
    return {
        "ratio": float(own.mean() / other.mean()),
        "own_distance": float(own.mean()),
        "other_distance": float(other.mean()),
        "num_small": int(used.sum()),
        "num_large": int(sum(counts[c][1] for c in classes)),
        "classes": list(classes),
        "per_class": per_class,
    }


def extract_features(model, dataset, max_images: int | None = None) -> ExtractedFeatures:
    """Predictor features of the ground-truth boxes of ``dataset``'s batches.

    ``dataset`` yields evaluation batches (``data.datasets.eval_dataset``, or any iterable of
    dicts with ``images`` [B, S, S, 3], ``gt_boxes`` [B, M, 4] yxyx input pixels,
    ``gt_classes`` [B, M] padded with -1, ``image_info`` [B, 4] = (h, w, scale, id)). The
    valid boxes (class > 0) of each image are the RoIs of ``model.predictor_features``;
    each batch's RoIs are padded with zero boxes to its largest count and the padded rows
    dropped. Reads at most ``max_images`` images (all when None).

    Areas are those of the boxes in original image pixels (input-pixel area / scale²), not
    the annotations' ``area`` that COCOeval uses (a segment's pixel area in COCO); for
    rectangles the two agree, for other shapes the box area is at least the segment area.
    """
    # TensorFlow (and graph.jit, which imports it) only here: internet-mechanism imports this module before TF starts
    import tensorflow as tf

    from internet_tf.graph.jit import TRACE

    size = model.image_size
    # None batch and RoI dimensions: every batch size and box count reuses one trace.
    features_of = tf.function(model.predictor_features, input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32),
        tf.TensorSpec([None, None, 4], tf.float32)], **TRACE)
    feats, labels, areas = [], [], []
    seen = 0
    for batch in dataset:
        images = batch["images"]
        boxes = np.asarray(batch["gt_boxes"], np.float32)
        classes = np.asarray(batch["gt_classes"])
        scale = np.asarray(batch["image_info"], np.float32)[:, 2]
        count = len(boxes)
        if max_images is not None:
            count = min(count, max_images - seen)
            if count <= 0:
                break
        valid = classes[:count] > 0
        per_image = valid.sum(axis=1)
        rois = np.zeros([count, max(int(per_image.max(initial=0)), 1), 4], np.float32)
        for i in range(count):
            rois[i, :per_image[i]] = boxes[i][valid[i]]
        out = features_of(tf.cast(images[:count], tf.float32), tf.constant(rois)).numpy()
        keep = np.arange(rois.shape[1])[None, :] < per_image[:, None]
        feats.append(out[keep])
        labels.append(classes[:count][valid])
        hw = boxes[:count][valid]
        box_area = (hw[:, 2] - hw[:, 0]) * (hw[:, 3] - hw[:, 1])
        img_scale = np.broadcast_to(scale[:count, None], valid.shape)[valid]
        areas.append(box_area / np.square(img_scale))
        seen += count
        if max_images is not None and seen >= max_images:
            break
    if not feats:
        return ExtractedFeatures(np.zeros([0, 0], np.float32), np.zeros([0], np.int32),
                                 np.zeros([0], np.float32), seen)
    return ExtractedFeatures(np.concatenate(feats).astype(np.float32),
                             np.concatenate(labels).astype(np.int32),
                             np.concatenate(areas).astype(np.float32), seen)


def require_tsne():
    """Imports the optional t-SNE extra (scikit-learn, matplotlib) or raises ImportError
    saying what to install."""
    try:
        import matplotlib  # noqa: F401
        from sklearn.manifold import TSNE
    except ImportError as e:
        raise ImportError(
            f"the t-SNE plot needs scikit-learn and matplotlib ({e}); "
            "pip install scikit-learn matplotlib (or pip install 'internet-tf[tsne]')") from e
    return TSNE


def tsne_plot(features, labels, is_small, is_large, class_names, path: str, seed: int = 0,
              max_points: int = 2000) -> str:
    """Writes a 2-D t-SNE of the small and large features to ``path`` (PNG); returns ``path``.

    Colour = class (``class_names[label]``), small: hollow circles, large: filled triangles;
    medium samples are left out. At most ``max_points`` samples (a seeded random subset);
    the title gives ``feature_separation``'s ratio on all the samples.
    """
    TSNE = require_tsne()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    features, labels, is_small, is_large = _check_inputs(features, labels, is_small, is_large)
    try:
        ratio = f"{feature_separation(features, labels, is_small, is_large)['ratio']:.3f}"
    except ValueError:
        ratio = "undefined"
    chosen = np.flatnonzero(is_small | is_large)
    if len(chosen) < 2:
        raise ValueError(f"t-SNE needs at least 2 small or large samples, got {len(chosen)}")
    rng = np.random.default_rng(seed)
    if len(chosen) > max_points:
        chosen = np.sort(rng.choice(chosen, max_points, replace=False))
    perplexity = float(min(30.0, max(1.0, (len(chosen) - 1) / 3.0)))
    # Exact gradients for few points: fast, and unlike Barnes-Hut's OpenMP threads not
    # slowed many-fold on a busy machine.
    method = "exact" if len(chosen) <= _EXACT_TSNE_MAX_POINTS else "barnes_hut"
    xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca",
              method=method).fit_transform(features[chosen])
    fig = Figure(figsize=(7, 6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sub_labels, sub_small = labels[chosen], is_small[chosen]
    for k, c in enumerate(np.unique(sub_labels)):
        colour = f"C{k % 10}"
        name = class_names[c] if 0 <= c < len(class_names) else str(c)
        small = (sub_labels == c) & sub_small
        large = (sub_labels == c) & ~sub_small
        ax.scatter(xy[small, 0], xy[small, 1], marker="o", facecolors="none", edgecolors=colour,
                   s=24, label=f"{name} small")
        ax.scatter(xy[large, 0], xy[large, 1], marker="^", color=colour, s=30,
                   label=f"{name} large")
    ax.set_title(f"t-SNE of predictor features: small/large distance ratio {ratio}\n"
                 "(own-class large centroid / other classes; lower is better)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    return path
