"""LabelEnc as a detector plug-in (Hao et al. 2020): step-1 and step-2 losses, who gets gradient from
what, the distillation schedule, nothing of it on the inference path."""
import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.methods.labelenc.encoder import encoder_shape
from internet_tf.methods.labelenc.method import LabelEnc
from internet_tf.assembly.factory import build_model

from test_intertwiner_method import batch

pytestmark = pytest.mark.cost(24)  # seconds in make test (tests/conftest.py schedules by it)

OFF = ["model.intertwiner.enabled=false", "model.labelenc.enabled=true"]


def tiny_labelenc(*overrides, num_classes=3, build=True):
    """The tiny LabelEnc detector; ``build=False`` leaves its variables unbuilt (no forward
    pass), for what needs only the configured layers."""
    cfg = tiny.config(*OFF, *overrides)
    model = build_model(cfg.model, num_classes)
    if build:
        model.build_all()
    return model


def _labelenc(model):
    return next(m for m in model.methods if isinstance(m, LabelEnc))


def _grads(model, loss_names, b):
    with tf.GradientTape() as tape:
        losses, _ = model.train_losses(b, training=True)
        total = tf.add_n([losses[n] for n in loss_names])
    variables = model.trainable_variables
    return {v.path: g for v, g in zip(variables, tape.gradient(total, variables))}


def _nonzero(grads, prefix):
    return [p for p, g in grads.items() if p.startswith(prefix) and g is not None
            and float(tf.reduce_max(tf.abs(g))) > 0]


def test_step1_runs_the_detector_heads_on_h_of_y_and_h_learns_only_from_them():
    model = tiny_labelenc()
    le = _labelenc(model)
    assert encoder_shape(model.cfg.backbone, model.cfg.small_resnet_widths) == ((8, 8, 8, 8), 8, (8, 8, 8, 8))  # small backbone's widths
    losses, metrics = model.train_losses(batch(), training=True)
    assert set(losses) == {"rpn_class", "rpn_box", "head_class", "head_box", "distill",
                           "labelenc_rpn_class", "labelenc_rpn_box", "labelenc_head_class",
                           "labelenc_head_box"}
    assert float(metrics["labelenc_distill_unweighted"]) > 0
    enc = le.encoder.path
    on_labels = _grads(model, [n for n in losses if n.startswith("labelenc_")], batch())
    assert _nonzero(on_labels, enc)  # h and its FPN learn from the heads on h(y) ...
    assert _nonzero(on_labels, model.rpn_head.path)  # ... which are the detector's own heads
    assert not _nonzero(on_labels, model.backbone.path)  # the images play no part
    distill = _grads(model, ["distill"], batch())
    assert not _nonzero(distill, enc)  # the teacher is detached
    assert _nonzero(distill, le.adapt.path) and _nonzero(distill, model.fpn.path)


def test_step2_freezes_h_and_keeps_only_the_distillation():
    model = tiny_labelenc("model.labelenc.step=2", "model.labelenc.step1_dir=/nowhere")
    le = _labelenc(model)
    assert le.encoder.weights and not le.encoder.trainable_weights
    assert not any(v.path.startswith(le.encoder.path) for v in model.trainable_variables)
    losses, _ = model.train_losses(batch(), training=True)
    assert set(losses) == {"rpn_class", "rpn_box", "head_class", "head_box", "distill"}
    grads = _grads(model, list(losses), batch())
    assert _nonzero(grads, le.adapt.path) and _nonzero(grads, model.fpn.path)


def test_distillation_schedule_follows_the_fractions_of_the_run():
    step1 = _labelenc(tiny_labelenc("model.labelenc.distill_start=0.25", build=False))
    step2 = _labelenc(tiny_labelenc("model.labelenc.step=2", "model.labelenc.step1_dir=/x",
                                    "model.labelenc.distill_stop=0.8", build=False))
    assert float(step1.distill_factor(0)) == 1.0  # run length unknown: on
    step1.set_total_steps(100)
    step2.set_total_steps(100)
    assert [float(step1.distill_factor(s)) for s in (0, 24, 25, 99)] == [0, 0, 1, 1]
    assert [float(step2.distill_factor(s)) for s in (0, 79, 80, 99)] == [1, 1, 0, 0]
    model = tiny_labelenc("model.labelenc.distill_start=0.5")
    _labelenc(model).set_total_steps(10)
    losses, metrics = model.train_losses(batch(), training=True, step=tf.constant(2))
    assert float(losses["distill"]) == 0.0 and float(metrics["labelenc_distill_unweighted"]) > 0


