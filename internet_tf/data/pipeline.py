"""tf.data input pipeline (images resized so the
longer side is ``image_size``, padded to ``image_size × image_size``, horizontal flip only).

Each batch is a dict with fixed static shapes (docs/conventions.md)::

    images      float32 [B, S, S, 3]  RGB in 0..255 (the model normalises)
    gt_boxes    float32 [B, M, 4]     yxyx in resized-image pixels, padded with -1
    gt_classes  int32   [B, M]        labels 1..K, padded with -1
    image_info  float32 [B, 4]        (orig_height, orig_width, scale, image_id)

Ground truth is padded in numpy before ``from_tensor_slices`` (no ragged tensors); only
the image is read and decoded inside the graph, in a parallel map, then turned by its EXIF
orientation (``data/orientation.py``, read by the index) so pixels match the annotations,
which describe the image as displayed.

Speed: decoding runs in a parallel map (``num_parallel_calls=AUTOTUNE``); with
``cache_images`` the decoded images (uint8, each at its own size) are kept in memory after
the first epoch, before the shuffle, the resize and the random flip, so every epoch is still
shuffled and flipped afresh and the stream is the uncached one, element for element; batches
are prefetched (``prefetch(AUTOTUNE)``), and ``to_accelerator`` adds a prefetch into GPU
memory where a GPU is visible (``datasets.distributed_train_dataset`` uses it on the default
strategy; a ``tf.distribute`` strategy prefetches to its replicas' devices itself).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging

from internet_tf.data.coco import MAX_IMAGE_ID, CocoIndex, DatasetError
from internet_tf.data.orientation import orient_image
from internet_tf.ops import boxes as box_ops


def _resized_size(height: tf.Tensor, width: tf.Tensor, image_size: int):
    """Returns (scale, resized_height, resized_width) for an image of the given size."""
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    scale = tf.cast(image_size, tf.float32) / tf.maximum(h, w)
    new_h = tf.clip_by_value(tf.cast(tf.round(h * scale), tf.int32), 1, image_size)
    new_w = tf.clip_by_value(tf.cast(tf.round(w * scale), tf.int32), 1, image_size)
    return scale, new_h, new_w


def resize_and_pad(image: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Resizes an ``[h, w, c]`` image so its longer side is ``image_size``, then pads.

    Bilinear resize (no antialiasing) to ``round(h * scale) × round(w * scale)`` with
    ``scale = image_size / max(h, w)``, then zero padding at the bottom and right.

    Args:
      image: ``[h, w, c]`` tensor of any size, uint8 or float (values are kept as is).
      image_size: side S of the square output.
    Returns:
      ``(padded, scale)``: float32 ``[S, S, c]`` and a float32 scalar.
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    scale, new_h, new_w = _resized_size(shape[0], shape[1], image_size)
    resized = tf.image.resize(tf.cast(image, tf.float32), tf.stack([new_h, new_w]),
                              method="bilinear")
    padded = tf.pad(resized, [[0, image_size - new_h], [0, image_size - new_w], [0, 0]])
    padded.set_shape([image_size, image_size, image.shape[-1]])
    return padded, scale


def decode(example: dict) -> tf.Tensor:
    """Reads and decodes ``example["path"]`` and turns it by ``example["orientation"]``:
    uint8 ``[h, w, 3]`` as displayed."""
    data = tf.io.read_file(example["path"])
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = orient_image(image, example["orientation"])
    image.set_shape([None, None, 3])
    return image


def to_accelerator(dataset: tf.data.Dataset, buffer_size: int = 2) -> tf.data.Dataset:
    """``dataset`` followed by a prefetch into the first GPU's memory, when a GPU is visible
    (it must then be the pipeline's last step); on a CPU-only machine ``dataset`` itself."""
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return dataset
    return dataset.apply(tf.data.experimental.prefetch_to_device(gpus[0].name, buffer_size))


def _padded_ground_truth(index: CocoIndex, max_instances: int):
    """Stacks the index's boxes/classes into -1 padded arrays; counts truncations."""
    n = len(index.records)
    boxes = np.full((n, max_instances, 4), -1.0, np.float32)
    classes = np.full((n, max_instances), -1, np.int32)
    dropped, truncated_images = 0, 0
    for i, record in enumerate(index.records):
        k = len(record["classes"])
        if k > max_instances:
            dropped += k - max_instances
            truncated_images += 1
            k = max_instances
        boxes[i, :k] = record["boxes"][:k]
        classes[i, :k] = record["classes"][:k]
    if dropped:
        index.skips["truncated_instances"] = dropped
        if index.training:
            logging.warning("%d training images have more than data.max_instances=%d boxes; "
                            "their %d extra boxes are left out of training (truncated_instances).",
                            truncated_images, max_instances, dropped)
        else:  # the metrics read the full ground truth (index.coco), not these padded rows
            logging.info("%d validation images have more than data.max_instances=%d boxes; the "
                         "pipeline carries the first %d of each, and the detections are still "
                         "scored against every box (%d more).",
                         truncated_images, max_instances, max_instances, dropped)
    else:
        index.skips.pop("truncated_instances", None)
    return boxes, classes


def build_dataset(index: CocoIndex, *, image_size: int, batch_size: int,
                  max_instances: int = 100, training: bool, flip: bool = True,
                  shuffle_buffer: int = 1000, seed: int | None = None,
                  repeat: bool | None = None,
                  drop_remainder: bool | None = None,
                  skip_examples: int = 0, shard: tuple[int, int] = (1, 0),
                  cache_images: bool = False) -> tf.data.Dataset:
    """Builds the batched input pipeline for ``index`` (see the module docstring).

    Args:
      index: validated dataset.
      image_size: side S of the square model input.
      batch_size: examples per batch (per call; distribute the dataset for replicas).
      max_instances: M, ground-truth rows per example; extra boxes are dropped (the
        first M are kept) and counted in ``index.skips['truncated_instances']``.
      training: shuffle + random horizontal flip, and the defaults of repeat /
        drop_remainder become True; evaluation reads every image once, in order.
      flip: random horizontal flip with probability 0.5 (training only).
      shuffle_buffer: shuffle buffer size (elements are paths plus padded ground truth).
      seed: makes shuffling and flipping reproducible; None is nondeterministic.
      repeat: repeat forever (default: ``training``).
      drop_remainder: drop the last partial batch, so the batch dimension is static
        (default: ``training``).
      skip_examples: examples of the (seeded) stream to skip before decoding, so a
        resumed run continues the same data order cheaply.
      shard: ``(count, index)``: keep only every ``count``-th batch of the stream, starting
        at batch ``index`` (one input pipeline per worker; the choice happens before
        decoding). The kept batches are exactly the stream's, so ``count`` workers taking
        turns see the same global batches as one process.
      cache_images: keep the decoded images in memory (training only; see the module
        docstring). Every input pipeline then decodes every image once, before sharding.
    """
    if image_size < 1 or batch_size < 1 or max_instances < 1:
        raise ValueError("image_size, batch_size and max_instances must be positive")
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder
    do_flip = training and flip
    cache_images = cache_images and training
    deterministic = (not training) or seed is not None

    image_ids = np.asarray([r["image_id"] for r in index.records], np.int64)
    if np.any((image_ids < 0) | (image_ids > MAX_IMAGE_ID)):
        raise DatasetError(f"{index.source!r}: image ids must lie in [0, 2**24] to travel exactly in "
                           f"the float32 image_info (they span {image_ids.min()}..{image_ids.max()})")
    boxes, classes = _padded_ground_truth(index, max_instances)
    dataset = tf.data.Dataset.from_tensor_slices({
        "path": [r["path"] for r in index.records],
        "boxes": boxes,
        "classes": classes,
        "image_id": image_ids.astype(np.float32),
        "orientation": np.asarray([r.get("orientation", 1) for r in index.records], np.int32),
    })
    if cache_images:
        # Decoded in index order, once: the cache holds what the map below would decode, and
        # the shuffle after it permutes the same elements as without the cache.
        dataset = dataset.map(lambda example: dict(example, image=decode(example)),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.ignore_errors(log_warning=True).cache()
    if training:
        dataset = dataset.shuffle(min(shuffle_buffer, len(index.records)) or 1, seed=seed,
                                  reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if do_flip:
        # One random int64 per element, turned into a stateless seed inside the map, so
        # the parallel map stays deterministic for a given seed.
        dataset = tf.data.Dataset.zip(dataset, tf.data.Dataset.random(seed=seed))
    else:
        dataset = dataset.map(lambda x: (x, tf.constant(0, tf.int64)))
    if skip_examples:
        dataset = dataset.skip(skip_examples)
    count, index = shard
    if count > 1:
        def mine(position, element):
            return tf.equal((position // batch_size) % count, index)

        def drop_position(position, element):
            return element

        dataset = dataset.enumerate().filter(mine).map(drop_position)

    def load(example, flip_seed):
        image = example["image"] if cache_images else decode(example)
        shape = tf.shape(image)
        height, width = shape[0], shape[1]
        padded, scale = resize_and_pad(image, image_size)
        _, new_h, new_w = _resized_size(height, width, image_size)
        limits = tf.cast(tf.stack([new_h, new_w, new_h, new_w]), tf.float32)
        boxes = tf.minimum(box_ops.scale_boxes(example["boxes"], scale), limits)
        if do_flip:
            coin = tf.random.stateless_uniform([], seed=tf.stack([flip_seed, 0]))
            cols = tf.range(image_size)
            flipped_cols = tf.where(cols < new_w, new_w - 1 - cols, cols)
            flipped_boxes = box_ops.flip_horizontal(boxes, new_w)
            do_it = coin < 0.5
            padded = tf.cond(do_it, lambda: tf.gather(padded, flipped_cols, axis=1),
                             lambda: padded)
            boxes = tf.where(do_it, flipped_boxes, boxes)
        valid = example["classes"] >= 0
        boxes = tf.where(valid[:, None], boxes, -1.0)
        image_info = tf.stack([tf.cast(height, tf.float32), tf.cast(width, tf.float32),
                               scale, example["image_id"]])
        return {
            "images": tf.ensure_shape(padded, [image_size, image_size, 3]),
            "gt_boxes": tf.ensure_shape(boxes, [max_instances, 4]),
            "gt_classes": tf.ensure_shape(example["classes"], [max_instances]),
            "image_info": tf.ensure_shape(image_info, [4]),
        }

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)
    # Safety net only: CocoIndex already skips unreadable images. Dropping an element is
    # itself deterministic, so this keeps a seeded pipeline reproducible.
    dataset = dataset.ignore_errors(log_warning=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
