"""The switches where the paper (Li et al. 2019), its tables and the authors' code disagree, each
shown to change what it says: make-up placement and residual form, merge point, the critic's extra unit,
reliable-set passes and the critic's BN statistics, OT gradients into the pyramid, H's input size, and the
warm-up ramp of the extra losses."""
import numpy as np
import pytest
import tensorflow as tf

from internet_tf.methods.intertwiner.make_up import MakeUp, MakeUpMap
from internet_tf.ops.roi_align import crop_level
from test_intertwiner_method import batch, tiny_model

pytestmark = pytest.mark.cost(44)  # seconds in make test (tests/conftest.py schedules by it)

IT = "model.intertwiner."


def test_make_up_on_map_equals_make_up_on_roi_for_a_1x1_kernel_on_an_integer_box():
    # Level 2 (stride 4), 2x2 RoI output without oversampling: the 8x8 px box (8, 4, 16, 12)
    # covers exactly P2 cells y 2..3, x 1..2, and the 2x2 samples fall on those cells'
    # centres, so RoIAlign copies them. A 1x1 conv + BN + ReLU acts per cell, so "make-up
    # then crop" equals "crop then make-up".
    p = {l: tf.random.normal([1, 32 // 2 ** (l - 2), 32 // 2 ** (l - 2), 4], seed=l) for l in (2, 3, 4, 5, 6)}
    box = tf.constant([[8.0, 4.0, 16.0, 12.0]])
    crop = crop_level(p[2], box, tf.constant([0]), 4, output_size=2, sampling_ratio=1)
    np.testing.assert_allclose(crop.numpy()[0], p[2].numpy()[0, 2:4, 1:3], atol=1e-6)  # the hand check
    on_roi, on_map = MakeUp(4, kernel_size=1), MakeUpMap(4, kernel_size=1)
    on_roi(crop[None], tf.constant([[2]]))
    on_map(p)
    on_map.set_weights(on_roi.get_weights())
    for bn in (on_roi.units[0][1], on_map.units[0][1]):  # non-trivial inference statistics
        bn.moving_mean.assign(tf.fill([4], 0.3))
        bn.moving_variance.assign(tf.fill([4], 2.0))
    via_roi = on_roi(crop[None], tf.constant([[2]]), training=False)[0, 0]
    via_map = crop_level(on_map(p, training=False)[2], box, tf.constant([0]), 4, output_size=2, sampling_ratio=1)[0]
    assert float(tf.reduce_max(via_roi)) > 0  # the ReLU does not hide everything
    np.testing.assert_allclose(via_roi.numpy(), via_map.numpy(), atol=1e-5)
    # A 3x3 kernel sees neighbours: the two placements differ (why it is a switch).
    assert MakeUpMap(4, kernel_size=3)(p)[6] is p[6]  # P6 (RPN only) passes through


@pytest.mark.parametrize("placement", ["roi", "map"])
def test_makeup_placement_selects_where_the_conv_runs(placement):
    model = tiny_model(IT + f"makeup_placement={placement}")
    it = model.intertwiner
    assert isinstance(it.make_up, MakeUpMap if placement == "map" else MakeUp)
    b = batch()
    out = model.train_outputs(b, training=False)
    maps = it.head_maps(out.pyramid)
    if placement == "map":  # the box head reads made-up maps, the RPN the raw ones
        assert not np.allclose(maps[2].numpy(), out.pyramid[2].numpy())
    else:
        assert maps is out.pyramid
    dets = model.inference(b["images"], b["image_info"])
    assert np.isfinite(dets["detection_scores"].numpy()).all()


@pytest.mark.parametrize("layer", [MakeUpMap, MakeUp])
def test_makeup_residual_forms_combine_the_unit_with_its_input_as_named(layer):
    p = {l: tf.random.normal([2, 8, 8, 4], seed=l) for l in (2, 3, 4, 5, 6)}
    roi, levels = tf.random.normal([1, 2, 6, 6, 4], seed=7), tf.constant([[2, 4]])

    def run(m):
        return m(p, training=True)[3] if layer is MakeUpMap else m(roi, levels, training=True)

    x = p[3] if layer is MakeUpMap else roi
    forms = {r: layer(4, residual=r) for r in ("none", "add", "gated")}
    run(forms["none"])
    for r in ("add", "gated"):
        run(forms[r])
        for src, dst in zip(forms["none"].units, forms[r].units):
            for a, b in zip(src, dst):
                b.set_weights(a.get_weights())
        for gate in forms[r].gates:
            gate.assign(0.5)
    unit = run(forms["none"]).numpy()  # Table 6: conv + BN + ReLU replaces the feature
    assert (unit >= 0).all() and not np.allclose(unit, x.numpy())
    np.testing.assert_allclose(run(forms["add"]).numpy(), x.numpy() + unit, atol=1e-5)
    np.testing.assert_allclose(run(forms["gated"]).numpy(), x.numpy() + 0.5 * unit, atol=1e-5)
    # A fresh gated unit is the identity (its gates start at 0), and its gates train.
    fresh = layer(4, residual="gated")
    with tf.GradientTape() as tape:
        out = run(fresh)
        loss = tf.reduce_sum(out * tf.random.normal(out.shape, seed=3))
    np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-6)
    grads = tape.gradient(loss, fresh.gates)
    assert len(fresh.gates) == 4 and any(g is not None and float(tf.abs(g)) > 0 for g in grads)


def test_makeup_residual_reaches_the_model_and_is_checked():
    model = tiny_model(IT + "makeup_residual=gated")
    assert len(model.intertwiner.make_up.gates) == 4
    b = batch()
    out = model.train_outputs(b, training=False)
    maps = model.intertwiner.head_maps(out.pyramid)
    np.testing.assert_allclose(maps[2].numpy(), out.pyramid[2].numpy(), atol=1e-6)  # g = 0 at start
    with pytest.raises(Exception, match="makeup_residual"):
        MakeUpMap(4, residual="sum")


def _predictor_input_by_hand(model, b, point):
    out = model.train_outputs(b, training=False)
    _, feats, head, sides = model.head_path(out.pyramid, out.rois, training=False)
    critic = sides["intertwiner"]
    box_head = model.box_head
    s, c = feats.shape[2], feats.shape[4]
    pooled = box_head.pool(tf.reshape(feats, [-1, s, s, c]))
    x = tf.reshape(pooled, [feats.shape[0], feats.shape[1], -1])
    fc1 = box_head.fc1(x)
    if point == "fc1":
        expected = box_head.fc2(0.5 * fc1 + 0.5 * critic)
    else:
        expected = 0.5 * box_head.fc2(fc1) + 0.5 * critic
    return head.numpy(), expected.numpy()


@pytest.mark.parametrize("point", ["predictor", "fc1"])
def test_merge_point_mixes_the_critic_where_configured(point):
    model = tiny_model(IT + f"merge_point={point}")
    head, expected = _predictor_input_by_hand(model, batch(), point)
    np.testing.assert_allclose(head, expected, rtol=1e-5, atol=1e-5)


def test_critic_extra_conv_adds_the_authors_third_unit():
    plain, extra = tiny_model(IT + "critic_extra_conv=false"), tiny_model(IT + "critic_extra_conv=true")
    assert len(extra.intertwiner.critic.extra) == 3 and plain.intertwiner.critic.extra == []
    kernel = extra.intertwiner.critic.extra[0].kernel
    assert tuple(kernel.shape) == (1, 1, 16, 16)  # 1x1 conv D -> D (fc_dim 16 here)
    feats = extra.intertwiner.critic(tf.random.normal([3, 14, 14, 8]))
    assert feats.shape == (3, 16) and float(tf.reduce_min(feats)) >= 0.5


def _critic_bn_statistics(model):
    return [v.numpy().copy() for v in model.intertwiner.critic.variables if "moving_" in v.path]


@pytest.mark.parametrize("update", [True, False])
def test_reliable_passes_leave_the_critic_bn_statistics_alone_when_asked(update):
    # The detector's own RoI pass updates the critic's moving statistics in both cases; the
    # reliable-set passes (other crops, other population) add their updates only if asked.
    # Every proposal is sampled (num_samples above the proposals), so both calls below see
    # the same RoIs.
    model = tiny_model(IT + f"reliable_bn_update={str(update).lower()}", "model.roi.num_samples=256",
                       "model.rpn.post_nms_topk_train=20", IT + "alignment=none",
                       IT + "reliable_source=p_l")
    b = batch()
    start = _critic_bn_statistics(model)
    losses, metrics = model.train_losses(b, training=True)
    assert float(metrics["reliable_rois"]) > 0
    after_step = _critic_bn_statistics(model)
    for var, value in zip([v for v in model.intertwiner.critic.variables if "moving_" in v.path], start):
        var.assign(value)
    model.train_outputs(b, training=True)  # the detector's RoI pass only
    after_detector_pass = _critic_bn_statistics(model)
    # Equal up to float summation order (relative to each statistic's scale): the RoI order
    # differs between the two passes.
    same = all(np.max(np.abs(a - c)) <= 1e-3 * np.max(np.abs(c)) for a, c in zip(after_step, after_detector_pass))
    assert same == (not update)
    assert not all(np.allclose(a, s) for a, s in zip(after_detector_pass, start))


@pytest.mark.parametrize("into_pyramid", [True, False])
def test_alignment_into_pyramid_controls_gradients_into_the_detector(into_pyramid):
    model = tiny_model(IT + f"alignment_into_pyramid={str(into_pyramid).lower()}")
    fpn_vars = model.fpn.trainable_variables + model.backbone.trainable_variables
    ot_vars = model.intertwiner.ot.trainable_variables
    with tf.GradientTape() as tape:
        losses, _ = model.train_losses(batch(), training=True)
    grads = tape.gradient(losses["alignment"], fpn_vars + ot_vars)
    norm = lambda gs: sum(float(tf.reduce_sum(tf.abs(g))) for g in gs if g is not None)  # noqa: E731
    assert norm(grads[len(fpn_vars):]) > 0  # F_l and H_l always learn from W
    assert (norm(grads[:len(fpn_vars)]) > 0) == into_pyramid


def test_warmup_ramps_both_extra_losses_linearly():
    model = tiny_model(IT + "warmup_steps=10")
    b = batch()
    for step, factor in ((0, 0.0), (5, 0.5), (10, 1.0), (40, 1.0)):
        losses, metrics = model.train_losses(b, training=True, step=tf.constant(step, tf.int64))
        inter = sum(float(metrics[f"intertwiner_level{l}"]) for l in (2, 3, 4, 5))
        ot = sum(float(metrics[f"alignment_level{l}"]) for l in (2, 3, 4))
        assert inter > 0 and ot > 0
        np.testing.assert_allclose(float(losses["intertwiner"]), factor * inter, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(float(losses["alignment"]), factor * ot, rtol=1e-5, atol=1e-7)
        assert float(metrics["extra_loss_ramp"]) == pytest.approx(factor)
    no_warmup, _ = tiny_model(IT + "warmup_steps=0").train_losses(b, training=True, step=tf.constant(0, tf.int64))
    assert float(no_warmup["intertwiner"]) > 0  # without warm-up, full weight from step 0


def test_ot_input_level_reaches_the_ot_module():
    """``ot.input_level`` (ours; what it computes: test_intertwiner_ot.py) is 4 by default and
    0 restores H on the whole maps."""
    assert tiny_model().intertwiner.ot.input_level == 4
    assert tiny_model(IT + "ot.input_level=0").intertwiner.ot.input_level == 0
