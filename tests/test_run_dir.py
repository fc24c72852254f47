"""internet_tf.run_dir, the run directory's one owner: write_run then read_run round-trips,
and each missing part is named by RunDirError."""
import os
import types

import pytest
import yaml

from internet_tf.config import load_config
from internet_tf.run_dir import RunDirError, read_run, write_run


def _fake_checkpoint(model_dir, step):
    os.makedirs(os.path.join(model_dir, "checkpoints"), exist_ok=True)
    with open(os.path.join(model_dir, "checkpoints", "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{step}"\n')
    open(os.path.join(model_dir, "checkpoints", f"ckpt-{step}.index"), "w").close()


@pytest.fixture
def run(tmp_path):
    cfg = load_config(None, ["train.steps=7", "model.fpn_channels=16"])
    data = types.SimpleNamespace(label_to_cat_id={1: 17, 2: 4}, class_names=["background", "lamp", "cup"])
    model_dir = str(tmp_path / "run")
    write_run(model_dir, cfg, data)
    return cfg, model_dir


def test_write_run_then_read_run_round_trips(run):
    cfg, model_dir = run
    with open(os.path.join(model_dir, "config.yaml")) as f:
        assert yaml.safe_load(f) == cfg.to_dict()
    _fake_checkpoint(model_dir, 5)
    got = read_run(model_dir)
    assert got.cfg.to_dict() == cfg.to_dict() and got.num_classes == 2
    assert got.checkpoint == os.path.join(model_dir, "checkpoints", "ckpt-5")
    assert (got.label_to_cat_id, got.class_names) == ({1: 17, 2: 4}, ["background", "lamp", "cup"])
    other = load_config(None, ["train.steps=9"])
    assert read_run(model_dir, other).cfg is other  # a caller's config replaces the saved one


@pytest.mark.parametrize("remove, problem", [
    ("folder", "does not exist"), ("config.yaml", "has no readable config.yaml"),
    ("labels.json", "has no labels.json"), ("checkpoint", "has no checkpoint in checkpoints/"),
])
def test_each_missing_part_is_named(run, tmp_path, remove, problem):
    _, model_dir = run
    if remove == "folder":
        model_dir = str(tmp_path / "nowhere")
    elif remove != "checkpoint":
        _fake_checkpoint(model_dir, 1)
        os.remove(os.path.join(model_dir, remove))
    with pytest.raises(RunDirError, match=problem) as err:
        read_run(model_dir)
    assert err.value.problem.startswith(problem) and str(err.value).startswith(model_dir)


def test_latest_checkpoint_is_read_as_tensorflow_reads_it(tmp_path):
    import tensorflow as tf

    from internet_tf.run_dir import latest_checkpoint

    model_dir = str(tmp_path / "run")
    _fake_checkpoint(model_dir, 12)
    folder = os.path.join(model_dir, "checkpoints")
    assert latest_checkpoint(model_dir) == tf.train.latest_checkpoint(folder) == os.path.join(folder, "ckpt-12")
    os.remove(os.path.join(folder, "ckpt-12.index"))  # named but gone: TensorFlow decides (None)
    assert latest_checkpoint(model_dir) is tf.train.latest_checkpoint(folder) is None
