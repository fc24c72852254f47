"""Tests for internet_tf.methods.labelenc.encoder (the LabelEnc appendix's Table 1): h's 19 layers,
its strides and shapes, one bottleneck against numpy, and h with its own FPN."""
import keras
import numpy as np
import tensorflow as tf

from internet_tf.methods.labelenc.encoder import Bottleneck, LabelEncoder, LabelEncodingFunction
from internet_tf.modeling.fpn import FPN

# Table 1, row by row: (kernel, stride, output channels) of the 19 layers.
TABLE_1 = ([(7, 2, 128)]
           + [(1, 1, 64), (3, 2, 64), (1, 1, 256)]
           + [(1, 1, 128), (3, 2, 128), (1, 1, 512), (1, 1, 128), (3, 1, 128), (1, 1, 512)]
           + [(1, 1, 256), (3, 2, 256), (1, 1, 1024), (1, 1, 256), (3, 1, 256), (1, 1, 1024)]
           + [(1, 1, 512), (3, 2, 512), (1, 1, 2048)])
NORMALISATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                 keras.layers.GroupNormalization, keras.layers.UnitNormalization)
POOLING = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _all_layers(layer):
    return list(layer._flatten_layers(include_self=False, recursive=True))


def test_h_has_the_19_layers_of_table_1_and_no_normalisation_or_pooling():
    h = LabelEncodingFunction()
    out = h(tf.zeros([1, 64, 64, 80]))   # 80 COCO classes in, as in Table 1's caption
    convs = h.main_path_convs()
    assert len(convs) == 19              # stem + 3 convs × 6 blocks; projections not counted
    assert [(c.kernel_size[0], c.strides[0], c.filters) for c in convs] == TABLE_1
    assert convs[0].kernel.shape == (7, 7, 80, 128)
    for conv in convs:                   # biases everywhere, ReLUs applied by the blocks
        assert conv.use_bias and conv.activation is keras.activations.linear
    layers = _all_layers(h)
    assert not [l for l in layers if isinstance(l, NORMALISATION + POOLING)]
    all_convs = [l for l in layers if isinstance(l, keras.layers.Conv2D)]
    shortcuts = [b.shortcut for b in h.blocks() if b.shortcut is not None]
    assert len(all_convs) == 23 and len(shortcuts) == 4  # the first block of every stage
    assert [b.shortcut is None for b in h.blocks()] == [False, False, True, False, True, False]
    assert [b.stride for b in h.blocks() if b.shortcut is not None] == [2, 2, 2, 2]
    assert not any(s.use_bias for s in shortcuts)
    assert sorted(out) == [2, 3, 4, 5]


def test_h_outputs_c2_to_c5_at_strides_4_to_32():
    h = LabelEncodingFunction()
    y = tf.random.uniform([2, 64, 64, 3])
    out = h(y)
    expected = {2: (2, 16, 16, 256), 3: (2, 8, 8, 512), 4: (2, 4, 4, 1024), 5: (2, 2, 2, 2048)}
    assert {l: tuple(t.shape) for l, t in out.items()} == expected
    for level, t in out.items():
        assert 64 // t.shape[1] == 2 ** level
        assert float(tf.reduce_min(t)) >= 0.0   # every block ends in a ReLU


def _np_conv_same(x, kernel, bias, stride):
    """Keras 'same' convolution of one image x [H, W, Cin] with kernel [k, k, Cin, Cout]."""
    k = kernel.shape[0]
    out_h, out_w = -(-x.shape[0] // stride), -(-x.shape[1] // stride)
    pad_h = max((out_h - 1) * stride + k - x.shape[0], 0)
    pad_w = max((out_w - 1) * stride + k - x.shape[1], 0)
    padded = np.pad(x, ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((out_h, out_w, kernel.shape[3]))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[i * stride:i * stride + k, j * stride:j * stride + k]
            out[i, j] = np.tensordot(patch, kernel, axes=3)
    return out + (0.0 if bias is None else bias)


def test_bottleneck_matches_numpy():
    relu = lambda t: np.maximum(t, 0.0)
    rng = np.random.default_rng(0)
    # A projection block (3 -> 5 channels, stride 2) and an identity block (5 -> 5, stride 1).
    for block, stride, channels in ((Bottleneck(3, 2, 5, 2), 2, 3), (Bottleneck(5, 2, 5, 1), 1, 5)):
        inputs = rng.normal(size=(1, 6, 6, channels)).astype(np.float32)
        block(inputs)  # build
        for conv in block.main_path():     # non-zero biases, so that they are checked too
            conv.bias.assign(tf.random.normal(conv.bias.shape))
        got = block(inputs).numpy()[0]
        w = [(c.kernel.numpy(), c.bias.numpy()) for c in block.main_path()]
        y = relu(_np_conv_same(inputs[0], *w[0], 1))
        y = relu(_np_conv_same(y, *w[1], stride))
        y = _np_conv_same(y, *w[2], 1)
        shortcut = (inputs[0] if block.shortcut is None
                    else _np_conv_same(inputs[0], block.shortcut.kernel.numpy(), None, stride))
        np.testing.assert_allclose(got, relu(y + shortcut), rtol=1e-4, atol=1e-5)
        assert got.shape == (6 // stride, 6 // stride, 5)


def test_stem_has_no_activation():
    h = LabelEncodingFunction(widths=(2, 2, 2, 2), stem_channels=4)
    h(tf.zeros([1, 8, 8, 2]))
    h.stem.bias.assign(-tf.ones([4]))
    assert np.all(h.stem(tf.zeros([1, 8, 8, 2])).numpy() == -1.0)  # not clipped at 0


def test_label_encoder_is_h_plus_its_own_fpn_and_checkpoints_every_variable(tmp_path):
    enc = LabelEncoder(fpn_channels=16, widths=(4, 8, 8, 8), stem_channels=8)
    pyramid = enc(tf.random.uniform([2, 64, 64, 3]))
    assert isinstance(enc.fpn, FPN) and enc.fpn.channels == 16
    assert {l: tuple(t.shape) for l, t in pyramid.items()} == {
        l: (2, 64 // 2 ** l, 64 // 2 ** l, 16) for l in (2, 3, 4, 5, 6)}
    assert len(enc.h.main_path_convs()) == 19
    path = tf.train.Checkpoint(model=enc).write(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if "/.ATTRIBUTES/VARIABLE_VALUE" in name]
    assert len(saved) == len(enc.weights) == 2 * 19 + 4 + 4 * 4  # convs (+bias), projections, FPN
