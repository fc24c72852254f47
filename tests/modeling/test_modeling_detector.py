"""Tests for internet_tf.modeling.detector.Detector (Faster R-CNN with FPN) on a tiny configuration."""
import keras
import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.modeling.detector import Detector
from internet_tf.ops.roi_align import assign_levels, multilevel_roi_align

pytestmark = pytest.mark.cost(14)  # seconds in make test (tests/conftest.py schedules by it)

K = 3
B = 2
S = 128
R = 32  # RoIs per image; not tiny.yaml's 16, its fc width: the shape checks tell RoIs from features
C, FC = 8, 16  # tests/tiny.yaml's FPN and fc widths


@pytest.fixture(scope="module")
def cfg():
    model = tiny.config(f"model.roi.num_samples={R}").model
    assert (model.image_size, model.fpn_channels, model.head.fc_dim) == (S, C, FC)
    return model


@pytest.fixture(scope="module")
def model(cfg):
    tf.random.set_seed(0)
    m = Detector(cfg, num_classes=K)
    m.build_all(batch_size=1)
    return m


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    gt_boxes = np.full((B, 4, 4), -1.0, np.float32)
    gt_classes = np.full((B, 4), -1, np.int32)
    gt_boxes[0, :2] = [[10, 12, 60, 80], [70, 20, 120, 60]]
    gt_classes[0, :2] = [1, 3]
    gt_boxes[1, :1] = [[30, 30, 90, 110]]
    gt_classes[1, :1] = [2]
    return {
        "images": tf.constant(rng.uniform(0, 255, (B, S, S, 3)).astype(np.float32)),
        "gt_boxes": tf.constant(gt_boxes),
        "gt_classes": tf.constant(gt_classes),
        # Image 0 fills the input; image 1 is 128 x 96 after resizing (orig 64 x 48, scale 2).
        "image_info": tf.constant([[128.0, 128.0, 1.0, 1.0], [64.0, 48.0, 2.0, 2.0]]),
    }


def test_train_outputs_structure(model, cfg):
    batch = _batch()
    out = model.train_outputs(batch, training=True)
    pyr = out.pyramid
    assert sorted(pyr) == [2, 3, 4, 5, 6]
    for l in (2, 3, 4, 5, 6):
        assert tuple(pyr[l].shape) == (B, S // 2 ** l, S // 2 ** l, C), l
    n_anchors = 3 * sum((S // 2 ** l) ** 2 for l in (2, 3, 4, 5, 6))
    assert tuple(out.rpn_logits.shape) == (B, n_anchors)
    assert tuple(out.rpn_deltas.shape) == (B, n_anchors, 4)
    assert tuple(out.rois.shape) == (B, R, 4)
    assert tuple(out.roi_classes.shape) == (B, R)
    assert tuple(out.roi_levels.shape) == (B, R)
    assert tuple(out.roi_features.shape) == (B, R, 14, 14, C)
    assert tuple(out.head_features.shape) == (B, R, FC)
    assert tuple(out.class_logits.shape) == (B, R, K + 1)
    assert tuple(out.box_deltas.shape) == (B, R, K, 4)

    levels = out.roi_levels.numpy()
    assert levels.min() >= 2 and levels.max() <= 5
    np.testing.assert_array_equal(levels, assign_levels(out.rois, base=cfg.roi.level_base).numpy())  # Eq. 6
    classes = out.roi_classes.numpy()
    assert set(np.unique(classes)) <= {-1, 0, 1, 2, 3}
    # Ground-truth boxes join the candidates, so each image has foreground of its own classes.
    assert {1, 3} <= set(classes[0].tolist()) and 2 not in set(classes[0].tolist())
    assert 2 in set(classes[1].tolist()) and not ({1, 3} & set(classes[1].tolist()))
    # RoI features are RoIAlign of each RoI on its own level of this pyramid.
    ref = multilevel_roi_align(pyr, out.rois, out.roi_levels, output_size=14, sampling_ratio=2)
    np.testing.assert_allclose(out.roi_features.numpy(), ref.numpy(), atol=1e-5)
    # Image 1's valid region is 128 x 96: its non-gt RoIs (proposals) stay inside it.
    rois1 = out.rois.numpy()[1]
    assert rois1[:, 3].max() <= 110 + 1e-3  # gt box reaches x = 110; proposals <= 96


def test_train_losses_finite(model):
    losses, metrics = model.train_losses(_batch(), training=True)
    assert set(losses) == {"rpn_class", "rpn_box", "head_class", "head_box"}
    for name, v in losses.items():
        assert v.shape == () and np.isfinite(float(v)), name
    assert float(losses["rpn_class"]) > 0 and float(losses["head_class"]) > 0
    # Sampled RoIs include foreground (gt boxes join the candidates), so the box loss is live.
    assert float(losses["head_box"]) > 0
    assert "foreground_rois_per_image" in metrics
    assert 1.0 <= float(metrics["foreground_rois_per_image"]) <= R


def test_inference_outputs_static_last_dims(model, cfg):
    fn = tf.function(model.inference, input_signature=[
        tf.TensorSpec([None, S, S, 3], tf.float32), tf.TensorSpec([None, 4], tf.float32)])
    concrete = fn.get_concrete_function()
    spec = concrete.structured_outputs
    d = cfg.head.max_detections
    assert spec["detection_boxes"].shape.as_list()[1:] == [d, 4]
    assert spec["detection_scores"].shape.as_list()[1:] == [d]
    assert spec["detection_classes"].shape.as_list()[1:] == [d]
    assert spec["detection_classes"].dtype == tf.int32
    assert spec["num_detections"].shape.rank == 1
    batch = _batch()
    out = fn(batch["images"], batch["image_info"])
    assert out["detection_boxes"].shape == (B, d, 4)
    num = out["num_detections"].numpy()
    cls = out["detection_classes"].numpy()
    boxes = out["detection_boxes"].numpy()
    for b in range(B):
        assert 0 <= num[b] <= d
        assert ((cls[b, :num[b]] >= 1) & (cls[b, :num[b]] <= K)).all()
        assert (cls[b, num[b]:] == -1).all()
    # Boxes lie inside each image's resized region (image 1: 128 x 96).
    assert boxes[1, :, 3].max() <= 96 + 1e-3 and boxes[0, :, 2].max() <= 128 + 1e-3
    # Keras call() == inference with full-size image info.
    eager = model(batch["images"][:1])
    full = model.inference(batch["images"][:1], tf.constant([[128.0, 128.0, 1.0, 0.0]]))
    for k in eager:
        np.testing.assert_allclose(eager[k].numpy(), full[k].numpy(), atol=1e-5)


def test_train_step_traces_once_and_all_variables_get_gradients(model):
    opt = keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9)
    variables = model.trainable_variables
    opt.build(variables)
    missing = []

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            losses, _ = model.train_losses(batch, training=True)
            total = tf.add_n(list(losses.values()))
        grads = tape.gradient(total, variables)
        missing.extend(v.path for v, g in zip(variables, grads) if g is None)  # at trace time
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return total

    before = [v.numpy().copy() for v in variables[:3]]
    totals = [float(step(_batch(seed))) for seed in range(3)]
    assert step.experimental_get_tracing_count() == 1
    assert all(np.isfinite(t) for t in totals)
    assert not missing, f"variables without gradient: {missing}"
    assert any(not np.array_equal(v.numpy(), b) for v, b in zip(variables[:3], before))
