"""The training loop: loss falls, checkpoints resume exactly where they stopped, NaN stops."""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.assembly.train import build_trainer
from internet_tf.training.trainer import NonFiniteLossError

pytestmark = pytest.mark.cost(53)  # seconds in make test (tests/conftest.py schedules by it)

STEPS = 40


def _weights(model):
    return [v.numpy().copy() for v in model.variables]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_data_root):
    """One 40-step run, shared: the loss falls in it, and a rerun continues from its checkpoint."""
    cfg = tiny.config(f"data.embedded.root={tiny_data_root}", f"train.steps={STEPS}", "train.checkpoint_every=100")
    trainer = build_trainer(cfg, str(tmp_path_factory.mktemp("trainer") / "run"))
    trainer.train()
    return {"cfg": cfg, "model_dir": trainer.model_dir, "step": trainer.step, "history": list(trainer.history),
            "weights": _weights(trainer.model), "slots": [v.numpy().copy() for v in trainer.optimizer.variables]}


def test_short_training_run_loss_falls(trained_run):
    cfg = trained_run["cfg"]
    losses = np.array(trained_run["history"])
    assert len(losses) == STEPS and np.all(np.isfinite(losses))
    # The total also holds terms that rise at first (head_box, once proposals reach the
    # objects) or fall slowly (the OT distance), so it gets a looser bound than the
    # classification terms below.
    first, last = losses[:5].mean(), losses[-5:].mean()
    assert last < 0.75 * first, (first, last)
    assert trained_run["step"] == STEPS

    # TensorBoard, read back with its own event reader: every loss term, lr, gradient
    # norm, images/s, and the class buffer's coverage and norm histogram.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(os.path.join(trained_run["model_dir"], "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    terms = {"rpn_class", "rpn_box", "head_class", "head_box", "intertwiner", "alignment", "total"}
    expected = {f"train/loss/{t}" for t in terms} | {
        "train/lr", "train/grad_norm", "train/images_per_second", "train/buffer/coverage",
        "train/buffer/norms"}
    assert expected <= tags, expected - tags
    steps = [e.step for e in events.Tensors("train/loss/total")]
    assert steps == list(range(cfg.train.summary_every, STEPS + 1, cfg.train.summary_every))
    def series(tag):
        return np.array([float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)])

    assert series("train/loss/total")[-1] == pytest.approx(losses[-1], rel=1e-5)
    classification = series("train/loss/rpn_class") + series("train/loss/head_class")
    assert classification[-3:].mean() < 0.5 * classification[:3].mean(), classification
    coverage = float(tf.make_ndarray(events.Tensors("train/buffer/coverage")[-1].tensor_proto))
    histogram = tf.make_ndarray(events.Tensors("train/buffer/norms")[-1].tensor_proto)  # [bins, 3]
    assert coverage >= 1 and histogram[:, 2].sum() == coverage
    assert np.all(histogram[:, :2] > 0)  # critic features are sigmoids: norms are positive


def test_rerun_resumes_from_last_checkpoint(trained_run, tiny_config, tmp_path):
    model_dir = str(tmp_path / "run")
    shutil.copytree(trained_run["model_dir"], model_dir)  # the shared run stays as it is
    assert sorted(os.listdir(os.path.join(model_dir, "checkpoints")))[-1].startswith(f"ckpt-{STEPS}")

    # Same command again, now asking for more steps: starts at 40 with identical state.
    more = STEPS + 3
    second = build_trainer(tiny_config(f"train.steps={more}", "train.checkpoint_every=3"), model_dir)
    assert second.restore() == STEPS
    for a, b in zip(trained_run["weights"], _weights(second.model)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(trained_run["slots"], [v.numpy() for v in second.optimizer.variables]):
        np.testing.assert_array_equal(a, b)
    # The loop around the step is what resumes; its step runs eagerly here (the compiled
    # step resumes in tests/training/test_training_kill_resume.py, through internet-train).
    with tiny.eagerly():
        second.train()
    assert second.step == more and len(second.history) == 3
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith(f"ckpt-{more}")

    # A rerun of a finished run trains nothing.
    third = build_trainer(tiny_config(f"train.steps={more}"), model_dir)
    third.train()  # returns before building a step
    assert third.step == more and third.history == []


def test_resumed_data_stream_continues_in_order(tiny_config):
    from internet_tf.data.datasets import load_datasets, train_dataset

    cfg = tiny_config()
    bundle = load_datasets(cfg, val=False)
    straight = [b["image_info"][:, 3].numpy() for b in train_dataset(bundle, cfg).take(5)]
    resumed = [b["image_info"][:, 3].numpy() for b in train_dataset(bundle, cfg, start_step=3).take(2)]
    np.testing.assert_array_equal(np.stack(straight[3:]), np.stack(resumed))


def test_non_finite_loss_stops_and_keeps_checkpoint(tiny_config, tmp_path):
    model_dir = str(tmp_path / "run")
    # The stop is the trainer's, whatever the terms: the baseline detector traces faster.
    trainer = build_trainer(tiny_config("train.steps=10", "train.checkpoint_every=2",
                                        "model.intertwiner.enabled=false"), model_dir)
    original = trainer.model.train_losses

    def poisoned(batch, training=True, step=None):
        losses, metrics = original(batch, training=training, step=step)
        # From the 6th step on (iterations == 5), the box-head loss turns NaN.
        nan_if_late = tf.where(trainer.optimizer.iterations >= 5, np.nan, 0.0)
        losses["head_box"] = losses["head_box"] + nan_if_late
        return losses, metrics

    trainer.model.train_losses = poisoned
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss at step 6: loss/head_box"):
        trainer.train()
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    assert tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-4")
    # The NaN step changed nothing: weights are finite and the step counter stayed at 5.
    assert trainer.step == 5
    assert all(np.all(np.isfinite(v.numpy())) for v in trainer.model.variables)
    resumed = build_trainer(tiny_config("train.steps=10", "model.intertwiner.enabled=false"), model_dir)
    assert resumed.restore() == 4


def test_seed_fixes_the_initial_weights(tiny_config, tmp_path):
    def initial(seed, name):
        trainer = build_trainer(tiny_config(f"seed={seed}"), str(tmp_path / name))
        weights = _weights(trainer.model)
        assert weights, "the model is built before training"
        tf.random.uniform([3])  # consume global RNG state between the two builds
        return weights

    a, b, c = initial(1, "a"), initial(1, "b"), initial(2, "c")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(x.size > 1 and not np.array_equal(x, z) for x, z in zip(a, c))
