"""internet-train on the embedded data written as PASCAL VOC (``data.embedded.format=voc``),
then internet-eval on the same run: both score with the VOC metrics by themselves, from the
dataset's kind, and write the devkit's result files (the VOC benchmark of Li et al. 2019,
Table 5)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import tiny
from PIL import Image

from internet_tf.config import load_config
from internet_tf.evaluation.voc_eval import RESULT_FILE, RESULTS_DIR
from internet_tf.run_dir import read_labels

pytestmark = pytest.mark.cost(23)  # seconds in make test (tests/conftest.py schedules by it)

# tests/tiny.yaml for 2 steps, every detection kept (score threshold 0) so that each val
# image has lines in the devkit files: a tiny model this short scores nothing above 0.05.
# The baseline detector: the VOC route (data, metric, devkit files) is the same for every
# model, and it traces in half InterNet's time (InterNet goes through the CLI in the
# kill-resume, two-worker and study tests).
RUN = ["train.steps=2", "train.checkpoint_every=2", "model.head.score_threshold=0.0",
       "data.embedded.format=voc", "model.intertwiner.enabled=false"]


def run(tool, *args):
    cmd = [sys.executable, "-m", f"internet_tf.cli.{tool}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def read_devkit_files(eval_dir, names):
    """{class: [(voc_id, score, xmin, ymin, xmax, ymax)]} from eval_dir/voc_results."""
    assert sorted(os.listdir(os.path.join(eval_dir, RESULTS_DIR))) == sorted(RESULT_FILE.format(n) for n in names)
    out = {}
    for name in names:
        with open(os.path.join(eval_dir, RESULTS_DIR, RESULT_FILE.format(name))) as f:
            rows = [line.split() for line in f.read().splitlines()]
        assert all(len(r) == 6 for r in rows), rows[:3]
        out[name] = [(r[0], *map(float, r[1:])) for r in rows]
    return out


def test_train_and_eval_on_embedded_data_written_as_voc(tmp_path, capsys):
    root, model_dir = tmp_path / "embedded", str(tmp_path / "run")
    args = ["--config", tiny.PATH, "--model_dir", model_dir]
    for o in RUN + [f"data.embedded.root={root}"]:
        args += ["--override", o]
    proc = run("train", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    eval_dir = os.path.join(model_dir, "eval")
    names = read_labels(model_dir)[1][1:]
    metrics = json.load(open(os.path.join(eval_dir, "metrics.json")))
    assert set(metrics) == ({"mAP", "mAP_07", "AP50"} | {f"AP/{n}" for n in names}
                            | {f"AP07/{n}" for n in names})
    assert metrics["AP50"] == metrics["mAP"]
    assert all(-1.0 <= v <= 1.0 for v in metrics.values()), metrics

    # The devkit files name the images of the VOC val split, in 1-based pixel coordinates
    # inside each image: xmin, ymin >= 1 (a box clipped at the left edge, x0 = 0, is 1),
    # xmax <= width, ymax <= height.
    voc_root = root / "voc"
    val_ids = (voc_root / "ImageSets" / "Main" / "val.txt").read_text().split()
    sizes = {i: Image.open(voc_root / "JPEGImages" / f"{i}.jpg").size for i in val_ids}
    found = read_devkit_files(eval_dir, names)
    rows = [r for rs in found.values() for r in rs]
    assert {r[0] for r in rows} == set(val_ids)
    for voc_id, score, xmin, ymin, xmax, ymax in rows:
        width, height = sizes[voc_id]
        assert 0.0 <= score <= 1.0
        assert 1.0 <= xmin <= xmax + 1.0 and xmax <= width + 0.01, (voc_id, xmin, xmax, width)
        assert 1.0 <= ymin <= ymax + 1.0 and ymax <= height + 0.01, (voc_id, ymin, ymax, height)
    # The same detections as detections.json (COCO results: x = xmin - 1, w = xmax - xmin + 1).
    dets = json.load(open(os.path.join(eval_dir, "detections.json")))
    assert len(dets) == len(rows)
    assert sorted(round(d["bbox"][0] + 1, 2) for d in dets) == pytest.approx(sorted(r[2] for r in rows), abs=0.006)

    # internet-eval's evaluation, in this process (its flags and the saved config as the default
    # are read in tests/cli/test_cli_train_eval.py): the VOC metrics again, from the dataset kind
    # of the saved config.
    os.remove(os.path.join(eval_dir, "metrics.json"))
    shutil.rmtree(os.path.join(eval_dir, RESULTS_DIR))
    from internet_tf.cli.evaluate import evaluate_checkpoint

    evaluate_checkpoint(load_config(os.path.join(model_dir, "config.yaml")), model_dir)
    stdout = capsys.readouterr().out
    assert "VOC metrics of" in stdout and "ckpt-2" in stdout and "mAP_07" in stdout
    again = json.load(open(os.path.join(eval_dir, "metrics.json")))
    assert again == pytest.approx(metrics, abs=1e-6)
    rows_again = [r for rs in read_devkit_files(eval_dir, names).values() for r in rs]
    assert sorted(r[0] for r in rows_again) == sorted(r[0] for r in rows)
