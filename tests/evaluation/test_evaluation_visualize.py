"""The eval/detections picture: exact box outlines, colours, what is left out, the crop."""
import numpy as np
import pytest

from internet_tf.evaluation.visualize import detection_images, draw_boxes

H, W = 12, 16
GREEN, RED = (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)


def outline(top, left, bottom, right, shape=(H, W)):
    """Bool mask of the one-pixel border of rows top..bottom x cols left..right (inclusive)."""
    mask = np.zeros(shape, bool)
    mask[top, left:right + 1] = mask[bottom, left:right + 1] = True
    mask[top:bottom + 1, left] = mask[top:bottom + 1, right] = True
    return mask


def painted(picture, colour):
    return np.all(picture == np.asarray(colour, np.float32), axis=-1)


def _inputs(image_value=0.0):
    """Two images; image 0 has one GT box, one kept and two dropped detections."""
    images = np.full([2, H, W, 3], image_value, np.float32)
    gt_boxes = np.full([2, 3, 4], -1.0, np.float32)
    gt_classes = np.full([2, 3], -1, np.int32)
    gt_boxes[0, 0], gt_classes[0, 0] = [2.0, 3.0, 7.0, 8.0], 1        # rows 2..6, cols 3..7
    gt_boxes[1, 1], gt_classes[1, 1] = [0.0, 0.0, 12.0, 16.0], 2      # the whole image 1
    det_boxes = np.zeros([2, 4, 4], np.float32)
    scores = np.zeros([2, 4], np.float32)
    det_boxes[0, 0], scores[0, 0] = [1.2, 9.0, 5.4, 14.7], 0.9         # rows 1..5, cols 9..14
    det_boxes[0, 1], scores[0, 1] = [8.0, 1.0, 11.0, 6.0], 0.3         # low score: not drawn
    det_boxes[0, 2], scores[0, 2] = [8.0, 9.0, 11.0, 15.0], 0.5        # exactly 0.5: drawn
    det_boxes[0, 3], scores[0, 3] = [0.0, 0.0, 4.0, 4.0], 0.95         # beyond num: not drawn
    batch = {"images": images, "gt_boxes": gt_boxes, "gt_classes": gt_classes,
             "image_info": np.array([[H, W, 1.0, 0], [H, W, 1.0, 1]], np.float32)}
    dets = {"detection_boxes": det_boxes, "detection_scores": scores,
            "num_detections": np.array([3, 0], np.int32)}
    return batch, dets


def test_boxes_drawn_exactly_on_their_edges():
    batch, dets = _inputs()
    pictures = detection_images(batch, dets).numpy()
    assert pictures.shape == (2, H, W, 3) and pictures.dtype == np.float32
    green, red = painted(pictures[0], GREEN), painted(pictures[0], RED)
    np.testing.assert_array_equal(green, outline(2, 3, 6, 7))
    np.testing.assert_array_equal(red, outline(1, 9, 5, 14) | outline(8, 9, 10, 14))
    # Everything else stays black: no padded GT row (it would mark pixel (0, 0)), no
    # low-score detection, nothing past num_detections.
    assert np.all(pictures[0][~(green | red)] == 0.0)
    np.testing.assert_array_equal(painted(pictures[1], GREEN), outline(0, 0, H - 1, W - 1))
    assert not painted(pictures[1], RED).any()


def test_detections_drawn_over_ground_truth_and_image_kept():
    batch, dets = _inputs(image_value=127.5)
    batch["gt_boxes"][0, 0] = dets["detection_boxes"][0, 0]
    pictures = detection_images(batch, dets).numpy()
    assert not painted(pictures[0], GREEN).any()           # red drawn second, on top
    assert painted(pictures[0], RED).sum() == (outline(1, 9, 5, 14) | outline(8, 9, 10, 14)).sum()
    untouched = ~painted(pictures[0], RED)
    np.testing.assert_allclose(pictures[0][untouched], 0.5)   # 0..255 -> 0..1


def test_padding_cropped_to_largest_valid_region():
    batch, dets = _inputs()
    # Image 0: 6 x 9 original at scale 1.5 -> 9 x 13.5 -> round: 9 x 14 (banker's: 13.5 -> 14).
    # Image 1: 4 x 5 at scale 2 -> 8 x 10.  Crop: the larger, 9 x 14.
    batch["image_info"] = np.array([[6, 9, 1.5, 0], [4, 5, 2.0, 1]], np.float32)
    pictures = detection_images(batch, dets).numpy()
    assert pictures.shape == (2, 9, 14, 3)
    # The GT box of image 0 lies inside the crop and keeps its outline.
    np.testing.assert_array_equal(painted(pictures[0], GREEN), outline(2, 3, 6, 7, (9, 14)))


@pytest.mark.parametrize("box, edges", [
    ([2.0, 3.0, 7.0, 8.0], (2, 3, 6, 7)),      # integer edges: last covered pixel is max - 1
    ([2.9, 3.1, 6.1, 7.9], (2, 3, 6, 7)),      # fractional: the pixels the box touches
    ([4.0, 5.0, 4.0, 5.0], (4, 5, 4, 5)),      # empty box: one pixel
    ([-3.0, -2.0, 20.0, 30.0], (0, 0, H - 1, W - 1)),  # clipped to the image
])
def test_draw_boxes_pixel_edges(box, edges):
    image = np.zeros([1, H, W, 3], np.float32)
    picture = draw_boxes(image, np.array([[box]], np.float32), np.array([[True]]),
                         np.zeros([1, 0, 4], np.float32), np.zeros([1, 0], bool)).numpy()[0]
    np.testing.assert_array_equal(painted(picture, GREEN), outline(*edges))
