"""The Python API from the package top level (``internet_tf/api.py``) and the README's runnable
examples, which use it.

Every fenced ``python`` or ``bash`` block of README.md preceded by ``<!-- runnable -->`` runs
in order in one scratch folder (found with markdown-it-py's parser), so the manual cannot drift
from the code. Its Python block is the API's whole path on a tiny run — ``it.train``,
``it.evaluate``, ``it.export_run``, ``it.load_detector`` — and the tests below check what those
calls returned, then call the loaded export on images of two sizes given as a path, a PIL
image and an array. One training serves both, to keep the suite cheap."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tiny
from markdown_it import MarkdownIt
from PIL import Image

import internet_tf as it

pytestmark = pytest.mark.cost(60)  # seconds in make test (tests/conftest.py schedules by it)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- runnable -->"
# The tiny model and data instead of the demo's, with tiny.yaml's own two steps (the blocks are
# checked for running as written, not for what a longer training reaches) and every score kept
# (the barely trained model's scores are low; the detector tests need detections).
SUBSTITUTIONS = {"configs/demo.yaml": tiny.PATH,
                 '"train.steps=50"': '"train.steps=2", "model.head.score_threshold=0.0"'}


def runnable_blocks(path: str) -> list:
    """``[(language, code, line)]`` of the fenced blocks right after a ``MARKER`` line."""
    with open(path) as f:
        tokens = MarkdownIt().parse(f.read())
    return [(token.info.split()[0], token.content, token.map[0] + 1)
            for before, token in zip(tokens, tokens[1:])
            if token.type == "fence" and before.type == "html_block" and before.content.strip() == MARKER]


@pytest.fixture(scope="module")
def readme(tmp_path_factory):
    """Runs the README's runnable blocks in a scratch folder; returns the folder and the
    Python blocks' variables."""
    folder = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 150, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (200, 120, 3), dtype=np.uint8)).save(folder / "other.png")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    variables = {"__name__": "readme"}
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        for language, code, line in runnable_blocks(os.path.join(ROOT, "README.md")):
            for old, new in SUBSTITUTIONS.items():
                code = code.replace(old, new)
            if language == "python":
                exec(compile(code, f"README.md:{line}", "exec"), variables)
            else:
                proc = subprocess.run(["bash", "-e", "-c", code], capture_output=True, text=True,
                                      env=env, timeout=600)
                assert proc.returncode == 0, f"README.md:{line}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    finally:
        os.chdir(cwd)
    return folder, variables


def test_the_readme_marks_blocks_of_both_languages():
    blocks = runnable_blocks(os.path.join(ROOT, "README.md"))
    assert sorted({language for language, _, _ in blocks}) == ["bash", "python"]
    assert any("it.train(" in code for language, code, _ in blocks if language == "python")


def test_readme_blocks_ran(readme):
    folder, _ = readme
    assert (folder / "runs/quickstart/export/saved_model.pb").is_file()
    assert sorted(os.listdir(folder / "predictions")) == ["other.json", "other.png", "photo.json", "photo.png"]


def test_train_returns_the_run_dir_and_its_metrics(readme):
    folder, variables = readme
    result = variables["result"]
    assert isinstance(result, it.TrainResult) and result.run_dir == "runs/quickstart"
    assert set(result.metrics) >= {"AP", "AP50"}
    with open(folder / result.run_dir / "eval" / "metrics.json") as f:
        assert json.load(f)["AP50"] == pytest.approx(variables["metrics"]["AP50"])
    assert variables["metrics"]["AP50"] == pytest.approx(result.metrics["AP50"], abs=1e-6)


def test_the_loaded_export_detects_on_two_sizes(readme, tmp_path):
    folder, variables = readme
    detector = it.load_detector(str(folder / variables["export_dir"]))
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    tall = rng.integers(0, 255, (200, 120, 3), dtype=np.uint8)
    Image.fromarray(tall).save(tmp_path / "tall.png")
    found = detector([wide, str(tmp_path / "tall.png"), Image.fromarray(tall)])
    assert len(found) == 3
    with open(folder / "runs/quickstart/labels.json") as f:
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
    with pytest.raises(ValueError, match="uint8"):
        detector([wide.astype(np.float32)])


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
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
