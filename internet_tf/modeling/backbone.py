"""Backbones returning four levels C2–C5 (Lin et al. 2017; VGG-16: Li et al. 2019,
Table 5): Keras ResNet-50/101 and a small ResNet
at strides 4–32, and VGG-16 with SSD's extra layers at strides 16–128 (``modeling/vgg.py``).

Each backbone states its levels' strides (``backbone_strides``; ``ops/levels.py``): the
detector builds its anchors and RoIAlign from them, the intertwiner its RoI-size split.

Pretrained weights come only from local files: ``imagenet`` means the file Keras would have
cached under ``$KERAS_HOME/models`` (nothing is downloaded at run time), or a path to an
``.h5``/``.weights.h5`` file; ``none`` trains from scratch.
"""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from internet_tf.modeling import vgg
from internet_tf.modeling.batch_norm import BatchNorm, from_keras
from internet_tf.ops.levels import PYRAMID_LEVELS, level_strides

# keras.applications layer names of the last block of each stage.
_STAGE_OUTPUTS = {
    "resnet50": ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    "resnet101": ("conv2_block3_out", "conv3_block4_out", "conv4_block23_out", "conv5_block3_out"),
}
_IMAGENET_FILES = {
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet101": "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
# Caffe-style ImageNet statistics used by keras.applications ResNets and VGG-16 (BGR order).
_BGR_MEAN = (103.939, 116.779, 123.68)


class BackboneWeightsError(ValueError):
    """Pretrained weights were requested but cannot be had on this machine."""


def backbone_strides(arch: str) -> dict:
    """``{level: stride}`` of the backbone ``arch``'s levels 2–5 and the neck's P6."""
    return level_strides(vgg.FIRST_STRIDE if arch == "vgg16" else 4)


def resolve_weights(backbone: str, weights: str):
    """Maps the ``model.backbone_weights`` setting to a local file path, or None."""
    if weights in (None, "", "none"):
        return None
    if weights == "imagenet":
        if backbone not in _IMAGENET_FILES:
            raise BackboneWeightsError(
                f"backbone '{backbone}' has no ImageNet weights; use backbone_weights: none")
        keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        path = os.path.join(keras_home, "models", _IMAGENET_FILES[backbone])
        if not os.path.exists(path):
            raise BackboneWeightsError(
                f"ImageNet weights for {backbone} are not on this machine (looked for {path}). "
                "Nothing is downloaded at run time: copy the Keras file "
                f"'{_IMAGENET_FILES[backbone]}' there, or set model.backbone_weights to its local "
                "path, or to 'none' to train from scratch.")
        return path
    if not os.path.exists(weights):
        raise BackboneWeightsError(f"backbone weights file not found: {weights}")
    return weights


def preprocess(images):
    """RGB 0..255 float -> BGR mean-subtracted, the convention of the Keras ResNets and VGG-16."""
    # tf.reverse, not images[..., ::-1]: the same values, 2-3x faster on CPU (benchmarks/profile_step.py)
    return tf.reverse(images, [-1]) - tf.constant(_BGR_MEAN, dtype=images.dtype)


def _load_weights(base: keras.Model, name: str, weights_path):
    """Loads the local weights file into the Keras application ``base`` (None: nothing)."""
    if weights_path is None:
        return
    try:
        base.load_weights(weights_path)
    except Exception as e:  # surface the path; Keras' own message can be cryptic
        raise BackboneWeightsError(
            f"could not load backbone weights for {name} from {weights_path}: {e}") from e


def _keras_vgg16(image_size: int, weights_path):
    base = vgg.vgg16_base(image_size)
    _load_weights(base, "vgg16", weights_path)
    return vgg.ssd_levels(base)


def _keras_resnet(name: str, image_size: int, weights_path):
    ctor = {"resnet50": keras.applications.ResNet50, "resnet101": keras.applications.ResNet101}[name]
    base = ctor(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    _load_weights(base, name, weights_path)
    base = from_keras(base)  # our BN: statistics over the global batch under a strategy
    outputs = [base.get_layer(n).output for n in _STAGE_OUTPUTS[name]]
    return keras.Model(base.input, outputs, name=name)


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=name + "_conv")(x)
    x = BatchNorm(name=name + "_bn")(x)
    return keras.layers.ReLU(name=name + "_relu")(x) if relu else x


def _basic_block(x, filters, stride, name):
    shortcut = x
    y = _conv_bn(x, filters, 3, stride, name + "_1")
    y = _conv_bn(y, filters, 3, 1, name + "_2", relu=False)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, name + "_0", relu=False)
    return keras.layers.ReLU(name=name + "_out")(keras.layers.Add()([shortcut, y]))


def small_resnet(image_size: int, widths=(32, 64, 128, 256)):
    """A four-stage basic-block ResNet for CPU runs (one block per stage, strides 4–32)."""
    inputs = keras.Input((image_size, image_size, 3))
    x = _conv_bn(inputs, widths[0], 7, 2, "conv1")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    outputs = []
    for stage, width in enumerate(widths, start=2):
        x = _basic_block(x, width, 1 if stage == 2 else 2, f"conv{stage}_block1")
        outputs.append(x)
    return keras.Model(inputs, outputs, name="small_resnet")


class Backbone(keras.layers.Layer):
    """Image -> {2: C2, 3: C3, 4: C4, 5: C5}; level l has stride ``self.strides[l]``."""

    def __init__(self, name: str, image_size: int, weights: str = "none", frozen_bn: bool = False,
                 freeze_at: int = 0, small_widths=(32, 64, 128, 256), **kwargs):
        super().__init__(name="backbone", **kwargs)
        self.arch = name
        self.strides = backbone_strides(name)
        path = resolve_weights(name, weights)
        stage_of = _stage_of
        if name == "small_resnet":
            if path is not None:
                raise BackboneWeightsError("small_resnet has no pretrained weights; use backbone_weights: none")
            self.net = small_resnet(image_size, tuple(small_widths))
        elif name == "vgg16":
            self.net = _keras_vgg16(image_size, path)
            stage_of = vgg.stage_of
        else:
            self.net = _keras_resnet(name, image_size, path)
        for layer in self.net.layers:
            stage = stage_of(layer.name)
            if freeze_at and stage is not None and stage <= freeze_at:
                layer.trainable = False
            if frozen_bn and isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False  # Keras 3: a non-trainable BN runs in inference mode

    def call(self, images, training=False):
        feats = self.net(preprocess(images), training=training)
        return {level: f for level, f in zip(PYRAMID_LEVELS, feats)}


def _stage_of(layer_name: str):
    """conv1_* -> 1, conv3_block2_* -> 3, pool1 -> 1, others -> None."""
    if layer_name.startswith("pool1") or layer_name.startswith("conv1"):
        return 1
    if layer_name.startswith("conv") and len(layer_name) > 4 and layer_name[4].isdigit():
        return int(layer_name[4])
    return None
