"""End to end through the console scripts, on a COCO-format dataset we did not generate:
JPEG/PNG images of different sizes, non-contiguous category ids, a crowd box, an image
without annotations and one missing file (the README's own-data instructions)."""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw

TINY = [
    "model.backbone=small_resnet", "model.image_size=128", "model.fpn_channels=16",
    "model.small_resnet_widths=[8,16,32,64]", "model.head.fc_dim=32", "model.roi.num_samples=16",
    "model.rpn.anchor_sizes=[8,16,32,64,128]", "model.rpn.pre_nms_topk_train=200",
    "model.rpn.post_nms_topk_train=50", "model.rpn.pre_nms_topk_test=100",
    "model.rpn.post_nms_topk_test=50", "train.batch_size=2", "train.steps=4",
    "train.checkpoint_every=2", "eval.batch_size=2",
]
CATEGORIES = [{"id": 17, "name": "lamp"}, {"id": 2, "name": "cup"}, {"id": 90, "name": "book"}]


def make_foreign_dataset(root):
    """Writes images + a COCO json the way a labelling tool might."""
    os.makedirs(os.path.join(root, "imgs"), exist_ok=True)
    rng = np.random.default_rng(5)
    images, annotations = [], []
    sizes = [(180, 240), (320, 200), (150, 150), (97, 301), (260, 390), (200, 200)]
    for i, (h, w) in enumerate(sizes):
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
    args = ["--config", "configs/demo.yaml", "--model_dir", model_dir]
    for o in TINY + data:
        args += ["--override", o]
    proc = run("train", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "missing image file" in proc.stderr  # the lost image is skipped and reported
    metrics = json.load(open(os.path.join(model_dir, "eval", "metrics.json")))
    for key in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        assert -1.0 <= metrics[key] <= 1.0
    dets = json.load(open(os.path.join(model_dir, "eval", "detections.json")))
    valid_ids = {1000 + 7 * i for i in range(6)}
    for d in dets:
        assert d["category_id"] in {17, 2, 90} and d["image_id"] in valid_ids
        x, y, w, h = d["bbox"]
        assert x >= 0 and y >= 0 and w >= 0 and h >= 0
    # Boxes are in original pixels: nothing may exceed the largest original image.
    assert all(d["bbox"][0] + d["bbox"][2] <= 390.01 for d in dets)

    # internet-eval re-evaluates the latest checkpoint with the config saved in model_dir.
    os.remove(os.path.join(model_dir, "eval", "metrics.json"))
    proc = run("evaluate", "--model_dir", model_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.exists(os.path.join(model_dir, "eval", "metrics.json"))
    assert "ckpt-4" in proc.stdout


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
