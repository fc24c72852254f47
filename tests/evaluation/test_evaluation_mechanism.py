"""The Fig. 1 mechanism check: the small/large distance ratio on hand-built features whose
answer is worked out by hand, the COCO size split, feature extraction from ground-truth boxes
on a tiny untrained model, and the t-SNE picture."""
import sys

import numpy as np
import pytest
import tensorflow as tf
import tiny
from PIL import Image

from internet_tf.evaluation.mechanism import (extract_features, feature_separation, size_masks,
                                              tsne_plot)
from internet_tf.assembly.factory import build_model

pytestmark = pytest.mark.cost(10)  # seconds in make test (tests/conftest.py schedules by it)


def _samples(*rows):
    """rows of (x, y, label, 's' | 'l' | 'm') -> features, labels, is_small, is_large."""
    feats = np.array([[x, y] for x, y, _, _ in rows], np.float32)
    labels = np.array([c for _, _, c, _ in rows])
    sizes = np.array([s for _, _, _, s in rows])
    return feats, labels, sizes == "s", sizes == "l"


# Class 0's large features average to (0, 0), class 1's to (10, 0).
LARGE = [(-1, 0, 0, "l"), (1, 0, 0, "l"), (10, 1, 1, "l"), (10, -1, 1, "l")]


def test_ratio_by_hand_two_classes():
    # The small class-0 sample at (1, 0): 1 from its own centroid, 9 from class 1's.
    # The small class-1 sample at (10, 3): 3 from its own centroid, sqrt(109) from class 0's.
    result = feature_separation(*_samples(*LARGE, (1, 0, 0, "s"), (10, 3, 1, "s")))
    other1 = np.sqrt(109.0)
    assert result["own_distance"] == pytest.approx(2.0)
    assert result["other_distance"] == pytest.approx((9 + other1) / 2)
    assert result["ratio"] == pytest.approx(2.0 / ((9 + other1) / 2))
    assert result["num_small"] == 2 and result["num_large"] == 4 and result["classes"] == [0, 1]
    assert result["per_class"][0] == pytest.approx({"own": 1.0, "other": 9.0, "num_small": 1,
                                                    "num_large": 2})
    assert result["per_class"][1] == pytest.approx({"own": 3.0, "other": other1, "num_small": 1,
                                                    "num_large": 2})


def test_ratio_one_ninth_and_classes_without_small_samples_are_left_out():
    # Class 1 has only a large sample here, so no centroid: only classes 0 and 2 count.
    rows = [(-1, 0, 0, "l"), (1, 0, 0, "l"), (50, 50, 1, "l"), (10, 0, 2, "l"),
            (1, 0, 0, "s"), (10, 0, 2, "s")]
    result = feature_separation(*_samples(*rows))
    assert result["classes"] == [0, 2]
    assert result["per_class"][0]["own"] == pytest.approx(1.0)
    assert result["per_class"][0]["other"] == pytest.approx(9.0)
    assert result["per_class"][2] == pytest.approx({"own": 0.0, "other": 10.0, "num_small": 1,
                                                    "num_large": 1})
    assert result["ratio"] == pytest.approx((1 + 0) / 2 / ((9 + 10) / 2))
    assert result["num_large"] == 3  # class 1's large sample is not counted
    # One small sample per class, each 1 from its own centroid and 9 from the other's.
    only = feature_separation(*_samples(*LARGE, (1, 0, 0, "s"), (9, 0, 1, "s")))
    assert only["ratio"] == pytest.approx(1 / 9)
    assert (only["own_distance"], only["other_distance"]) == pytest.approx((1.0, 9.0))


def test_three_classes_average_the_other_centroids():
    rows = [(0, 0, 0, "l"), (10, 0, 1, "l"), (0, 10, 2, "l"), (0, 1, 0, "s"), (10, 0, 1, "s"),
            (0, 10, 2, "s")]
    result = feature_separation(*_samples(*rows))
    assert result["per_class"][0]["other"] == pytest.approx((np.sqrt(101) + 9) / 2)
    assert result["per_class"][1]["other"] == pytest.approx((10 + np.sqrt(200)) / 2)
    assert result["own_distance"] == pytest.approx(1 / 3)


def test_small_features_at_the_other_class_centroid_give_a_ratio_above_one():
    result = feature_separation(*_samples(*LARGE, (9, 0, 0, "s"), (1, 0, 1, "s")))
    assert result["per_class"][0] == pytest.approx({"own": 9.0, "other": 1.0, "num_small": 1,
                                                    "num_large": 2})
    assert result["ratio"] == pytest.approx(9.0) and result["ratio"] > 1


def test_medium_samples_are_ignored():
    base = [*LARGE, (1, 0, 0, "s"), (10, 3, 1, "s")]
    medium = [(100, 100, 0, "m"), (-40, 7, 1, "m"), (3, 3, 5, "m")]
    with_medium = feature_separation(*_samples(*base, *medium))
    assert with_medium == feature_separation(*_samples(*base))


def test_undefined_ratio_raises_with_the_counts():
    with pytest.raises(ValueError, match=r"at least 2 classes .* got 1") as err:
        feature_separation(*_samples(*LARGE, (1, 0, 0, "s"), (10, 0, 1, "m")))
    assert "class 0: 1 small, 2 large" in str(err.value)
    assert "class 1: 0 small, 2 large" in str(err.value)
    with pytest.raises(ValueError, match="got 0"):
        feature_separation(*_samples((1, 0, 0, "m"), (2, 0, 1, "m")))
    with pytest.raises(ValueError, match="both small and large"):
        feature_separation(np.zeros([1, 2]), np.array([0]), np.array([True]), np.array([True]))
    with pytest.raises(ValueError, match="labels must have shape"):
        feature_separation(np.zeros([2, 2]), np.array([0]), np.zeros(2, bool), np.zeros(2, bool))


