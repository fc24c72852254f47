"""Box head (Lin et al. 2017): 2×2 average pool of the 14×14 RoI feature to 7×7, two FC-1024 layers,
then a softmax classifier over K+1 classes and class-specific box deltas (Fast R-CNN).

The head feature and the predictor are separate layers, and ``BoxHead`` takes a ``mix``
function called after fc1 and after fc2, so a training-time method's merge (the
intertwiner's Table 2c, at the paper's point — before the predictor — or at the authors'
code's point — after fc1) can sit inside the head (``methods/base.py``).
"""
from __future__ import annotations

import keras
import tensorflow as tf


class BoxHead(keras.layers.Layer):
    """RoI features [B, R, S, S, C] -> head features [B, R, fc_dim]."""

    def __init__(self, fc_dim: int = 1024, name: str = "box_head", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool = keras.layers.AveragePooling2D(2, name="pool")
        self.fc1 = keras.layers.Dense(fc_dim, activation="relu", name="fc1")
        self.fc2 = keras.layers.Dense(fc_dim, activation="relu", name="fc2")

    def call(self, roi_features, mix=None):
        """``mix(point, features)`` is applied at "fc1" and at "predictor" (identity if None)."""
        mix = mix or (lambda point, features: features)
        shape = tf.shape(roi_features)
        s, c = roi_features.shape[2], roi_features.shape[4]
        x = tf.reshape(roi_features, [-1, s, s, c])
        x = self.pool(x)
        x = tf.reshape(x, [shape[0], shape[1], (s // 2) * (s // 2) * c])
        x = mix("fc1", self.fc1(x))
        return mix("predictor", self.fc2(x))


class BoxPredictor(keras.layers.Layer):
    """Head features [B, R, D] -> class logits [B, R, K+1] and deltas [B, R, K, 4]."""

    def __init__(self, num_classes: int, name: str = "box_predictor", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        # Logits and deltas feed the softmax, the losses and box decoding: float32 under a
        # mixed policy (the input is cast; the two small products run in float32).
        self.cls = keras.layers.Dense(num_classes + 1, name="class_logits", dtype="float32",
                                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.box = keras.layers.Dense(4 * num_classes, name="box_deltas", dtype="float32",
                                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))

    def call(self, features):
        shape = tf.shape(features)
        deltas = tf.reshape(self.box(features), [shape[0], shape[1], self.num_classes, 4])
        return self.cls(features), deltas
