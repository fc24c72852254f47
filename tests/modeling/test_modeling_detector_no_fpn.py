"""The detector without FPN (``model.fpn: false``; paper Table 5, Sec. 6.4): a tiny small-ResNet
model with and without the intertwiner, and VGG-16's levels (strides 16-128), each through
one train step; the backbone/neck pairings that are configuration errors."""
import keras
import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.config import ConfigError
from internet_tf.data.synthetic import synthetic_batch
from internet_tf.assembly.factory import build_model
from internet_tf.modeling.fpn import LevelProjection
from internet_tf.ops.anchors import feature_size
from internet_tf.ops.levels import FPN_STRIDES, level_strides
from internet_tf.ops.roi_align import multilevel_roi_align

pytestmark = pytest.mark.cost(11)  # seconds in make test (tests/conftest.py schedules by it)

S = 128


def _train_step(cfg, batch_size):
    """Builds the tiny model of ``cfg`` (its variables at the first pass), takes one SGD step
    on a synthetic batch; returns (model, losses, the pyramid of the batch's first image)."""
    model = build_model(cfg.model, 3)
    batch = synthetic_batch(batch_size, S, 8, 3, boxes_per_image=4)
    with tf.GradientTape() as tape:
        losses, _ = model.train_losses(batch, training=True)
        total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    grads = tape.gradient(total, variables)
    assert np.isfinite(float(total)), losses
    missing = [v.path for v, g in zip(variables, grads) if g is None]
    assert not missing, f"variables without gradient: {missing}"
    backbone = {id(v) for v in model.backbone.trainable_variables}
    norm = sum(float(tf.norm(g)) for v, g in zip(variables, grads) if id(v) in backbone)
    assert np.isfinite(norm) and norm > 0.0  # the losses reach the backbone
    before = model.backbone.trainable_variables[0].numpy().copy()
    keras.optimizers.SGD(0.01).apply_gradients(zip(grads, variables))
    assert not np.array_equal(model.backbone.trainable_variables[0].numpy(), before)
    return model, losses, model.pyramid(batch["images"][:1])


@pytest.mark.parametrize("intertwiner", [False, True])
def test_small_resnet_without_fpn_trains_one_step(intertwiner):
    cfg = tiny.config("model.fpn=false", f"model.intertwiner.enabled={str(intertwiner).lower()}")
    model, losses, pyramid = _train_step(cfg, 2)
    assert isinstance(model.fpn, LevelProjection) and model.strides == FPN_STRIDES
    assert ("intertwiner" in losses) == intertwiner and ("alignment" in losses) == intertwiner
    assert {l: tuple(p.shape) for l, p in pyramid.items()} == {l: (1, S // s, S // s, 8) for l, s in FPN_STRIDES.items()}


def test_vgg16_with_intertwiner_trains_one_step_on_its_strides():
    cfg = tiny.config("model.backbone=vgg16", "model.fpn=false")
    model, losses, pyramid = _train_step(cfg, 1)
    strides = level_strides(16)
    assert model.strides == strides and {"intertwiner", "alignment"} <= set(losses)
    # Each level twice as coarse as the one before (the generator's P_{l+1} -> P_l), on the
    # anchors' grids: 8, 4, 2, 1 and 1 cells at 128 px.
    sides = {l: int(p.shape[1]) for l, p in pyramid.items()}
    assert sides == {l: feature_size(S, l, strides) for l in strides} == {2: 8, 3: 4, 4: 2, 5: 1, 6: 1}
    assert sum(int(a.shape[0]) for a in model.anchors().values()) == 3 * sum(n * n for n in sides.values())
    # RoIAlign crops each level with its own stride (16 on level 2, not 4).
    rois = tf.constant([[[8.0, 8.0, 40.0, 56.0], [0.0, 16.0, 120.0, 128.0]]])
    levels, feats = model.roi_features(pyramid, rois)
    assert levels.numpy().tolist() == [[3, 5]]  # Eq. 6 with tests/tiny.yaml's base 56
    ref = multilevel_roi_align(pyramid, rois, levels, output_size=14, sampling_ratio=2, strides=strides)
    np.testing.assert_allclose(feats.numpy(), ref.numpy(), atol=1e-5)


def test_backbone_and_neck_pairings_that_are_config_errors():
    # Refused when the config is loaded, before any model is built.
    with pytest.raises(ConfigError, match="model.fpn"):
        tiny.config("model.backbone=vgg16", "model.fpn=true")
    with pytest.raises(ConfigError, match="model.labelenc"):
        tiny.config("model.fpn=false", "model.labelenc.enabled=true")
