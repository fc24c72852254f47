"""VGG-16 with SSD's extra layers as a four-level backbone, without FPN (paper Sec. 6.4 and
Table 5; Liu et al. 2016, "SSD", Sec. 3 and its 512-px model).

The paper takes "the output of layer conv7, conv8_2, conv9_2 and conv10_2 ... for P2 to P5".
Built on ``keras.applications.VGG16`` (conv1_1–conv5_3, Keras names ``block1_conv1`` ..
``block5_conv3``, its 2×2 stride-2 pool1–pool4), then as in SSD:

- pool5: 3×3 max-pool with stride 1 (not VGG's 2×2 stride 2), so conv5 and fc6/fc7 keep
  stride 16;
- fc6: 3×3 conv dilated 6, 1024 channels + ReLU; fc7: 1×1 conv, 1024 + ReLU (= "conv7");
- conv8: 1×1 256 + ReLU, then 3×3 stride 2, 512 + ReLU (conv8_2); conv9: 1×1 128, 3×3/2 256
  (conv9_2); conv10: 1×1 128, 3×3/2 256 (conv10_2) — SSD512's widths, each with ReLU.

=====  ==========  ======  ========
level  layer       stride  channels
=====  ==========  ======  ========
2      conv7 (fc7)     16      1024
3      conv8_2         32       512
4      conv9_2         64       256
5      conv10_2       128       256
6      (neck)         256   (P6: stride-2 subsample of P5, RPN only)
=====  ==========  ======  ========

Strides. These levels do not have stride 2**l: conv7 at stride 4 would need VGG's pool3 and
pool4 removed (conv4–fc7 at 4× the resolution each way, 16× their cost, and no longer SSD's
layers). So the level index keeps its meaning (the l-th pyramid level: Eq. 6 assigns RoIs to
it, Eq. 7 splits the sets by it) and the *stride* of each level is a property of the backbone
(``FIRST_STRIDE`` here; ``modeling/backbone.py: backbone_strides``), threaded to the three
places that compute with it: the anchors' grids, RoIAlign's crop and the intertwiner's RoI-size
split (``ops/levels.py``). Each level is still half the size of the one before, which is all
the intertwiner's generator and OT need (P_{l+1} up-sampled ×2 onto P_l).

Weights: SSD initialises fc6/fc7 from VGG's sub-sampled fully connected layers; the Keras
"notop" file holds no fully connected layers, so fc6, fc7 and conv8–conv10 start from He
initialisation; conv1_1–conv5_3 take the ImageNet weights, from the local Keras file only
(``backbone.resolve_weights``). VGG-16 has no BatchNorm (``frozen_bn`` changes nothing).
"""
from __future__ import annotations

import re

import keras

FIRST_STRIDE = 16  # stride of level 2 (conv7); each next level doubles it
LEVEL_LAYERS = ("fc7", "conv8_2", "conv9_2", "conv10_2")  # P2–P5
# SSD512's extra layers after conv7: (1×1 reduction, 3×3 stride-2 output) channels.
EXTRA_WIDTHS = {"conv8": (256, 512), "conv9": (128, 256), "conv10": (128, 256)}
FC_WIDTH = 1024
FC6_DILATION = 6


def vgg16_base(image_size: int) -> keras.Model:
    """Keras' VGG-16 convolutional part (no weights yet; ``backbone`` loads the local file)."""
    return keras.applications.VGG16(include_top=False, weights=None,
                                    input_shape=(image_size, image_size, 3))


def _conv(x, filters, kernel, name, strides=1, dilation=1):
    return keras.layers.Conv2D(filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
                               activation="relu", kernel_initializer="he_uniform", name=name)(x)


def ssd_levels(base: keras.Model) -> keras.Model:
    """``base`` (``vgg16_base``, weights loaded) -> a model with outputs [conv7, conv8_2,
    conv9_2, conv10_2] (levels 2–5, strides 16–128)."""
    x = base.get_layer("block5_conv3").output
    x = keras.layers.MaxPooling2D(3, strides=1, padding="same", name="pool5")(x)
    x = _conv(x, FC_WIDTH, 3, "fc6", dilation=FC6_DILATION)
    x = _conv(x, FC_WIDTH, 1, "fc7")
    outputs = [x]
    for name, (reduce, width) in EXTRA_WIDTHS.items():
        x = _conv(x, reduce, 1, name + "_1")
        x = _conv(x, width, 3, name + "_2", strides=2)
        outputs.append(x)
    return keras.Model(base.input, outputs, name="vgg16")


def stage_of(layer_name: str):
    """The VGG block of a layer (``block3_conv2`` -> 3) for ``freeze_at``; None for SSD's new
    layers (pool5, fc6, fc7, conv8–conv10), which have no pretrained weights to keep."""
    match = re.match(r"block(\d+)_", layer_name)
    return int(match.group(1)) if match else None
