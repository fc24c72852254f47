"""The intertwiner method composed with the detector (InterNet) end to end on a tiny model: loss terms of Eq. 5, the buffer taking the batch
before the loss, detach vs. not (Table 2e), checkpointing the buffer, inference path."""
import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.assembly.factory import build_model
from internet_tf.methods.intertwiner.method import Intertwiner

pytestmark = pytest.mark.cost(33)  # seconds in make test (tests/conftest.py schedules by it)

def tiny_model(*overrides, num_classes=3):
    cfg = tiny.config(*overrides)
    model = build_model(cfg.model, num_classes)
    model.build_all()
    return model


def batch():
    # Class 1 appears small (level 2) and large (level 4); class 2 only small.
    boxes = [[10, 10, 20, 20], [40, 40, 100, 100], [70, 10, 80, 22], [-1, -1, -1, -1]]
    return {"images": tf.random.stateless_uniform([2, 128, 128, 3], [1, 2]) * 255,
            "gt_boxes": tf.constant([boxes, boxes], tf.float32),
            "gt_classes": tf.constant([[1, 1, 2, -1]] * 2),
            "image_info": tf.constant([[128, 128, 1, 1], [128, 128, 1, 2]], tf.float32)}


def test_internet_losses_and_buffer_before_loss():
    model = tiny_model()
    assert [type(m) for m in model.methods] == [Intertwiner]
    assert int(model.intertwiner.buffer.coverage(0)) == 0  # build_all leaves the buffer empty
    losses, metrics = model.train_losses(batch(), training=True)
    assert set(losses) == {"rpn_class", "rpn_box", "head_class", "head_box", "intertwiner", "alignment"}
    assert all(np.isfinite(float(v)) for v in losses.values())
    # The large class-1 RoIs entered the buffer in this very step, and the class-1 small RoIs
    # on level 2 were compared with it, so the level-2 term is positive.
    assert int(model.intertwiner.buffer.coverage(0)) >= 1 and bool(model.intertwiner.buffer.representatives(0)[1][1])
    assert float(metrics["intertwiner_level2"]) > 0.0
    assert float(metrics["reliable_rois"]) > 0 and float(metrics["buffer_mean_norm"]) > 0


@pytest.mark.parametrize("detach", [True, False])
def test_detach_controls_gradient_into_reliable_path(detach):
    # Generator source without alignment: the generator F only feeds the reliable set, so its
    # gradient from the intertwiner loss exists exactly when the buffer is not detached.
    model = tiny_model("model.intertwiner.alignment=none", "model.intertwiner.reliable_source=generator",
                       f"model.intertwiner.buffer.detach={str(detach).lower()}")
    generator_vars = [v for g in model.intertwiner.ot.generators for v in g.trainable_variables]
    assert generator_vars
    with tf.GradientTape() as tape:
        losses, _ = model.train_losses(batch(), training=True)
    grads = tape.gradient(losses["intertwiner"], generator_vars)
    norm = sum(float(tf.reduce_sum(tf.abs(g))) for g in grads if g is not None)
    if detach:
        assert norm == 0.0
    else:
        assert norm > 0.0


def test_buffer_survives_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    model.train_losses(batch(), training=True)
    saved = [v.numpy().copy() for v in model.intertwiner.buffer.variables]
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = tiny_model()
    assert int(fresh.intertwiner.buffer.coverage(0)) == 0
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    for a, b in zip(saved, fresh.intertwiner.buffer.variables):
        np.testing.assert_array_equal(a, b.numpy())
    assert int(fresh.intertwiner.buffer.coverage(0)) == int(model.intertwiner.buffer.coverage(0)) >= 1


