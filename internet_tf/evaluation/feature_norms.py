"""Feature-norm pictures of LabelEnc (Hao et al. 2020, appendix Fig. 1): the
per-pixel L2 norm over channels of one FPN level for the image's baseline detector, the
LabelEnc detector and the label encoder's h(y), side by side with the image.
"""
from __future__ import annotations

import io

import numpy as np
import tensorflow as tf

PANELS = ("image", "baseline", "LabelEnc", "h(y)")


def channel_norm(features):
    """[B, H, W, C] -> [B, H, W]: the L2 norm over channels at every position."""
    return tf.norm(tf.cast(features, tf.float32), axis=-1)


def norm_maps(baseline, labelenc_model, batch, level: int = 3) -> dict:
    """{panel: [B, H_l, W_l] float32} of ``batch`` (an evaluation batch with ground truth):
    the baseline detector's, the LabelEnc detector's and FPN_h(h(y))'s level-``level`` norms."""
    method = getattr(labelenc_model, "labelenc", None)  # the method, by its name (tracking.track)
    if method is None:
        raise ValueError("the LabelEnc model has no LabelEnc method (model.labelenc.enabled is false)")
    images = batch["images"]
    return {"baseline": channel_norm(baseline.pyramid(images)[level]).numpy(),
            "LabelEnc": channel_norm(labelenc_model.pyramid(images)[level]).numpy(),
            "h(y)": channel_norm(method.teacher(batch, training=False)[level]).numpy()}


def _unit(x):
    """Min-max scaled to [0, 1] (a constant map becomes all zeros)."""
    lo, hi = float(np.min(x)), float(np.max(x))
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo)


def row_image(image, maps: dict, index: int) -> np.ndarray:
    """One uint8 RGB row [S, 4·S, 3]: the image, then each norm map (each scaled to its own
    [0, 1], nearest-upsampled to the image size, drawn in grey levels)."""
    image = np.clip(np.asarray(image, np.float32), 0, 255).astype(np.uint8)
    size = image.shape[0]
    tiles = [image]
    for name in PANELS[1:]:
        grey = _unit(maps[name][index])
        reps = size // grey.shape[0]
        grey = np.kron(grey, np.ones((reps, reps), np.float32))[:size, :size]
        tiles.append(np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1))
    return np.concatenate(tiles, axis=1)


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()
