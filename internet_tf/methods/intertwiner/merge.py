"""How the critic feature joins detection (paper Table 2c, Sec. 4).

Modes: ``linear`` 0.5·head + 0.5·critic (the paper's default), ``separate`` (the critic only
serves the intertwiner loss), ``naive_add`` (weight 1 each). Points (``methods/base.py``):
``predictor`` — the paper's text, right before the classifier and box regressor — or
``fc1`` — the authors' code, after the head's first FC, so the second FC mixes the two.
"""
from __future__ import annotations

from internet_tf.config import check_choice


def merge(head_features, critic_features, mode: str = "linear"):
    """Table 2c: how the critic feature joins the detection head's feature."""
    check_choice("model.intertwiner.merge", mode)
    if mode == "linear":
        return 0.5 * head_features + 0.5 * critic_features
    if mode == "separate":
        return head_features
    return head_features + critic_features  # naive_add
