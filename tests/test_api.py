"""The Python API from the package top level (``internet_tf/api.py``): a tiny run trained,
evaluated and exported, and the loaded export called on images of two sizes given as a path,
a PIL image and an array; importing the package and reading the API imports no TensorFlow."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tiny
from PIL import Image

import internet_tf as it

pytestmark = pytest.mark.cost(40)  # seconds in make test (tests/conftest.py schedules by it)

EVERY_SCORE = "model.head.score_threshold=0.0"  # the barely trained model's low scores too


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = it.load_config(tiny.PATH, [EVERY_SCORE])
    return it.train(cfg, str(tmp_path_factory.mktemp("api") / "run"))


def test_train_returns_the_run_dir_and_its_metrics(trained):
    assert os.path.isfile(os.path.join(trained.run_dir, "config.yaml"))
    assert set(trained.metrics) >= {"AP", "AP50"}
    with open(os.path.join(trained.run_dir, "eval", "metrics.json")) as f:
        assert json.load(f)["AP50"] == pytest.approx(trained.metrics["AP50"])


def test_evaluate_export_and_detect_two_sizes(trained, tmp_path):
    metrics = it.evaluate(trained.run_dir)
    assert metrics["AP50"] == pytest.approx(trained.metrics["AP50"], abs=1e-6)
    export_dir = it.export_run(trained.run_dir, str(tmp_path / "export"))
    detector = it.load_detector(export_dir)
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    tall = rng.integers(0, 255, (200, 120, 3), dtype=np.uint8)
    Image.fromarray(tall).save(tmp_path / "tall.png")
    found = detector([wide, str(tmp_path / "tall.png"), Image.fromarray(tall)])
    assert len(found) == 3
    with open(os.path.join(trained.run_dir, "labels.json")) as f:
        names = {entry["name"] for entry in json.load(f)}
    for image, dets in zip([wide, tall, tall], found):
        n = len(dets.scores)
        assert n > 0 and dets.boxes.shape == (n, 4) and len(dets.class_ids) == len(dets.class_names) == n
        assert np.all(np.diff(dets.scores) <= 0)
        h, w = image.shape[:2]
        assert np.all(dets.boxes >= 0) and np.all(dets.boxes <= [h, w, h, w])
        assert set(dets.class_names) <= names
    np.testing.assert_allclose(found[1].boxes, found[2].boxes)  # a path and a PIL image alike
    strong = detector([wide], min_score=float(found[0].scores[0]))[0]
    assert len(strong.scores) >= 1 and np.all(strong.scores >= found[0].scores[0])


def test_a_missing_run_is_an_error_naming_it(tmp_path):
    from internet_tf.run_dir import RunDirError

    with pytest.raises(RunDirError, match="nowhere"):
        it.evaluate(str(tmp_path / "nowhere"))


def test_importing_the_api_imports_no_tensorflow():
    code = ("import sys, internet_tf as it\n"
            "names = [it.load_config, it.train, it.evaluate, it.export_run, it.load_detector]\n"
            "it.load_config(None, ['train.steps=3'])\n"
            "assert all(n.__doc__ and 'Args:' in n.__doc__ for n in names)\n"
            "assert 'tensorflow' not in sys.modules\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
