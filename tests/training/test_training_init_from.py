"""Fine-tuning from a trained detector (``train.init_from`` / ``train.init_parts``): the chosen
parts are copied at a fresh start, another class count skips the predictor and says so, a
resumed run keeps its own checkpoint, a missing path or foreign checkpoint is an error naming
key and path, and a fine-tuned run exports a SavedModel that detects as it does."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny

from internet_tf.training.init_from import INIT_FILE, InitFromError, locate
from internet_tf.assembly.train import build_trainer

pytestmark = pytest.mark.cost(40)  # seconds in make test (tests/conftest.py schedules by it)
LOW_LR = "train.learning_rate=0.002"


def _values(layer):
    return [v.numpy().copy() for v in layer.weights]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def source(tmp_path_factory, tiny_data_root):
    """A tiny InterNet trained for 2 steps (so its weights differ from any fresh start), at a
    learning rate low enough that its scores do not saturate at the background."""
    model_dir = str(tmp_path_factory.mktemp("init") / "source")
    trainer = build_trainer(tiny.config(f"data.embedded.root={tiny_data_root}", "seed=5", LOW_LR), model_dir)
    tiny.train_eagerly(trainer, 2)
    return model_dir, trainer.model


def _fresh(tiny_config, model_dir, *overrides):
    trainer = build_trainer(tiny_config(*overrides), model_dir)
    trainer.restore()
    return trainer


def test_partial_parts_load_only_those_and_the_run_records_it(source, tiny_config, tmp_path, capsys):
    src_dir, src = source
    trainer = _fresh(tiny_config, str(tmp_path / "run"), f"train.init_from={src_dir}",
                     "train.init_parts=[backbone,fpn]")
    model = trainer.model
    assert _same(_values(model.backbone), _values(src.backbone))
    assert _same(_values(model.fpn), _values(src.fpn))
    for part in ("rpn_head", "box_head", "predictor"):
        assert not _same(_values(getattr(model, part)), _values(getattr(src, part))), part
    assert not _same(_values(model.intertwiner.make_up), _values(src.intertwiner.make_up))
    assert trainer.step == 0  # the optimizer starts afresh
    with open(os.path.join(trainer.model_dir, INIT_FILE)) as f:
        record = json.load(f)
    assert record["parts"] == ["backbone", "fpn"] and set(record["loaded"]) == {"backbone", "fpn"}
    assert record["loaded"]["backbone"] == len(model.backbone.weights)
    assert record["checkpoint"].endswith("ckpt-2") and not record["skipped"]
    assert "Initialised from" in capsys.readouterr().out


def test_all_parts_give_the_source_detector(source, tiny_config, tmp_path):
    src_dir, src = source
    model = _fresh(tiny_config, str(tmp_path / "run"), f"train.init_from={src_dir}/checkpoints/ckpt-2").model
    assert _same(_values(model), _values(src))  # the class buffer (a method's state) too


def test_class_count_change_skips_the_predictor_and_says_so(source, tiny_config, tmp_path, capsys):
    src_dir, src = source
    trainer = _fresh(tiny_config, str(tmp_path / "run"), f"train.init_from={src_dir}",
                     "data.embedded.num_classes=3", f"data.embedded.root={tmp_path / 'data3'}")
    model = trainer.model
    assert _same(_values(model.box_head), _values(src.box_head))
    assert not _same(_values(model.predictor), _values(src.predictor))
    line = capsys.readouterr().out
    assert "skipped (another shape)" in line and "predictor:" in line
    with open(os.path.join(trainer.model_dir, INIT_FILE)) as f:
        record = json.load(f)
    skipped = {s["variable"].split(":")[0] for s in record["skipped"]}
    assert "predictor" in skipped and "box_head" not in skipped
    assert len([s for s in record["skipped"] if s["variable"].startswith("predictor:")]) == len(model.predictor.weights)
    assert record["loaded"]["box_head"] == len(model.box_head.weights)


def test_a_baseline_source_leaves_the_intertwiner_fresh_and_lists_it(tiny_config, tiny_data_root, tmp_path):
    base = build_trainer(tiny.config(f"data.embedded.root={tiny_data_root}", "model.intertwiner.enabled=false"),
                         str(tmp_path / "baseline"))
    tiny.train_eagerly(base, 1)
    trainer = _fresh(tiny_config, str(tmp_path / "run"), f"train.init_from={tmp_path / 'baseline'}")
    assert _same(_values(trainer.model.backbone), _values(base.model.backbone))
    with open(os.path.join(trainer.model_dir, INIT_FILE)) as f:
        assert json.load(f)["absent"] == ["methods:intertwiner"]


def test_a_resumed_run_ignores_init_from(source, tiny_config, tmp_path):
    src_dir, src = source
    model_dir = str(tmp_path / "run")
    own = build_trainer(tiny_config("seed=9"), model_dir)
    tiny.train_eagerly(own, 1)
    own_weights = _values(own.model.backbone)
    resumed = _fresh(tiny_config, model_dir, "seed=9", f"train.init_from={src_dir}")
    assert resumed.step == 1
    assert _same(_values(resumed.model.backbone), own_weights)
    assert not _same(own_weights, _values(src.backbone))
    assert not os.path.exists(os.path.join(model_dir, INIT_FILE))


def test_missing_path_and_foreign_checkpoints_are_errors_naming_key_and_path(source, tiny_config, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(InitFromError, match=r"'train.init_from' = '.*nowhere': does not exist"):
        locate(missing)
    with pytest.raises(InitFromError, match="'train.init_from'.*nowhere"):
        _fresh(tiny_config, str(tmp_path / "a"), f"train.init_from={missing}")
    # A checkpoint not written by internet-train: no config.yaml says what it holds.
    foreign = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).save(str(tmp_path / "foreign" / "checkpoints" / "ckpt"))
    with pytest.raises(InitFromError, match=r"'train.init_from' = '.*foreign.*not a checkpoint written by internet-train"):
        locate(foreign)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(InitFromError, match="empty_run.*without checkpoints/checkpoint"):
        locate(str(empty))
    # Another architecture: the same detector without FPN has other neck variables.
    src_dir, _ = source
    with pytest.raises(InitFromError, match=r"'train.init_from' = .*source.*part 'fpn' has \d+ variables"):
        _fresh(tiny_config, str(tmp_path / "b"), f"train.init_from={src_dir}", "model.fpn=false")


def test_a_fine_tuned_run_exports_a_savedmodel_that_detects(source, tiny_config, tmp_path):
    from internet_tf.data.pipeline import resize_and_pad
    from internet_tf.assembly.export import export_checkpoint

    src_dir, src = source
    model_dir = str(tmp_path / "tuned")
    trainer = build_trainer(tiny_config(f"train.init_from={src_dir}", "model.head.score_threshold=0.0", LOW_LR), model_dir)
    tiny.train_eagerly(trainer, 1)
    out = str(tmp_path / "saved")
    export_checkpoint(trainer.cfg, model_dir, out)
    image = np.random.default_rng(0).integers(0, 255, (100, 128, 3), dtype=np.uint8)
    served = tf.saved_model.load(out).signatures["serving_default"](images=tf.constant(image[None]))
    padded, scale = resize_and_pad(tf.constant(image), trainer.model.image_size)
    ref = trainer.model.inference(padded[None], tf.constant([[100.0, 128.0, float(scale), 0.0]]))
    n = int(served["num_detections"][0])
    assert n == int(ref["num_detections"][0]) > 0
    np.testing.assert_allclose(served["detection_scores"][0, :n], ref["detection_scores"][0, :n], atol=1e-4)
