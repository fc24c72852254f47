"""Region proposal network head (Lin et al. 2017, Ren et al. 2015 with FPN).

3×3 conv + ReLU, then 1×1 objectness (one logit per anchor) and 1×1 deltas, shared over
P2–P6. Proposal generation (pure tensor math) is ``ops/proposals.py``.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.ops.levels import RPN_LEVELS as LEVELS

class RPNHead(keras.layers.Layer):
    """{l: P_l} -> objectness logits [B, N] and deltas [B, N, 4], levels concatenated in order."""

    def __init__(self, num_anchors: int, channels: int = 256, name: str = "rpn_head", **kwargs):
        super().__init__(name=name, **kwargs)
        init = keras.initializers.RandomNormal(stddev=0.01)
        self.num_anchors = num_anchors
        self.conv = keras.layers.Conv2D(channels, 3, padding="same", activation="relu",
                                        kernel_initializer=init, name="conv")
        # The outputs feed top-k, box decoding and the losses: float32 under a mixed policy.
        self.objectness = keras.layers.Conv2D(num_anchors, 1, kernel_initializer=init, name="objectness",
                                              dtype="float32")
        self.deltas = keras.layers.Conv2D(4 * num_anchors, 1, kernel_initializer=init, name="deltas",
                                          dtype="float32")

    def call(self, feats):
        logits, deltas = [], []
        for level in LEVELS:
            x = self.conv(feats[level])
            b = tf.shape(x)[0]
            logits.append(tf.reshape(self.objectness(x), [b, -1]))
            deltas.append(tf.reshape(self.deltas(x), [b, -1, 4]))
        return tf.concat(logits, axis=1), tf.concat(deltas, axis=1)


