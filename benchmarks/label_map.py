"""Times LabelEnc's label map y (Hao et al. 2020) at 512², batch 1, 80 classes, on a synthetic batch:
all K channels against only the channels of the classes present (what training builds).

    python benchmarks/label_map.py
"""
from __future__ import annotations

import time

import internet_tf.cli  # noqa: F401  (quiets TF's C++ logging)
import tensorflow as tf

from internet_tf.data.synthetic import synthetic_batch
from internet_tf.methods.labelenc.label_map import label_map
from internet_tf.methods.labelenc.method import present_channels

SIZE, CLASSES, ITERS = 512, 80, 20


def main():
    batch = synthetic_batch(1, SIZE, 100, CLASSES)
    boxes, classes = batch["gt_boxes"], batch["gt_classes"]
    print(f"channels of the classes present (and channel 0): {present_channels(classes, CLASSES).numpy().tolist()}")
    variants = {
        f"all {CLASSES} channels": tf.function(lambda b, c: label_map(b, c, CLASSES, SIZE, SIZE)),
        "present channels only": tf.function(
            lambda b, c: label_map(b, c, CLASSES, SIZE, SIZE, channels=present_channels(c, CLASSES))),
    }
    for name, fn in variants.items():
        fn(boxes, classes).numpy()  # trace
        start = time.perf_counter()
        for _ in range(ITERS):
            fn(boxes, classes).numpy()
        print(f"label map {SIZE}x{SIZE}, batch 1, {name}: {(time.perf_counter() - start) / ITERS * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
