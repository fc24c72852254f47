"""LabelEnc (Hao et al. 2020) step 1 then step 2 through the trainer: step 2 starts from step 1's
label encoder, FPN (from h's FPN) and heads, resumes from its own checkpoint, and refuses a
missing or mismatched step-1 folder with a message naming the problem."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.methods.labelenc.step1 import Step1Error
from internet_tf.assembly.factory import restore_model
from internet_tf.assembly.train import build_trainer

pytestmark = pytest.mark.cost(81)  # seconds in make test (tests/conftest.py schedules by it)

LABELENC = ["model.intertwiner.enabled=false", "model.labelenc.enabled=true", "train.evaluate_at_end=false"]


def _labelenc(model):
    return model.labelenc


def _values(layer):
    return [v.numpy().copy() for v in layer.weights]


def _assert_equal(a, b):
    assert len(a) == len(b) and a
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _step1_trainer(model_dir, data_root, *overrides):
    cfg = tiny.config(f"data.embedded.root={data_root}", *LABELENC, "train.steps=3", "train.checkpoint_every=3",
                      *overrides)
    return build_trainer(cfg, model_dir)


@pytest.fixture(scope="module")
def step1_dir(tmp_path_factory, tiny_data_root):
    """LabelEnc step 1 trained by the trainer's compiled loop."""
    trainer = _step1_trainer(str(tmp_path_factory.mktemp("labelenc") / "step1"), tiny_data_root)
    trainer.train()
    assert trainer.step == 3 and np.all(np.isfinite(trainer.history))
    return trainer.model_dir


def _step1_eagerly(model_dir, data_root, *overrides):
    """A step-1 folder as internet-train leaves it, trained for one step by the same train
    step run eagerly: what step 2 starts from is tested here, the compiled loop by
    ``step1_dir``, without tracing another graph (one step moves every trained weight and
    fills the class buffer)."""
    assert tiny.train_eagerly(_step1_trainer(model_dir, data_root, *overrides), 1) == 1
    return model_dir


def _restore_step1(step1_dir):
    from internet_tf.config import load_config

    cfg = load_config(os.path.join(step1_dir, "config.yaml"))
    return restore_model(cfg.model, 4, tf.train.latest_checkpoint(os.path.join(step1_dir, "checkpoints")))


