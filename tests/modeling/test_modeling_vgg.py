"""Tests for internet_tf.modeling.vgg through the Backbone: VGG-16's SSD-style levels (paper
Table 5, Sec. 6.4) — names, order, shapes and strides; weights only from a local file."""
import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.modeling import backbone as bb
from internet_tf.modeling import vgg
from internet_tf.ops.anchors import feature_size


@pytest.fixture(scope="module")
def vgg_backbone():
    keras.utils.set_random_seed(0)
    return bb.Backbone("vgg16", 192)


def test_vgg16_levels_are_conv7_to_conv10_2_at_strides_16_to_128(vgg_backbone):
    net = vgg_backbone
    assert net.strides == {2: 16, 3: 32, 4: 64, 5: 128, 6: 256}
    assert net.net.output_names == ["fc7", "conv8_2", "conv9_2", "conv10_2"]  # in level order
    out = net(tf.random.uniform([1, 192, 192, 3], 0, 255))
    assert sorted(out) == [2, 3, 4, 5]
    # 192 px: 12, 6, 3 and ceil(1.5) = 2 cells, the grids the anchors are built on.
    expected = {2: (12, 1024), 3: (6, 512), 4: (3, 256), 5: (2, 256)}
    for l, (side, channels) in expected.items():
        assert tuple(out[l].shape) == (1, side, side, channels), l
        assert side == feature_size(192, l, net.strides)
        assert np.all(np.isfinite(out[l].numpy())) and float(tf.reduce_max(out[l])) > 0.0


def test_vgg16_layers_follow_ssd(vgg_backbone):
    layers = {layer.name: layer for layer in vgg_backbone.net.layers}
    assert "block5_pool" not in layers and "block4_pool" in layers  # VGG's pool5 is replaced
    assert layers["pool5"].pool_size == (3, 3) and layers["pool5"].strides == (1, 1)
    assert layers["fc6"].dilation_rate == (6, 6) and layers["fc6"].kernel_size == (3, 3)
    assert layers["fc6"].filters == layers["fc7"].filters == 1024 and layers["fc7"].kernel_size == (1, 1)
    widths = {name: (layers[name + "_1"].filters, layers[name + "_2"].filters) for name in ("conv8", "conv9", "conv10")}
    assert widths == {"conv8": (256, 512), "conv9": (128, 256), "conv10": (128, 256)}
    assert all(layers[n + "_2"].strides == (2, 2) for n in ("conv8", "conv9", "conv10"))
    # No BatchNorm anywhere (frozen_bn has nothing to freeze).
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in vgg_backbone.net.layers)


def _write_legacy_h5(model, path):
    """The layout of Keras' own ``*_notop.h5`` files (layer groups, matched by order)."""
    weighted = [l for l in model.layers if l.weights]
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [l.name.encode() for l in weighted]
        for layer in weighted:
            group = f.create_group(layer.name)
            names = [f"{layer.name}_{i}".encode() for i in range(len(layer.weights))]
            group.attrs["weight_names"] = names
            for name, w in zip(names, layer.weights):
                group.create_dataset(name.decode(), data=w.numpy())


def test_vgg16_imagenet_weights_come_from_the_local_file(tmp_path, monkeypatch):
    source = vgg.vgg16_base(64)  # random weights standing in for ImageNet's
    models = tmp_path / "models"
    models.mkdir()
    _write_legacy_h5(source, str(models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    net = bb.Backbone("vgg16", 64, weights="imagenet")
    for name in ("block1_conv1", "block3_conv2", "block5_conv3"):
        np.testing.assert_array_equal(net.net.get_layer(name).kernel.numpy(), source.get_layer(name).kernel.numpy())
    fresh = bb.Backbone("vgg16", 64, weights="none")
    assert not np.array_equal(fresh.net.get_layer("block1_conv1").kernel.numpy(),
                              source.get_layer("block1_conv1").kernel.numpy())


def test_vgg16_weights_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(bb.BackboneWeightsError) as err:
        bb.Backbone("vgg16", 64, weights="imagenet")
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in str(err.value) and "downloaded" in str(err.value)
    missing = str(tmp_path / "nope.h5")
    with pytest.raises(bb.BackboneWeightsError, match="not found: " + missing):
        bb.Backbone("vgg16", 64, weights=missing)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an hdf5 file")
    with pytest.raises(bb.BackboneWeightsError, match=f"vgg16 from {broken}"):
        bb.Backbone("vgg16", 64, weights=str(broken))


def test_vgg16_freeze_at_2_freezes_blocks_1_and_2_only():
    net = bb.Backbone("vgg16", 64, freeze_at=2)
    weighted = [l for l in net.net.layers if l.weights]
    frozen = {l.name for l in weighted if not l.trainable}
    assert frozen == {"block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2"}
    assert vgg.stage_of("block3_conv1") == 3 and vgg.stage_of("conv8_1") is None