def test_nothing_of_labelenc_is_on_the_inference_path():
    model = tiny_labelenc()
    le = _labelenc(model)
    assert le.inference_layers() == []
    inference_vars = {id(v) for layer in model.inference_layers() for v in layer.weights}
    assert not any(id(v) in inference_vars for v in le.weights)
    b = batch()
    before = model.inference(b["images"], b["image_info"])["detection_scores"].numpy()
    for v in le.weights:
        v.assign(v + 1.0)
    np.testing.assert_array_equal(before, model.inference(b["images"], b["image_info"])["detection_scores"].numpy())


def test_the_stem_on_the_present_classes_equals_the_full_stem():
    from internet_tf.methods.labelenc.label_map import label_map
    from internet_tf.methods.labelenc.method import present_channels

    le = _labelenc(tiny_labelenc(num_classes=5))
    b = batch()  # classes 1 and 2 of 5, padding -1
    b["gt_classes"] = tf.where(b["gt_classes"] == 1, 4, b["gt_classes"])  # classes 2 and 4
    classes = present_channels(b["gt_classes"], 5)
    assert classes.numpy().tolist() == [0, 1, 3]  # channel 0 always, then classes 2 and 4
    y = label_map(b["gt_boxes"], b["gt_classes"], 5, 128, 128)
    y_present = label_map(b["gt_boxes"], b["gt_classes"], 5, 128, 128, channels=classes)
    np.testing.assert_array_equal(y_present.numpy(), tf.gather(y, classes, axis=-1).numpy())
    # a box whose class is not among the channels paints nothing
    np.testing.assert_array_equal(label_map(b["gt_boxes"], b["gt_classes"], 5, 128, 128, channels=[3]).numpy(),
                                  y.numpy()[..., 3:4])
    full, sparse = le.encoder(y), le.encoder(y_present, classes=classes)
    for level in full:
        np.testing.assert_allclose(sparse[level].numpy(), full[level].numpy(), rtol=1e-4, atol=1e-5)
    with tf.GradientTape(persistent=True) as tape:
        a = tf.reduce_sum(le.encoder(y)[3])
        c = tf.reduce_sum(le.encoder(y_present, classes=classes)[3])
    kernel = le.encoder.h.stem.kernel
    np.testing.assert_allclose(tape.gradient(c, kernel).numpy(), tape.gradient(a, kernel).numpy(),
                               rtol=1e-4, atol=1e-5)
    empty = present_channels(tf.fill([2, 3], -1), 5)  # no ground truth at all: a zero stem input
    assert empty.numpy().tolist() == [0]  # never empty: an all-zero channel
    none = le.encoder(tf.zeros_like(y[..., :1]), classes=empty)
    np.testing.assert_allclose(none[2].numpy(), le.encoder(tf.zeros_like(y))[2].numpy(), rtol=1e-5, atol=1e-6)


def test_only_step1_asks_the_detector_for_a_second_pass_on_the_teacher_pyramid():
    """The second pass of the detector's RPN and box head (``Detector.train_losses``) runs on
    step 1's ``label_pyramid``, FPN_h(h(y)); step 2 asks for none."""
    le = _labelenc(tiny_labelenc())
    b = batch()
    pyramid = le.label_pyramid(b, training=False)  # no augmentation: the clean label map
    assert sorted(pyramid) == [2, 3, 4, 5, 6]
    teacher = le.teacher(b, training=False)
    for level in pyramid:
        np.testing.assert_array_equal(pyramid[level].numpy(), teacher[level].numpy())
    step2 = _labelenc(tiny_labelenc("model.labelenc.step=2", "model.labelenc.step1_dir=/x", build=False))
    assert step2.label_pyramid(b, training=True) is None
