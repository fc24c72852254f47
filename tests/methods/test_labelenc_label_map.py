"""Tests for internet_tf.methods.labelenc.label_map (LabelEnc's label map y): hand-checked
values, padding, the intensity augmentation, and a plain numpy reference."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.labelenc.label_map import label_map, random_intensity

# Box coordinates on half pixels so that pixel centres (i + 0.5) hit centres and edges exactly.
BOX_A = [0.5, 1.5, 8.5, 11.5]    # class 1: h 8, w 10, centre (y, x) = (4.5, 6.5) = pixel (4, 6)
BOX_B = [2.5, 5.5, 10.5, 13.5]   # class 1: h 8, w 8, centre (6.5, 9.5) = pixel (6, 9)
BOX_C = [10.5, 0.5, 14.5, 4.5]   # class 3: h 4, w 4, centre (12.5, 2.5) = pixel (12, 2)
PAD = [0.0, 0.0, 16.0, 16.0]     # a padding row with a real-looking box


def _map(boxes, classes, intensity=None, num_classes=3, size=16):
    return label_map(tf.constant(boxes, tf.float32), tf.constant(classes, tf.int32), num_classes,
                     size, size, None if intensity is None else tf.constant(intensity, tf.float32)).numpy()


def reference_label_map(boxes, classes, num_classes, height, width, intensity=None):
    """Direct 2-D formula per box and pixel centre, numpy float64."""
    boxes = np.asarray(boxes, np.float64)
    out = np.zeros((boxes.shape[0], height, width, num_classes))
    y, x = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    for b in range(boxes.shape[0]):
        for m in range(boxes.shape[1]):
            c = classes[b][m]
            ymin, xmin, ymax, xmax = boxes[b, m]
            if not 1 <= c <= num_classes or ymax <= ymin or xmax <= xmin:
                continue
            h, w = ymax - ymin, xmax - xmin
            v = 1.0 - np.maximum(np.abs(x - (xmin + xmax) / 2) / w, np.abs(y - (ymin + ymax) / 2) / h)
            v = np.where(v < 0.5, 0.0, v) * (1.0 if intensity is None else intensity[b][m])
            out[b, :, :, c - 1] = np.maximum(out[b, :, :, c - 1], v)
    return out


def test_two_overlapping_boxes_and_another_class_hand_checked():
    y = _map([[BOX_A, BOX_B, BOX_C, PAD]], [[1, 1, 3, -1]])
    assert y.shape == (1, 16, 16, 3) and y.dtype == np.float32
    a = y[0, :, :, 0]
    assert a[4, 6] == 1.0                        # A's centre
    assert a[0, 6] == 0.5 and a[0, 1] == 0.5     # A's top edge (y 0.5), top-left corner (x 1.5)
    assert a[2, 6] == 0.75                       # |y - cy| / h = 2 / 8
    assert a[9, 2] == 0.0                        # 1 - 5/8 = 0.375 < 0.5 below A (B not there)
    assert a[15, 15] == 0.0 and a[0, 0] == 0.0   # outside every box
    assert a[6, 9] == 1.0                        # B's centre (A gives 1 - 3/10 = 0.7 there)
    assert a[4, 9] == 0.75                       # overlap: max(A 0.7, B 1 - 2/8)
    assert a[4, 7] == 0.9                        # overlap: max(A 1 - 1/10, B 1 - 2/8)
    assert a[10, 9] == 0.5                       # B's bottom edge (y 10.5)
    np.testing.assert_array_equal(y[0, :, :, 1], 0.0)  # class 2: no box
    c = y[0, :, :, 2]
    assert c[12, 2] == 1.0 and c[10, 2] == 0.5 and c[12, 0] == 0.5 and c[11, 1] == 0.75
    assert np.count_nonzero(c) == 25 and c[9, 2] == 0.0  # 5 × 5 pixel centres in [10.5, 14.5]
    np.testing.assert_array_equal(y[0, 10:15, 0:5, :2], 0.0)  # C paints its own channel only


def test_padding_and_degenerate_rows_are_ignored_wherever_they_sit():
    clean = _map([[BOX_A, BOX_C]], [[1, 3]])
    # Padding (-1), background (0), a class above K and a zero-width box, in the middle and at the end.
    noisy = _map([[PAD, BOX_A, PAD, [2.0, 3.0, 9.0, 3.0], BOX_C, PAD, PAD]],
                 [[-1, 1, 0, 2, 3, 4, -1]])
    np.testing.assert_array_equal(noisy, clean)
    batch = _map([[BOX_A, BOX_C], [PAD, PAD]], [[1, 3], [-1, -1]])
    np.testing.assert_array_equal(batch[0], clean[0])
    np.testing.assert_array_equal(batch[1], 0.0)      # an image with no boxes
    np.testing.assert_array_equal(_map([[PAD]], [[-1]]), 0.0)
    assert _map(np.zeros((2, 0, 4)), np.zeros((2, 0))).shape == (2, 16, 16, 3)


def test_intensity_scales_after_the_threshold():
    y = _map([[BOX_A, BOX_B, BOX_C]], [[1, 1, 3]], intensity=[[0.5, 1.0, 0.0]])
    a = y[0, :, :, 0]
    assert a[4, 6] == 0.625          # A's centre: max(A 1 × 0.5, B 1 - 3/8)
    assert a[4, 2] == 0.3            # A only: (1 - 4/10) × 0.5
    assert a[0, 6] == 0.25           # A's edge: 0.5 × 0.5 (kept: thresholded before scaling)
    assert a[9, 2] == 0.0            # outside A stays 0
    assert a[4, 9] == 0.75           # overlap: max(A 0.7 × 0.5, B 0.75)
    np.testing.assert_array_equal(y[0, :, :, 2], 0.0)  # intensity 0: box C vanishes


def test_matches_numpy_reference_with_dynamic_shapes():
    rng = np.random.default_rng(0)
    batch, slots, height, width, k = 3, 9, 37, 29, 5
    ymin = rng.uniform(-5, height, (batch, slots))
    xmin = rng.uniform(-5, width, (batch, slots))
    boxes = np.stack([ymin, xmin, ymin + rng.uniform(0.3, 25, (batch, slots)),
                      xmin + rng.uniform(0.3, 25, (batch, slots))], -1).astype(np.float32)
    classes = rng.integers(1, k + 1, (batch, slots))
    classes[0, 6:] = -1
    classes[1, 2] = -1
    intensity = rng.uniform(0, 1, (batch, slots)).astype(np.float32)
    fn = tf.function(lambda b, c, h, w, s: label_map(b, c, k, h, w, s), input_signature=[
        tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32), tf.TensorSpec([None, None])])
    got = fn(boxes, classes.astype(np.int32), height, width, intensity).numpy()
    np.testing.assert_allclose(got, reference_label_map(boxes, classes, k, height, width, intensity),
                               atol=1e-5)
    clean = label_map(boxes, classes, k, height, width)  # static shapes, no intensity
    assert clean.shape == (batch, height, width, k)
    np.testing.assert_allclose(clean.numpy(), reference_label_map(boxes, classes, k, height, width),
                               atol=1e-5)


def test_random_intensity_range_and_mass_at_one():
    classes = tf.fill([8, 1000], 1)
    s = random_intensity(classes, seed=3).numpy()
    assert s.shape == (8, 1000) and s.dtype == np.float32
    assert s.min() >= 0.0 and s.max() == 1.0
    ones = np.mean(s == 1.0)                    # P(U >= 0.5) = 1/2
    assert 0.47 < ones < 0.53
    below = s[s < 1.0]                          # 2U for U < 0.5: uniform on [0, 1)
    assert abs(below.mean() - 0.5) < 0.02 and below.min() < 0.01 and below.max() > 0.99


@pytest.mark.parametrize("num_classes", [1, 4])
def test_output_channels_follow_num_classes(num_classes):
    y = label_map(tf.constant([[BOX_C]]), tf.constant([[1]]), num_classes, 16, 8)
    assert y.shape == (1, 16, 8, num_classes) and float(tf.reduce_max(y[..., 0])) == 1.0