@pytest.mark.parametrize("enabled", [True, False])
def test_checkpoint_covers_every_variable(tmp_path, enabled):
    # Layers kept only in Python lists are invisible to tf.train.Checkpoint; every variable of
    # the model (FPN, make-up, critic, OT module, buffer, BN statistics) must round-trip.
    model = tiny_model(f"model.intertwiner.enabled={str(enabled).lower()}")
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    fresh = tiny_model(f"model.intertwiner.enabled={str(enabled).lower()}")
    for var in fresh.variables:
        var.assign(tf.cast(tf.fill(var.shape, 3), var.dtype))
    tf.train.Checkpoint(model=fresh).restore(path).assert_existing_objects_matched()
    assert len(model.variables) == len(fresh.variables)
    for a, b in zip(model.variables, fresh.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_inference_uses_make_up_and_critic_but_not_training_parts():
    model = tiny_model()
    b = batch()
    dets = tf.function(model.inference)(b["images"], b["image_info"])
    assert dets["detection_boxes"].shape == (2, 100, 4)
    out = model.train_outputs(b, training=False)

    def head():
        return model.predictor_features(b["images"], out.rois).numpy()

    before = head()
    # Setting the critic's last BN to a constant output changes the merged feature (linear
    # merge) ... (a mere shift of beta is invisible: an untrained critic's pre-activations
    # are ~1e3–1e5, so the ReLU and the sigmoid saturate around any small shift)
    bn = model.intertwiner.critic.embed[1]
    bn.gamma.assign(tf.zeros_like(bn.gamma))
    bn.beta.assign(tf.ones_like(bn.beta))
    after = head()
    assert not np.allclose(before, after)
    # ... while the OT module and the buffer never enter the inference path.
    for var in model.intertwiner.ot.trainable_variables:
        var.assign(var * 0.0 + 123.0)
    model.intertwiner.buffer.variables[0].assign(model.intertwiner.buffer.variables[0] + 7.0)
    np.testing.assert_array_equal(after, head())
    again = model.inference(b["images"], b["image_info"])
    assert np.all(np.isfinite(again["detection_scores"].numpy()))


def test_separate_merge_keeps_head_feature_at_inference():
    model = tiny_model("model.intertwiner.merge=separate")
    b = batch()
    out = model.train_outputs(b)
    assert out.side(model.intertwiner) is None  # nothing in the head path reads the critic
    _, _, feats, sides = model.head_path(out.pyramid, out.rois)
    assert sides == {"intertwiner": None} and feats.shape[-1] == 16


def test_separate_merge_runs_the_critic_on_the_foreground_rois_only():
    """With ``merge: separate`` the intertwiner loss is the only reader of critic features,
    and it reads foreground RoIs only (Eq. 7's small sets): the loss must equal the one
    computed from a critic pass over those RoIs alone, and background RoIs get no feature."""
    from internet_tf.methods.intertwiner.loss import level_loss
    from internet_tf.methods.intertwiner.sets import small_large_masks

    model = tiny_model("model.intertwiner.merge=separate")
    it = model.intertwiner
    out = model.train_outputs(batch(), training=False)
    classes, levels = out.roi_classes, out.roi_levels
    fg = classes.numpy() > 0
    assert 0 < fg.sum() < fg.size  # the batch has both foreground and background RoIs
    critic = it._small_set_critic(out, training=False).numpy()
    assert np.all(critic[~fg] == 0.0)
    by_hand = it.critic(tf.boolean_mask(out.roi_features, fg), training=False).numpy()
    np.testing.assert_allclose(critic[fg], by_hand, rtol=1e-5, atol=1e-6)
    # ... and that is what every level's loss term reads.
    reps = tf.random.uniform([it.buffer.num_classes + 1, it.critic.dim])
    valid = tf.ones([it.buffer.num_classes + 1], tf.bool)
    for level in (2, 3, 4, 5):
        small = small_large_masks(classes, levels, level)[0]
        np.testing.assert_allclose(level_loss(critic, classes, small, reps, valid, "l2").numpy(),
                                   level_loss(tf.where(fg[..., None], critic, 7.0), classes, small,
                                              reps, valid, "l2").numpy(), rtol=1e-6)
