"""EXIF orientation: the image as displayed, which is what annotations describe.

Phones store the sensor's pixels and an EXIF tag 0x0112 (1..8) saying how to turn them for
display; COCO and VOC labelling tools draw boxes on the *displayed* image. The dataset index
(``data/coco.py``) reads the tag with the image header, compares the displayed size with the
annotation's ``width``/``height`` and keeps the tag per record; the input pipeline
(``data/pipeline.py``) applies it in-graph right after decoding (:func:`orient_image`), for
training and evaluation alike; ``internet-predict`` opens files with :func:`open_oriented`.
An exported model takes pixels as given.

With ``data.verify_images: none`` no header is read: every image is taken as stored
(orientation 1), so a photo whose tag is not 1 would be fed turned while its boxes describe
the displayed picture. Use the default ``header`` for phone photos.

The eight values (the transform turning stored pixels into the displayed image, the same as
``PIL.ImageOps.exif_transpose``): 1 as is; 2 mirror left-right; 3 rotate 180°; 4 mirror
top-bottom; 5 transpose (swap rows and columns); 6 rotate 90° clockwise; 7 transverse
(transpose, then rotate 180°); 8 rotate 90° counter-clockwise. 5-8 swap width and height.
Any other value (absent, 0, out of range) means 1, as PIL treats it.
"""
from __future__ import annotations

from PIL import Image, ImageOps

ORIENTATION_TAG = 0x0112
ORIENTATIONS = tuple(range(1, 9))
_SWAPPING = frozenset({5, 6, 7, 8})


def read_orientation(image: Image.Image) -> int:
    """The EXIF orientation 1..8 of an opened PIL image (1 without a valid tag).

    Reads only what the header holds (``Image.Image.getexif``: PNG's own override would
    decode the whole file to look for an eXIf chunk after the pixels, which would make the
    index's header scan a full decode and break a later ``verify()``)."""
    try:
        value = Image.Image.getexif(image).get(ORIENTATION_TAG, 1)
    except Exception:  # a damaged EXIF block: the pixels are still usable as stored.
        return 1
    return int(value) if value in ORIENTATIONS else 1


def displayed_size(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """``(width, height)`` of the displayed image, from the stored ``size``."""
    width, height = size
    return (height, width) if orientation in _SWAPPING else (width, height)


def open_oriented(path: str) -> Image.Image:
    """Opens ``path`` as an RGB PIL image turned as displayed (for internet-predict)."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def orient_image(image, orientation):
    """Turns a decoded ``[h, w, c]`` image tensor by its EXIF ``orientation`` (a scalar tensor
    or int; values outside 1..8 leave the image as is), in-graph. (TensorFlow is imported
    here only, so the index and the converter load without it.)"""
    import tensorflow as tf

    def _transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,                                        # 1 (and invalid values)
        lambda: tf.image.flip_left_right(image),              # 2
        lambda: tf.image.rot90(image, k=2),                   # 3
        lambda: tf.image.flip_up_down(image),                 # 4
        lambda: _transpose(image),                            # 5
        lambda: tf.image.rot90(image, k=3),                   # 6: 90° clockwise
        lambda: tf.image.rot90(_transpose(image), k=2),       # 7
        lambda: tf.image.rot90(image, k=1),                   # 8: 90° counter-clockwise
    ]
    orientation = tf.cast(orientation, tf.int32)
    valid = (orientation >= 1) & (orientation <= 8)
    index = tf.where(valid, orientation - 1, 0)
    return tf.switch_case(index, branches)
