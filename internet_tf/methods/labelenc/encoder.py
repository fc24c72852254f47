"""The label encoding function h (Hao et al. 2020, appendix Table 1) and h with its own FPN.

h maps a label map y ``[B, H, W, K]`` (``label_map.py``) to ``{2: C2, ..., 5: C5}`` at
strides 4, 8, 16, 32 with 256/512/1024/2048 channels, the dict the detector's ``FPN``
reads from its backbone (``modeling/backbone.py``):

- stage 1: one 7×7 conv, stride 2, K -> 128 channels, with bias and *no* activation;
- stages 2–5: 1/2/2/1 bottleneck blocks of widths 64/128/256/512 (outputs 4× the width).
  A block is 1×1 -> ReLU -> 3×3 -> ReLU -> 1×1, every conv with a bias, then the shortcut
  is added and a ReLU applied. Table 1 gives every stage's first 3×3 stride 2 — including
  stage 2, as there is no max-pool — so the stages end at strides 4, 8, 16, 32 (after the
  stride-2 stem); all other convs have stride 1.
- the shortcut is the identity, or a 1×1 conv with the block's stride where the channels or
  the stride change (each stage's first block; computed as a 1×1 conv on every stride-th
  pixel, ``Bottleneck.subsample``). It has no bias: its bias would only add to
  the block's last 1×1 bias before the same ReLU (the authors' code has none either).
- no normalisation layer and no max-pool anywhere.

Layer count (Table 1's "19 layers"): the convs on the main path, 1 (stem) + 3 per block ×
6 blocks = 19, listed by ``LabelEncodingFunction.main_path_convs``; like ResNet-50's "50",
the 4 projection shortcuts are not counted. Convs use padding "same" like the library's
backbones. Kernels start from a fan-in uniform initialiser of variance 1/fan_in (the
authors' ``kaiming_uniform_(a=1)``), biases from 0.

``LabelEncoder`` is h followed by its own ``modeling.fpn.FPN`` of the detector's width:
y -> ``{2..6: P_l}``, the teacher pyramid of the distillation loss (``distill.py``).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from internet_tf.modeling.fpn import FPN
from internet_tf.modeling.tracking import track
from internet_tf.ops.levels import PYRAMID_LEVELS as LEVELS  # C2–C5 of h, as the backbone's

WIDTHS = (64, 128, 256, 512)     # Table 1: bottleneck widths of stages 2–5
BLOCKS = (1, 2, 2, 1)            # Table 1: blocks per stage
EXPANSION = 4                    # block output = 4 × width (256/512/1024/2048)
STEM_CHANNELS = 128              # Table 1: stage 1 outputs 128 channels
MIN_WIDTH = 8  # TF's CPU (oneDNN) convs corrupt memory on 2-channel backward passes


def encoder_shape(backbone: str, small_resnet_widths=()):
    """(bottleneck widths, stem channels, C2–C5 channels) of h for the detector's
    ``backbone``, so that h's outputs have the channels of the backbone's and its FPN the
    detector FPN's shapes: Table 1 for the ResNets; for the small CPU ResNet (ours) its stage
    widths ``small_resnet_widths`` as outputs, a quarter of them (at least 8) as bottleneck
    widths, and its stem width."""
    if backbone == "small_resnet":
        outputs = tuple(int(w) for w in small_resnet_widths)
        return tuple(max(MIN_WIDTH, w // EXPANSION) for w in outputs), outputs[0], outputs
    return WIDTHS, STEM_CHANNELS, tuple(EXPANSION * w for w in WIDTHS)


def _conv(filters: int, kernel: int, stride: int, name: str, use_bias: bool = True):
    init = keras.initializers.VarianceScaling(1.0, mode="fan_in", distribution="uniform")
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=use_bias,
                               kernel_initializer=init, name=name)


class Bottleneck(keras.layers.Layer):
    """Table 1's ResBlock: 1×1 -> ReLU -> 3×3 (stride) -> ReLU -> 1×1, + shortcut, ReLU."""

    def __init__(self, in_channels: int, width: int, out_channels: int, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = _conv(width, 1, 1, "conv1")
        self.conv2 = _conv(width, 3, stride, "conv2")
        self.conv3 = _conv(out_channels, 1, 1, "conv3")
        self.shortcut = None  # identity unless the channels or the stride change
        self.stride = stride
        if in_channels != out_channels or stride != 1:
            self.shortcut = _conv(out_channels, 1, 1, "shortcut", use_bias=False)

    def main_path(self) -> list:
        return [self.conv1, self.conv2, self.conv3]

    def call(self, x):
        y = tf.nn.relu(self.conv1(x))
        y = tf.nn.relu(self.conv2(y))
        y = self.conv3(y)
        return tf.nn.relu(y + (x if self.shortcut is None else self.shortcut(self.subsample(x))))

    def subsample(self, x):
        """The input pixels a 1×1 stride-s "same" conv reads (0, s, 2s, ...): the strided
        projection is this then a 1×1 stride-1 conv — the same values, without TF's CPU
        1×1 stride-2 backward kernel, which corrupts memory for narrow channels."""
        return x if self.stride == 1 else x[:, ::self.stride, ::self.stride, :]


class LabelEncodingFunction(keras.layers.Layer):
    """h of Table 1: label map ``[B, H, W, K]`` -> ``{2..5: C_l}`` at strides 2**l.

    ``widths``/``stem_channels`` default to Table 1; smaller values give a cheap variant
    of the same shape (e.g. for CPU runs). ``outputs`` (C2–C5 channels) defaults to 4× the
    widths (Table 1). ``num_classes`` (K) builds the stem up front, which calling it on a
    subset of the label map's channels needs.
    """

    def __init__(self, widths=WIDTHS, stem_channels: int = STEM_CHANNELS, outputs=None,
                 num_classes=None, name: str = "label_encoding_function", **kwargs):
        super().__init__(name=name, **kwargs)
        self.stem = _conv(stem_channels, 7, 2, "stem")
        if num_classes is not None:
            self.stem.build((None, None, None, int(num_classes)))
        self.stages = []
        in_channels = stem_channels
        outputs = outputs or [EXPANSION * w for w in widths]
        for level, width, out, count in zip(LEVELS, widths, outputs, BLOCKS):
            stage = []
            for i in range(count):
                stage.append(Bottleneck(in_channels, width, out, 2 if i == 0 else 1,
                                        name=f"c{level}_block{i + 1}"))
                in_channels = out
            self.stages.append(stage)
        track(self, [block for stage in self.stages for block in stage])

    def blocks(self) -> list:
        return [block for stage in self.stages for block in stage]

    def main_path_convs(self) -> list:
        """The 19 layers of Table 1, in order (projection shortcuts not counted)."""
        return [self.stem] + [conv for block in self.blocks() for conv in block.main_path()]

    def call(self, label_maps, classes=None):
        """``classes`` (optional sorted int [P]): ``label_maps`` holds only these channels of
        y (``label_map(..., channels=classes)``) and every other channel is zero. The stem
        then convolves them with their kernel slices — the same sum as over all K channels —
        (on COCO a few classes per batch out of 80: most of h's cost at 512²)."""
        if classes is None:
            x = self.stem(label_maps)  # no activation after stage 1 (Table 1)
        else:
            if not self.stem.built:
                raise ValueError("a label encoder called on a subset of the channels needs num_classes")
            x = tf.nn.conv2d(label_maps, tf.gather(self.stem.kernel, classes, axis=2),
                             strides=self.stem.strides, padding="SAME") + self.stem.bias
        out = {}
        for level, stage in zip(LEVELS, self.stages):
            for block in stage:
                x = block(x)
            out[level] = x
        return out


class LabelEncoder(keras.layers.Layer):
    """FPN_h(h(y)): label map ``[B, H, W, K]`` -> ``{2..6: P_l}`` with ``fpn_channels`` each."""

    def __init__(self, fpn_channels: int = 256, widths=WIDTHS, stem_channels: int = STEM_CHANNELS,
                 outputs=None, num_classes=None, name: str = "label_encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.h = LabelEncodingFunction(widths, stem_channels, outputs, num_classes)
        self.fpn = FPN(fpn_channels, name="label_fpn")

    def call(self, label_maps, classes=None):
        return self.fpn(self.h(label_maps, classes))
