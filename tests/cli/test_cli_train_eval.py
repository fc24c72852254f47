"""End to end through the console scripts, on a COCO-format dataset we did not generate:
JPEG/PNG images of different sizes, non-contiguous category ids, a crowd box, an image
without annotations and one missing file (the README's own-data instructions)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tiny
import yaml
from PIL import Image, ImageDraw

from internet_tf.config import load_config
from internet_tf.evaluation.coco_eval import METRIC_KEYS

pytestmark = pytest.mark.cost(38)  # seconds in make test (tests/conftest.py schedules by it)

# tests/tiny.yaml for 4 steps; every detection kept (score threshold 0), so that the checks
# below see boxes on every image: 4 steps of a tiny model from scratch reach no AP (0.0
# at 4, 10, 20 and 40 steps on this dataset) and score nothing above the default 0.05.
# The baseline detector: this is the data and evaluation path end to end, which the
# intertwiner does not touch (InterNet's CLI runs are in tests/training and the study test).
RUN = ["train.steps=4", "train.checkpoint_every=2", "model.head.score_threshold=0.0",
       "model.intertwiner.enabled=false"]
CATEGORIES = [{"id": 17, "name": "lamp"}, {"id": 2, "name": "cup"}, {"id": 90, "name": "book"}]
SIZES = [(180, 240), (320, 200), (150, 150), (97, 301), (260, 390), (200, 200)]  # (h, w)


def make_foreign_dataset(root):
    """Writes images + a COCO json the way a labelling tool might."""
    os.makedirs(os.path.join(root, "imgs"), exist_ok=True)
    rng = np.random.default_rng(5)
    images, annotations = [], []
    for i, (h, w) in enumerate(SIZES):
        name = f"photo_{i}.{'jpg' if i % 2 else 'png'}"
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        x, y, bw, bh = w * 0.2, h * 0.3, w * 0.4, h * 0.5
        draw.rectangle([x, y, x + bw, y + bh], fill=(255, 0, 0))
        img.save(os.path.join(root, "imgs", name))
        images.append({"id": 1000 + 7 * i, "file_name": name, "width": w, "height": h})
        if i == 5:
            continue  # an image without annotations
        annotations.append({"id": len(annotations) + 1, "image_id": 1000 + 7 * i,
                            "category_id": CATEGORIES[i % 3]["id"], "bbox": [x, y, bw, bh],
                            "area": bw * bh, "iscrowd": 0})
    annotations.append({"id": 99, "image_id": 1000, "category_id": 2, "bbox": [0, 0, 20, 20],
                        "area": 400, "iscrowd": 1})
    images.append({"id": 5000, "file_name": "lost.jpg", "width": 10, "height": 10})
    data = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    path = os.path.join(root, "instances.json")
    with open(path, "w") as f:
        json.dump(data, f)
    return path, os.path.join(root, "imgs")


def run(tool, *args):
    cmd = [sys.executable, "-m", f"internet_tf.cli.{tool}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_train_and_eval_on_foreign_coco_dataset(tmp_path):
    ann, imgs = make_foreign_dataset(str(tmp_path / "data"))
    model_dir = str(tmp_path / "run")
    data = ["data.dataset=coco", f"data.train_annotations={ann}", f"data.train_images={imgs}",
            f"data.val_annotations={ann}", f"data.val_images={imgs}"]
    args = ["--config", tiny.PATH, "--model_dir", model_dir]
    for o in RUN + data:
        args += ["--override", o]
    proc = run("train", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "missing image file" in proc.stderr  # the lost image is skipped and reported
    metrics = json.load(open(os.path.join(model_dir, "eval", "metrics.json")))
    # COCO evaluated against this dataset's own ground truth, in original pixels: no small
    # object outside the crowd box (-1: none to find), medium and large ones (>= 0), and
    # every category under its own name.
    assert set(metrics) == set(METRIC_KEYS) | {"per_class_AP"}
    assert metrics["APs"] == metrics["ARs"] == -1.0
    assert all(0.0 <= metrics[k] <= 1.0 for k in METRIC_KEYS if k not in ("APs", "ARs")), metrics
    assert set(metrics["per_class_AP"]) == {"lamp", "cup", "book"}
    assert all(0.0 <= ap <= 1.0 for ap in metrics["per_class_AP"].values()), metrics["per_class_AP"]
    dets = json.load(open(os.path.join(model_dir, "eval", "detections.json")))
    sizes = {1000 + 7 * i: size for i, size in enumerate(SIZES)}
    # Every readable image (the one without annotations too) has detections; the lost one none.
    assert {d["image_id"] for d in dets} == set(sizes)
    for d in dets:
        assert d["category_id"] in {17, 2, 90}
        x, y, w, h = d["bbox"]
        height, width = sizes[d["image_id"]]
        # Boxes are in original pixels: inside their own image.
        assert x >= 0 and y >= 0 and w >= 0 and h >= 0
        assert x + w <= width + 0.01 and y + h <= height + 0.01, (d, width, height)

    # internet-eval re-evaluates the latest checkpoint with the config saved in model_dir:
    # the same detections and metrics as the evaluation at the end of training. The whole
    # split, even when the run was trained with a quick eval.max_images.
    os.remove(os.path.join(model_dir, "eval", "metrics.json"))
    saved = os.path.join(model_dir, "config.yaml")
    config = yaml.safe_load(open(saved))
    config["eval"]["max_images"] = 2
    with open(saved, "w") as f:
        yaml.safe_dump(config, f)
    assert load_config(saved).eval.max_images == 2
    proc = run("evaluate", "--model_dir", model_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == (f"Evaluating checkpoint step 4 ({model_dir}/checkpoints/ckpt-4) on every image "
                        f"of the validation split ({ann})")
    assert any(line.startswith("images 6/6  ") and "took" in line for line in lines), lines
    assert "COCO metrics of" in proc.stdout and "on 6 of the 6 validation images" in proc.stdout
    again = json.load(open(os.path.join(model_dir, "eval", "detections.json")))
    assert len(again) == len(dets)
    scores = [sorted((d["image_id"], d["category_id"], d["score"]) for d in found) for found in (dets, again)]
    np.testing.assert_allclose([s[2] for s in scores[1]], [s[2] for s in scores[0]], rtol=1e-5)
    assert [s[:2] for s in scores[1]] == [s[:2] for s in scores[0]]
    reevaluated = json.load(open(os.path.join(model_dir, "eval", "metrics.json")))
    assert {k: reevaluated[k] for k in METRIC_KEYS} == pytest.approx({k: metrics[k] for k in METRIC_KEYS}, abs=1e-6)
    assert reevaluated["per_class_AP"] == pytest.approx(metrics["per_class_AP"], abs=1e-6)


def test_cli_reports_config_and_data_errors_without_traceback(tmp_path):
    proc = run("train", "--config", "configs/demo.yaml", "--model_dir", str(tmp_path),
               "--override", "model.rpn.nms=0.5")
    assert proc.returncode == 2
    assert "unknown config key 'model.rpn.nms'" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    proc = run("train", "--config", "configs/demo.yaml", "--model_dir", str(tmp_path / "r"),
               "--override", "data.dataset=coco", "--override", f"data.train_annotations={bad}",
               "--override", f"data.train_images={tmp_path}", "--override", f"data.val_annotations={bad}",
               "--override", f"data.val_images={tmp_path}")
    assert proc.returncode == 2
    assert "bad.json" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("evaluate", "--model_dir", str(tmp_path / "empty"), "--config", "configs/demo.yaml")
    assert proc.returncode == 2 and "no checkpoint" in proc.stderr
    # A fine-tuning source that is not there is refused before the data or TensorFlow.
    proc = run("train", "--config", "configs/demo.yaml", "--model_dir", str(tmp_path / "f"),
               "--override", f"train.init_from={tmp_path / 'no_run'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"config key 'train.init_from' = '{tmp_path / 'no_run'}': does not exist" in proc.stderr


def test_eval_images_come_from_the_flag_or_an_override_never_from_the_saved_run():
    from internet_tf.cli.evaluate import images_limit

    assert images_limit([], None) is None  # every image
    assert images_limit(["train.steps=3"], None) is None
    assert images_limit(["eval.max_images=50"], None) == 50
    assert images_limit([" eval.max_images = 7", "eval.max_images=null"], None) is None  # the last
    assert images_limit(["eval.max_images=50"], 9) == 9
