"""Tests for internet_tf/data/orientation.py and its use by the index and the pipeline: a
phone photo (a JPEG with an EXIF orientation tag) is annotated as displayed; the decoded,
oriented training/evaluation image has the annotated object where the box says."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from internet_tf.data.coco import CocoIndex, DatasetError
from internet_tf.data.orientation import (ORIENTATION_TAG, displayed_size, open_oriented,
                                          orient_image, read_orientation)
from internet_tf.data.pipeline import build_dataset

# The displayed picture: 48 x 32 (w x h), dark, with a bright box at x 6..20, y 4..12.
WIDTH, HEIGHT, BOX = 48, 32, [6, 4, 14, 8]
# The stored pixels of orientation o are the displayed ones turned by the inverse of o's
# transform (PIL's Image.transpose methods; 6 and 8 are each other's inverse).
STORE = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
         4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
         6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8, 0, 9])
def test_orient_image_matches_pil_exif_transpose(orientation):
    pixels = np.random.default_rng(orientation).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.getexif()[ORIENTATION_TAG] = orientation
    assert read_orientation(image) == (orientation if 1 <= orientation <= 8 else 1)
    expected = np.asarray(ImageOps.exif_transpose(image))
    np.testing.assert_array_equal(orient_image(tf.constant(pixels), orientation).numpy(), expected)
    assert displayed_size((5, 3), read_orientation(image)) == (expected.shape[1], expected.shape[0])


def displayed_picture():
    pixels = np.full((HEIGHT, WIDTH, 3), 20, np.uint8)
    x, y, w, h = BOX
    pixels[y:y + h, x:x + w] = 235
    return Image.fromarray(pixels)


def write_photo(folder, orientation, json_size=(WIDTH, HEIGHT)):
    """A JPEG storing the displayed picture turned for ``orientation``, with the tag, and a
    COCO json annotating the displayed picture. Returns (json path, image folder)."""
    os.makedirs(folder, exist_ok=True)
    stored = displayed_picture()
    if STORE[orientation] is not None:
        stored = stored.transpose(STORE[orientation])
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    stored.save(os.path.join(folder, "photo.jpg"), "JPEG", quality=95, exif=exif)
    ann = os.path.join(folder, "ann.json")
    with open(ann, "w") as f:
        json.dump({"images": [{"id": 1, "file_name": "photo.jpg", "width": json_size[0],
                               "height": json_size[1]}],
                   "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": BOX,
                                    "iscrowd": 0}],
                   "categories": [{"id": 1, "name": "box"}]}, f)
    return ann, folder


@pytest.mark.parametrize("orientation, training", [(3, True), (6, False)])
def test_rotated_photo_is_oriented_for_training_and_evaluation(tmp_path, orientation, training):
    ann, folder = write_photo(str(tmp_path), orientation)
    with Image.open(os.path.join(folder, "photo.jpg")) as im:  # stored turned, as a phone does
        assert im.size == ((HEIGHT, WIDTH) if orientation == 6 else (WIDTH, HEIGHT))
    index = CocoIndex.from_files(ann, folder, training=True)
    assert not index.skips and index.records[0]["orientation"] == orientation
    # The training and the evaluation stream share the decoding (one mode per orientation).
    batch = next(iter(build_dataset(index, image_size=64, batch_size=1, max_instances=4,
                                    training=training, flip=False, seed=0)))
    image, box = batch["images"][0].numpy(), batch["gt_boxes"][0, 0].numpy()
    np.testing.assert_allclose(batch["image_info"][0, :2], [HEIGHT, WIDTH])
    y0, x0, y1, x1 = np.round(box).astype(int)
    np.testing.assert_allclose(box, np.array([4, 6, 12, 20]) * 64 / WIDTH, atol=1e-4)
    inside = image[y0 + 1:y1 - 1, x0 + 1:x1 - 1]
    outside = image[:, :x0 - 1].mean(), image[:y0 - 1, :].mean(), image[y1 + 1:43, :].mean()
    assert inside.mean() > 200 and max(outside) < 60


def test_size_is_compared_as_displayed(tmp_path):
    # The json gives the stored size of a photo shown turned by 90 degrees: a mismatch.
    ann, folder = write_photo(str(tmp_path / "a"), 6, json_size=(HEIGHT, WIDTH))
    ann_ok, folder_ok = write_photo(str(tmp_path / "b"), 6)
    with pytest.raises(DatasetError, match="size mismatch"):
        CocoIndex.from_files(ann, folder, training=True)
    # verify_images "none" reads no header: the photo is taken as stored (orientation 1).
    trusting = CocoIndex.from_files(ann_ok, folder_ok, training=True, verify_images="none")
    assert trusting.records[0]["orientation"] == 1


def test_open_oriented_gives_the_displayed_picture(tmp_path):
    write_photo(str(tmp_path), 6)
    image = open_oriented(os.path.join(str(tmp_path), "photo.jpg"))
    assert image.size == (WIDTH, HEIGHT) and image.mode == "RGB"
    assert np.abs(np.asarray(image, np.float32) - np.asarray(displayed_picture(), np.float32)).mean() < 4
