"""A synthetic training batch (random pixels, random boxes) with the pipeline's exact
structure and shapes; for benchmarks and smoke tests that need no dataset."""
from __future__ import annotations

import numpy as np
import tensorflow as tf


def synthetic_batch(batch_size: int, image_size: int, max_instances: int, num_classes: int,
                    boxes_per_image: int = 8, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    boxes = np.full((batch_size, max_instances, 4), -1.0, np.float32)
    classes = np.full((batch_size, max_instances), -1, np.int32)
    for b in range(batch_size):
        for i in range(min(boxes_per_image, max_instances)):
            h, w = rng.uniform(image_size / 16, image_size / 2, size=2)
            y, x = rng.uniform(0, image_size - h), rng.uniform(0, image_size - w)
            boxes[b, i] = (y, x, y + h, x + w)
            classes[b, i] = rng.integers(1, num_classes + 1)
    return {
        "images": tf.constant(rng.uniform(0, 255, (batch_size, image_size, image_size, 3)), tf.float32),
        "gt_boxes": tf.constant(boxes),
        "gt_classes": tf.constant(classes),
        "image_info": tf.constant([[image_size, image_size, 1.0, b] for b in range(batch_size)], tf.float32),
    }