def test_size_masks_follow_cocoeval_inclusive_ranges():
    small, large = size_masks([10.0, 32.0 ** 2, 32.0 ** 2 + 1, 96.0 ** 2 - 1, 96.0 ** 2, 1e6])
    assert small.tolist() == [True, True, False, False, False, False]
    assert large.tolist() == [False, False, False, False, True, True]


# -- extract_features on a tiny untrained model -----------------------------------------
SIZE = 128  # tests/tiny.yaml's model.image_size


@pytest.fixture(scope="module")
def tiny_model():
    tf.keras.utils.set_random_seed(3)
    cfg = tiny.config()
    assert cfg.model.image_size == SIZE
    model = build_model(cfg.model, num_classes=3)
    model.build_all()
    return model


def _hand_batches():
    """Two batches: 2 images (2 and 1 valid boxes, a class-0 row, -1 padding), then 1 image
    with 3 valid boxes. Scales 0.5, 1.0 and 0.25 (originals 256, 128 and 512 px)."""
    rng = np.random.default_rng(0)
    boxes = np.full([2, 4, 4], -1.0, np.float32)
    classes = np.full([2, 4], -1, np.int32)
    boxes[0, :3] = [[10, 12, 60, 80], [0, 0, 8, 8], [70, 20, 120, 60]]
    classes[0, :3] = [2, 0, 1]
    boxes[1, 0] = [30, 30, 90, 110]
    classes[1, 0] = 3
    first = {"images": tf.constant(rng.uniform(0, 255, [2, SIZE, SIZE, 3]), tf.float32),
             "gt_boxes": tf.constant(boxes), "gt_classes": tf.constant(classes),
             "image_info": tf.constant([[256, 200, 0.5, 1], [128, 128, 1.0, 2]], tf.float32)}
    second = {"images": tf.constant(rng.uniform(0, 255, [1, SIZE, SIZE, 3]), tf.float32),
              "gt_boxes": tf.constant([[[0, 0, 128, 128], [5, 5, 9, 13], [40, 40, 72, 56]]],
                                      tf.float32),
              "gt_classes": tf.constant([[1, 1, 2]], tf.int32),
              "image_info": tf.constant([[512, 400, 0.25, 3]], tf.float32)}
    return [first, second]


def test_extract_features_uses_only_valid_ground_truth_boxes(tiny_model):
    batches = _hand_batches()
    out = extract_features(tiny_model, batches)
    assert out.num_images == 3
    assert out.labels.tolist() == [2, 1, 3, 1, 1, 2]
    d = out.features.shape[1]
    assert out.features.shape == (6, d) and d > 0 and np.all(np.isfinite(out.features))
    # Areas in original pixels: input-pixel area / scale².
    expected = [50 * 68 / 0.25, 50 * 40 / 0.25, 60 * 80 / 1.0,
                128 * 128 / 0.0625, 4 * 8 / 0.0625, 32 * 16 / 0.0625]
    np.testing.assert_allclose(out.areas, expected, rtol=1e-6)
    small, large = size_masks(out.areas)
    assert small.tolist() == [False, False, False, False, True, False]
    assert large.tolist() == [True, False, False, True, False, False]

    # Each row is the feature of its own box alone: padding and batching change nothing.
    rows = [(0, 0, 0), (0, 0, 2), (0, 1, 0), (1, 0, 0), (1, 0, 1), (1, 0, 2)]
    for n, (b, i, m) in enumerate(rows):
        batch = batches[b]
        alone = tiny_model.predictor_features(batch["images"][i:i + 1],
                                              batch["gt_boxes"][i:i + 1, m:m + 1])
        np.testing.assert_allclose(out.features[n], alone.numpy()[0, 0], rtol=1e-4, atol=1e-5)


def test_extract_features_stops_after_max_images(tiny_model):
    out = extract_features(tiny_model, _hand_batches(), max_images=1)
    assert out.num_images == 1 and out.labels.tolist() == [2, 1]
    out = extract_features(tiny_model, _hand_batches(), max_images=2)
    assert out.num_images == 2 and out.labels.tolist() == [2, 1, 3]
    full = extract_features(tiny_model, _hand_batches())
    np.testing.assert_allclose(out.features, full.features[:3], rtol=1e-5, atol=1e-6)


# -- the t-SNE picture --------------------------------------------------------------------
def _clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, [3, 8])
    labels = np.repeat([1, 2, 3], 20)
    feats = centres[labels - 1] + rng.normal(0, 1, [60, 8])
    sizes = np.tile(["s", "m", "l", "l"], 15)
    return feats, labels, sizes == "s", sizes == "l"


def test_tsne_plot_writes_a_png(tmp_path):
    feats, labels, small, large = _clusters()
    path = tsne_plot(feats, labels, small, large, ["background", "a", "b", "c"],
                     str(tmp_path / "tsne.png"), max_points=25)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # something was drawn


def test_tsne_plot_without_scikit_learn_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # makes the import fail
    feats, labels, small, large = _clusters()
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        tsne_plot(feats, labels, small, large, ["bg", "a", "b", "c"], str(tmp_path / "t.png"))
    assert not (tmp_path / "t.png").exists()
