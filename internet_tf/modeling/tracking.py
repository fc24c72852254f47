"""Checkpoint tracking of sub-layers kept in Python lists (see docs/conventions.md).

``tf.train.Checkpoint`` (Keras 3.15 / TF 2.21) does not follow layers held only in Python
lists or dicts (Keras' TrackedList is not a TF Trackable), so their variables would be
silently left out of checkpoints. ``track`` also makes each one an attribute of its owner,
named after the layer; the lists stay for indexing.
"""
from __future__ import annotations


def track(owner, layers) -> None:
    for layer in layers:
        setattr(owner, layer.name, layer)
