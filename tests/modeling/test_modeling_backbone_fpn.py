"""Tests for internet_tf.modeling.backbone and internet_tf.modeling.fpn (FPN: Lin et al. 2017; the
projection without FPN for the backbones of Li et al. 2019, Table 5). VGG-16's levels:
test_modeling_vgg.py."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.modeling import backbone as bb
from internet_tf.modeling.fpn import FPN, LevelProjection
from internet_tf.ops.levels import FPN_STRIDES

WIDTHS = (8, 16, 32, 64)


# ---------------------------------------------------------------------------------------
# FPN
# ---------------------------------------------------------------------------------------

def _c_features(rng, batch=2, size=128, channels=(5, 6, 7, 9)):
    return {l: tf.constant(rng.normal(size=(batch, size // 2 ** l, size // 2 ** l, c)).astype(np.float32))
            for l, c in zip((2, 3, 4, 5), channels)}


def test_fpn_shapes_strides_and_p6_is_subsampled_p5():
    rng = np.random.default_rng(0)
    feats = _c_features(rng)
    out = FPN(channels=8)(feats)
    assert sorted(out) == [2, 3, 4, 5, 6]
    for l in (2, 3, 4, 5, 6):
        assert tuple(out[l].shape) == (2, 128 // 2 ** l, 128 // 2 ** l, 8), l  # stride 2**l
    # P6 = stride-2 max-pool (kernel 1) of P5: every other pixel of P5.
    np.testing.assert_allclose(out[6].numpy(), out[5].numpy()[:, ::2, ::2], atol=0)


def _conv_same(x, kernel, bias):
    """NumPy 'same' convolution (cross-correlation), x [B, H, W, Ci], kernel [k, k, Ci, Co]."""
    k = kernel.shape[0]
    p = k // 2
    xp = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("bhwc,cd->bhwd", xp[:, dy:dy + h, dx:dx + w], kernel[dy, dx])
    return out + bias


def test_fpn_matches_numpy_top_down_reference():
    # Lateral 1x1, nearest x2 top-down addition, 3x3 output conv - recomputed in NumPy from the
    # layer's own weights.
    rng = np.random.default_rng(1)
    feats = _c_features(rng, batch=1, size=64, channels=(3, 4, 5, 6))
    fpn = FPN(channels=4)
    out = fpn(feats)
    # Give the biases non-zero values so they are checked too.
    for conv in fpn.lateral + fpn.output_conv:
        conv.bias.assign(rng.normal(size=conv.bias.shape).astype(np.float32))
    out = fpn(feats)

    def w(conv):
        return conv.kernel.numpy().astype(np.float64), conv.bias.numpy().astype(np.float64)

    lat = {l: _conv_same(feats[l].numpy().astype(np.float64), *w(fpn.lateral[l - 2])) for l in (2, 3, 4, 5)}
    merged = {5: lat[5]}
    for l in (4, 3, 2):
        up = np.repeat(np.repeat(merged[l + 1], 2, axis=1), 2, axis=2)
        merged[l] = lat[l] + up
    for l in (2, 3, 4, 5):
        ref = _conv_same(merged[l], *w(fpn.output_conv[l - 2]))
        np.testing.assert_allclose(out[l].numpy(), ref, atol=1e-4, err_msg=f"P{l}")
    np.testing.assert_allclose(out[6].numpy(), _conv_same(merged[5], *w(fpn.output_conv[3]))[:, ::2, ::2],
                               atol=1e-4)


# ---------------------------------------------------------------------------------------
# No FPN (model.fpn: false): a 1x1 projection of each level
# ---------------------------------------------------------------------------------------

def test_level_projection_is_a_1x1_conv_per_level_without_top_down():
    rng = np.random.default_rng(2)
    feats = _c_features(rng, batch=2, size=64, channels=(3, 4, 5, 6))
    proj = LevelProjection(channels=4)
    out = proj(feats)
    assert sorted(out) == [2, 3, 4, 5, 6]
    for conv in proj.project:
        conv.bias.assign(rng.normal(size=conv.bias.shape).astype(np.float32))
    out = proj(feats)
    for l in (2, 3, 4, 5):
        assert tuple(out[l].shape) == (2, 64 // 2 ** l, 64 // 2 ** l, 4), l
        kernel, bias = proj.project[l - 2].kernel.numpy(), proj.project[l - 2].bias.numpy()
        ref = np.einsum("bhwc,cd->bhwd", feats[l].numpy(), kernel[0, 0]) + bias
        np.testing.assert_allclose(out[l].numpy(), ref, atol=1e-5, err_msg=f"P{l}")
    np.testing.assert_allclose(out[6].numpy(), out[5].numpy()[:, ::2, ::2], atol=0)  # P6, RPN only
    # No top-down pathway: P2-P4 do not read C5.
    changed = {**feats, 5: feats[5] + 100.0}
    again = proj(changed)
    for l in (2, 3, 4):
        np.testing.assert_array_equal(again[l].numpy(), out[l].numpy())
    assert not np.allclose(again[5].numpy(), out[5].numpy())


def test_small_resnet_without_fpn_levels_and_strides():
    net = bb.Backbone("small_resnet", 128, small_widths=WIDTHS)
    assert net.strides == FPN_STRIDES == {2: 4, 3: 8, 4: 16, 5: 32, 6: 64}
    out = LevelProjection(channels=8)(net(tf.random.uniform([1, 128, 128, 3], 0, 255)))
    assert {l: tuple(v.shape) for l, v in out.items()} == {
        l: (1, 128 // s, 128 // s, 8) for l, s in FPN_STRIDES.items()}


# ---------------------------------------------------------------------------------------
# Backbone
# ---------------------------------------------------------------------------------------

def test_small_resnet_backbone_returns_c2_to_c5_at_strides_4_to_32():
    net = bb.Backbone("small_resnet", 128, small_widths=WIDTHS)
    out = net(tf.random.uniform([2, 128, 128, 3], 0, 255), training=False)
    assert sorted(out) == [2, 3, 4, 5]
    for l, c in zip((2, 3, 4, 5), WIDTHS):
        assert tuple(out[l].shape) == (2, 128 // 2 ** l, 128 // 2 ** l, c), l
        assert np.all(np.isfinite(out[l].numpy()))


def test_preprocess_is_bgr_minus_caffe_mean():
    rgb = tf.constant([[[[10.0, 20.0, 30.0]]]])
    np.testing.assert_allclose(bb.preprocess(rgb).numpy()[0, 0, 0],
                               [30.0 - 103.939, 20.0 - 116.779, 10.0 - 123.68], rtol=1e-6)


def test_resolve_weights_none_and_empty():
    assert bb.resolve_weights("resnet50", "none") is None
    assert bb.resolve_weights("resnet50", None) is None
    assert bb.resolve_weights("small_resnet", "") is None


def test_resolve_weights_imagenet_missing_file_is_helpful(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(bb.BackboneWeightsError) as err:
        bb.resolve_weights("resnet50", "imagenet")
    msg = str(err.value)
    expected_path = os.path.join(str(tmp_path), "models", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert expected_path in msg                        # where it looked
    assert "none" in msg and "downloaded" in msg       # what to do instead
    # ... and it is a ValueError, so config-level handlers catch it.
    assert isinstance(err.value, ValueError)


def test_resolve_weights_imagenet_present_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    f = tmp_path / "models" / "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    f.write_bytes(b"")
    assert bb.resolve_weights("resnet101", "imagenet") == str(f)
    with pytest.raises(bb.BackboneWeightsError, match="resnet50"):
        bb.resolve_weights("resnet50", "imagenet")  # only the resnet101 file is present


def test_resolve_weights_small_resnet_imagenet_and_missing_path(tmp_path):
    with pytest.raises(bb.BackboneWeightsError, match="small_resnet"):
        bb.resolve_weights("small_resnet", "imagenet")
    missing = str(tmp_path / "nope.weights.h5")
    with pytest.raises(bb.BackboneWeightsError) as err:
        bb.resolve_weights("resnet50", missing)
    assert missing in str(err.value)
    present = tmp_path / "w.weights.h5"
    present.write_bytes(b"")
    assert bb.resolve_weights("resnet50", str(present)) == str(present)


def test_backbone_constructor_raises_for_unavailable_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(bb.BackboneWeightsError):
        bb.Backbone("resnet50", 64, weights="imagenet")
    with pytest.raises(bb.BackboneWeightsError):
        bb.Backbone("small_resnet", 64, weights="imagenet", small_widths=WIDTHS)


def _bn_layers(net):
    return [l for l in net.net.layers if isinstance(l, keras.layers.BatchNormalization)]


def test_frozen_bn_makes_every_batchnorm_non_trainable_and_static():
    net = bb.Backbone("small_resnet", 64, frozen_bn=True, small_widths=WIDTHS)
    bns = _bn_layers(net)
    assert len(bns) >= 9  # stem + 2 per block + 3 projection shortcuts
    assert all(not l.trainable for l in bns)
    bn_vars = {id(v) for l in bns for v in l.weights}
    assert not any(id(v) in bn_vars for v in net.trainable_weights)
    conv_trainable = [l for l in net.net.layers if isinstance(l, keras.layers.Conv2D)]
    assert conv_trainable and all(l.trainable for l in conv_trainable)
    # Frozen BN runs in inference mode: training=True changes neither outputs nor statistics.
    x = tf.random.uniform([2, 64, 64, 3], 0, 255)
    before = [v.numpy().copy() for v in bns[0].non_trainable_weights]
    a = net(x, training=True)
    b = net(x, training=False)
    for l in (2, 3, 4, 5):
        np.testing.assert_allclose(a[l].numpy(), b[l].numpy(), rtol=1e-5, atol=1e-5)
    for v, old in zip(bns[0].non_trainable_weights, before):
        np.testing.assert_array_equal(v.numpy(), old)


def test_unfrozen_bn_trains_in_training_mode():
    # The authors' released code trained with BN in inference mode by mistake; ours must not.
    net = bb.Backbone("small_resnet", 64, frozen_bn=False, small_widths=WIDTHS)
    bns = _bn_layers(net)
    assert all(l.trainable for l in bns)
    x = tf.random.uniform([2, 64, 64, 3], 0, 255)
    net(x, training=False)
    before = bns[0].moving_mean.numpy().copy()
    net(x, training=True)
    assert not np.allclose(bns[0].moving_mean.numpy(), before)


def test_freeze_at_2_freezes_stem_and_conv2_only():
    net = bb.Backbone("small_resnet", 64, freeze_at=2, small_widths=WIDTHS)
    weighted = [l for l in net.net.layers if l.weights]
    frozen = {l.name for l in weighted if not l.trainable}
    trainable = {l.name for l in weighted if l.trainable}
    assert {"conv1_conv", "conv1_bn", "conv2_block1_1_conv", "conv2_block1_1_bn",
            "conv2_block1_2_conv", "conv2_block1_2_bn"} <= frozen
    assert all(n.startswith(("conv1", "conv2")) for n in frozen)
    assert all(n.startswith(("conv3", "conv4", "conv5")) for n in trainable)
    assert "conv3_block1_1_conv" in trainable and "conv3_block1_0_conv" in trainable
    trainable_ids = {id(v) for v in net.trainable_weights}
    for l in weighted:
        for v in l.trainable_weights if l.trainable else l.weights:
            assert (id(v) in trainable_ids) == l.trainable, l.name


def test_freeze_at_0_freezes_nothing():
    net = bb.Backbone("small_resnet", 64, freeze_at=0, small_widths=WIDTHS)
    assert all(l.trainable for l in net.net.layers if l.weights)