def test_step1_logs_the_losses_on_h_of_y_and_the_distillation(step1_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(step1_dir, "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    expected = {f"train/loss/labelenc_{t}" for t in ("rpn_class", "rpn_box", "head_class", "head_box")}
    assert expected | {"train/loss/distill"} <= tags, tags


def test_step1_resumes_mid_run(tiny_config, step1_dir, tmp_path):
    import shutil

    from internet_tf.config import load_config

    model_dir = str(tmp_path / "step1")
    shutil.copytree(step1_dir, model_dir)
    saved = load_config(os.path.join(model_dir, "config.yaml"))
    trainer = build_trainer(load_config(os.path.join(model_dir, "config.yaml"), ["train.steps=4"]), model_dir)
    reference = build_trainer(saved, str(tmp_path / "unused"))  # same seed: the initial weights
    assert trainer.restore() == 3
    restored = _values(_labelenc(trainer.model).encoder)
    assert any(not np.array_equal(a, b) for a, b in zip(restored, _values(_labelenc(reference.model).encoder)))
    with tiny.eagerly():  # the loop resumes; step1_dir traces this graph's compiled step
        trainer.train()
    assert trainer.step == 4 and len(trainer.history) == 1


def test_step2_starts_from_step1_and_resumes_from_its_own_checkpoint(tiny_config, step1_dir, tmp_path):
    step1 = _restore_step1(step1_dir)
    step2_args = LABELENC + ["model.labelenc.step=2", f"model.labelenc.step1_dir={step1_dir}",
                             "train.checkpoint_every=2"]
    model_dir = str(tmp_path / "step2")
    trainer = build_trainer(tiny_config(*step2_args, "train.steps=2"), model_dir)
    backbone_before = _values(trainer.model.backbone)
    assert trainer.restore() == 0  # fresh: loads step 1
    model, enc1 = trainer.model, _labelenc(step1).encoder
    _assert_equal(_values(enc1), _values(_labelenc(model).encoder))
    _assert_equal(_values(enc1.fpn), _values(model.fpn))  # the detector's FPN from h's FPN
    for name in ("rpn_head", "box_head", "predictor"):
        _assert_equal(_values(getattr(step1, name)), _values(getattr(model, name)))
    _assert_equal(backbone_before, _values(model.backbone))  # the backbone stays as configured
    # The first 2 steps by the eager train step (what a fresh run's restore loads is checked
    # above), the resumed third by the trainer's compiled loop: one graph traced, not two.
    assert tiny.train_eagerly(trainer, 2) == 2
    frozen = _values(_labelenc(model).encoder)
    _assert_equal(_values(enc1), frozen)  # h and its FPN do not move in step 2
    trained = [v.numpy().copy() for v in model.variables]

    again = build_trainer(tiny_config(*step2_args, "train.steps=3"), model_dir)
    assert again.restore() == 2  # resumes step 2 (does not start over from step 1)
    for a, b in zip(trained, again.model.variables):
        np.testing.assert_array_equal(a, b.numpy())
    again.train()
    assert again.step == 3 and len(again.history) == 1
    _assert_equal(_values(enc1), _values(_labelenc(again.model).encoder))  # nor in the compiled step


def test_step2_with_the_intertwiner_takes_its_head_path_and_optionally_the_backbone(
        tiny_config, tiny_data_root, tmp_path):
    """InterNet + LabelEnc: step 1 trained with the intertwiner (linear merge) hands step 2 its
    make-up and critic (both on the head path) and, with ``step2_backbone: step1``, its
    backbone; the OT generator and the class buffer start fresh."""
    on = ["model.intertwiner.enabled=true"]
    step1_dir = _step1_eagerly(str(tmp_path / "step1"), tiny_data_root, *on)
    step1 = _restore_step1(step1_dir)
    trainer = build_trainer(tiny_config(*LABELENC, *on, "model.labelenc.step=2", f"model.labelenc.step1_dir={step1_dir}",
                                  "model.labelenc.step2_backbone=step1", "train.steps=1"), str(tmp_path / "step2"))
    generator_before = _values(trainer.model.intertwiner.ot)
    assert trainer.restore() == 0
    model = trainer.model
    for name in ("backbone", "box_head", "predictor"):
        _assert_equal(_values(getattr(step1, name)), _values(getattr(model, name)))
    for name in ("make_up", "critic"):
        _assert_equal(_values(getattr(step1.intertwiner, name)), _values(getattr(model.intertwiner, name)))
    _assert_equal(generator_before, _values(model.intertwiner.ot))
    assert any(not np.array_equal(a, b) for a, b in zip(_values(step1.intertwiner.ot), generator_before))
    assert int(model.intertwiner.buffer.coverage(0)) == 0 < int(step1.intertwiner.buffer.coverage(0))


def test_step2_run_with_a_missing_step1_dir_fails_before_training(tiny_config, tmp_path):
    source = str(tmp_path / "nowhere")
    trainer = build_trainer(tiny_config(*LABELENC, "model.labelenc.step=2", f"model.labelenc.step1_dir={source}",
                                  "train.steps=1"), str(tmp_path / "step2"))
    with pytest.raises(Step1Error, match="does not exist") as err:
        trainer.train()
    assert source in str(err.value)
    assert not os.path.exists(os.path.join(tmp_path, "step2", "checkpoints", "checkpoint"))


@pytest.mark.parametrize("problem", ["not_labelenc", "fpn_width", "classes", "no_checkpoint"])
def test_step2_refuses_a_mismatched_step1_dir(tiny_config, step1_dir, tmp_path, problem):
    import shutil

    import yaml

    from internet_tf.methods.labelenc.step1 import load_step1

    source = str(tmp_path / "step1_copy")
    shutil.copytree(step1_dir, source)
    with open(os.path.join(source, "config.yaml")) as f:
        saved = yaml.safe_load(f)
    if problem == "not_labelenc":
        saved["model"]["labelenc"]["enabled"] = False
    elif problem == "fpn_width":
        saved["model"]["fpn_channels"] = 16
    elif problem == "no_checkpoint":
        shutil.rmtree(os.path.join(source, "checkpoints"))
    with open(os.path.join(source, "config.yaml"), "w") as f:
        yaml.safe_dump(saved, f)
    cfg = tiny_config(*LABELENC, "model.labelenc.step=2", f"model.labelenc.step1_dir={source}")
    expected = {"not_labelenc": "was not trained as LabelEnc step 1", "fpn_width": "FPN width 16",
                "classes": "trained with 4 classes, this run has 5", "no_checkpoint": "has no checkpoint"}
    with pytest.raises(Step1Error, match=expected[problem]) as err:
        load_step1(cfg.model, 5 if problem == "classes" else 4, restore_model)
    assert source in str(err.value)
