"""SavedModel export with pre- and post-processing inside the graph.

The ``serving_default`` signature takes ``images``: uint8 ``[batch, height, width, 3]`` of any
size (one size per call), and returns ``detection_boxes`` float32 ``[batch, 100, 4]`` as
(ymin, xmin, ymax, xmax) in the input image's pixels, ``detection_scores`` ``[batch, 100]``,
``detection_classes`` int32 ``[batch, 100]`` (the dataset's own category ids; −1 pads) and
``num_detections`` int32 ``[batch]``. Resizing, padding, decoding and NMS are in the graph.

Only the inference path is exported: backbone, FPN, RPN head, (make-up and critic for
InterNet), box head and predictor. The class buffer, OT module and generators are
training-only and are not in the SavedModel. ``labels.json`` (category id → name) is
written next to it. The export is written to a temporary folder and moved into place, so
a failure never leaves a half-written export or destroys an earlier one.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import tensorflow as tf

from internet_tf.data.pipeline import resize_and_pad
from internet_tf.run_dir import write_labels
from internet_tf.graph.jit import TRACE


class ServingModule(tf.Module):
    """Tracks only the inference layers of ``model``; ``serve`` is the exported signature."""

    def __init__(self, model, label_to_cat_id: dict):
        super().__init__(name="internet_serving")
        self.inference_layers = model.inference_layers()
        num_classes = model.num_classes
        table = [-1] + [int(label_to_cat_id[label]) for label in range(1, num_classes + 1)]
        self.category_ids = tf.constant(table, tf.int32)
        self.image_size = model.image_size
        infer = model.inference  # a closure: the model object itself is not tracked

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
                     **TRACE)
        def serve(images):
            size = self.image_size
            padded, scale = tf.map_fn(
                lambda image: resize_and_pad(image, size), images,
                fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([], tf.float32)))
            shape = tf.shape(images)
            height = tf.cast(shape[1], tf.float32)
            width = tf.cast(shape[2], tf.float32)
            ones = tf.ones_like(scale)
            info = tf.stack([height * ones, width * ones, scale, 0.0 * ones], axis=-1)
            dets = infer(padded, info)
            boxes = dets["detection_boxes"] / scale[:, None, None]
            boxes = tf.minimum(tf.maximum(boxes, 0.0), tf.stack([height, width, height, width]))
            labels = dets["detection_classes"]
            classes = tf.where(labels > 0, tf.gather(self.category_ids, tf.maximum(labels, 0)), -1)
            valid = labels > 0
            return {
                "detection_boxes": tf.where(valid[..., None], boxes, 0.0),
                "detection_scores": dets["detection_scores"],
                "detection_classes": tf.cast(classes, tf.int32),
                "num_detections": dets["num_detections"],
            }

        self.serve = serve


def export(model, label_to_cat_id: dict, class_names: list, export_dir: str) -> str:
    """Writes the SavedModel (+ labels.json) to ``export_dir`` atomically; returns its path."""
    module = ServingModule(model, label_to_cat_id)
    parent = os.path.dirname(os.path.abspath(export_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
        write_labels(tmp, label_to_cat_id, class_names)  # the run dir's schema (run_dir.py)
        old = None
        if os.path.exists(export_dir):
            old = tempfile.mkdtemp(prefix=".export-old-", dir=parent)
            os.rmdir(old)
            os.replace(export_dir, old)
        os.replace(tmp, export_dir)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return export_dir
