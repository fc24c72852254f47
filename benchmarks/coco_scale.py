"""COCO at scale, as a new user meets it (system code): writes a stand-in of COCO 2017's size and
measures what a user waits for and what the process holds.

    python benchmarks/coco_scale.py --data /big/disk/coco_stand_in [--train_images 118287]
        [--val_images 5000] [--steps 2] [--eval_images 0] [--code DIR] [--skip eval,cocoeval]

The stand-in (written once into ``--data``, reused while its sizes match ``stand_in.json``):
small JPEGs (a few sizes around 64 px, so the disk holds it: ~2 KB each) named as COCO's,
annotation files of COCO's size (7.3 boxes per image, COCO's 80 non-contiguous category ids,
a polygon of ``--polygon_points`` points per object and an RLE for the 1% crowd objects, so the
train json is about COCO's 448 MB), in ``train2017/``, ``val2017/`` and ``annotations/``.

Then, each in its own process, as the README's own-data instructions run them
(``configs/demo.yaml`` with the four data paths):

train
  ``internet-train`` for ``--steps`` steps (final evaluation on ``--train_eval_images``):
  every output line with its time since start, the time to the first line and to the first
  step, the longest silence before the first step, and the process's peak RSS.
eval
  ``internet-eval`` of that run on the validation split (``--eval_images``, 0 = all): the
  longest silence, images/s from its progress lines, the wall time and peak RSS.
cocoeval
  COCOeval on ``--detections_per_image`` made-up detections per validation image (what a
  trained model gives: 100), in this process, without TensorFlow: its phase lines and time.

``--code DIR`` runs the tools from another checkout of the package (e.g. an older commit, to
measure before and after on the same machine); ``--skip`` leaves steps out.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# COCO 2017's category ids: 1..90 without the ten it never used.
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
SIZES = [(64, 48), (48, 64), (64, 64), (80, 60), (60, 80), (72, 54)]  # (width, height)
BOXES_PER_IMAGE = 7.3  # COCO 2017 train: 860,001 boxes on 118,287 images
CROWD_FRACTION = 0.01


def _image_pool(rng, per_size: int = 16) -> dict:
    """Encoded JPEGs per size: coloured rectangles on a plain ground (written by copying)."""
    pool = {}
    for size in SIZES:
        pool[size] = []
        for _ in range(per_size):
            im = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
            draw = ImageDraw.Draw(im)
            for _ in range(3):
                x0, y0 = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
                draw.rectangle([x0, y0, x0 + size[0] // 3, y0 + size[1] // 3],
                               fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            out = io.BytesIO()
            im.save(out, format="JPEG", quality=85)
            pool[size].append(out.getvalue())
    return pool


def _annotation(rng, ann_id: int, image_id: int, width: int, height: int, points: int) -> dict:
    w = float(rng.uniform(2, width * 0.6))
    h = float(rng.uniform(2, height * 0.6))
    x = float(rng.uniform(0, width - w))
    y = float(rng.uniform(0, height - h))
    crowd = bool(rng.random() < CROWD_FRACTION)
    if crowd:
        runs = rng.integers(1, 40, 2 * points).tolist()
        segmentation = {"counts": runs, "size": [height, width]}
    else:
        angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
        xs = x + w / 2 + w / 2 * np.cos(angles)
        ys = y + h / 2 + h / 2 * np.sin(angles)
        segmentation = [np.round(np.stack([xs, ys], 1).reshape(-1), 2).tolist()]
    return {"segmentation": segmentation, "area": round(w * h * 0.8, 2), "iscrowd": int(crowd),
            "image_id": image_id, "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
            "category_id": int(rng.choice(COCO_IDS)), "id": ann_id}


def write_split(data: str, split: str, num_images: int, first_id: int, points: int, seed: int) -> str:
    """Writes ``<split>2017/`` and ``annotations/instances_<split>2017.json``; returns the json path."""
    rng = np.random.default_rng(seed)
    pool = _image_pool(rng)
    image_dir = os.path.join(data, f"{split}2017")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(data, "annotations"), exist_ok=True)
    path = os.path.join(data, "annotations", f"instances_{split}2017.json")
    images, ann_id = [], first_id * 100
    with open(path + ".tmp", "w") as f:
        f.write('{"info": {"description": "COCO-sized stand-in (benchmarks/coco_scale.py)"}, '
                '"licenses": [], "annotations": [')
        sep = ""
        for i in range(num_images):
            image_id = first_id + i
            size = SIZES[int(rng.integers(len(SIZES)))]
            name = f"{image_id:012d}.jpg"
            with open(os.path.join(image_dir, name), "wb") as out:
                out.write(pool[size][int(rng.integers(len(pool[size])))])
            images.append({"license": 1, "file_name": name, "height": size[1], "width": size[0],
                           "id": image_id})
            for _ in range(int(rng.poisson(BOXES_PER_IMAGE))):
                ann_id += 1
                f.write(sep + json.dumps(_annotation(rng, ann_id, image_id, *size, points)))
                sep = ","
        f.write('], "images": ' + json.dumps(images) + ', "categories": '
                + json.dumps([{"supercategory": "thing", "id": c, "name": f"class_{c}"} for c in COCO_IDS])
                + "}")
    os.replace(path + ".tmp", path)
    return path


def stand_in(args) -> dict:
    """The four data paths, writing the stand-in first unless ``--data`` holds one this size."""
    stamp = os.path.join(args.data, "stand_in.json")
    wanted = {"train_images": args.train_images, "val_images": args.val_images,
              "polygon_points": args.polygon_points}
    paths = {"train_annotations": os.path.join(args.data, "annotations", "instances_train2017.json"),
             "train_images": os.path.join(args.data, "train2017"),
             "val_annotations": os.path.join(args.data, "annotations", "instances_val2017.json"),
             "val_images": os.path.join(args.data, "val2017")}
    if os.path.exists(stamp) and json.load(open(stamp)) == wanted:
        print(f"stand-in: reusing {args.data}")
        return paths
    t0 = time.perf_counter()
    write_split(args.data, "val", args.val_images, 1, args.polygon_points, seed=1)
    write_split(args.data, "train", args.train_images, 1_000_000, args.polygon_points, seed=0)
    with open(stamp, "w") as f:
        json.dump(wanted, f)
    sizes = {k: os.path.getsize(paths[k]) / 2 ** 20 for k in ("train_annotations", "val_annotations")}
    print(f"stand-in: wrote {args.train_images} + {args.val_images} images to {args.data} in "
          f"{time.perf_counter() - t0:.0f}s (train json {sizes['train_annotations']:.0f} MiB, "
          f"val json {sizes['val_annotations']:.0f} MiB)")
    return paths


def timed_run(cmd: list, code: str, label: str) -> dict:
    """Runs ``cmd`` with ``code`` first on PYTHONPATH, echoing each output line (stdout and
    stderr) with its time since start. Returns lines, times, return code and peak RSS (MiB)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=code)  # -m imports from the working folder first
    lines, times = [], []
    for line in proc.stdout:
        times.append(time.perf_counter() - t0)
        lines.append(line.rstrip("\n"))
        print(f"  [{label} {times[-1]:7.1f}s] {lines[-1][:160]}", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"lines": lines, "times": times, "rc": proc.returncode, "wall": time.perf_counter() - t0,
            "peak_rss_mib": usage.ru_maxrss / 1024}


def longest_silence(times: list, start: float = 0.0, end: float | None = None) -> float:
    """The longest wait between output lines (and from ``start``) up to ``end``."""
    stamps = [start] + [t for t in times if end is None or t <= end]
    return max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)


def first_time(run: dict, pattern: str) -> float | None:
    """When the first line matching ``pattern`` came, or None."""
    for line, t in zip(run["lines"], run["times"]):
        if re.search(pattern, line):
            return t
    return None


def data_overrides(paths: dict) -> list:
    """``--override`` values that point the demo config at the stand-in."""
    return ["data.dataset=coco"] + [f"data.{k}={v}" for k, v in paths.items()]


def run_train(args, paths: dict) -> None:
    """``internet-train`` on the stand-in: output timing and peak RSS (module docstring)."""
    cmd = [sys.executable, "-m", "internet_tf.cli.train", "--config", os.path.join(ROOT, "configs", "demo.yaml"),
           "--model_dir", args.model_dir]
    for o in data_overrides(paths) + [f"train.steps={args.steps}", f"train.checkpoint_every={args.steps}",
                                      f"eval.max_images={args.train_eval_images}"]:
        cmd += ["--override", o]
    run = timed_run(cmd, args.code, "train")
    first_step = first_time(run, r"^step \d+/\d+  ")  # the first step's progress line
    print(f"train: rc {run['rc']}; first output line {run['times'][0] if run['times'] else float('nan'):.1f}s, "
          f"first step {first_step if first_step is not None else float('nan'):.1f}s after start, longest "
          f"silence before it {longest_silence(run['times'], end=first_step):.1f}s; wall {run['wall']:.0f}s; "
          f"peak RSS {run['peak_rss_mib']:.0f} MiB")


def run_eval(args) -> None:
    """``internet-eval`` of the run: images/s, silences, wall time, peak RSS."""
    cmd = [sys.executable, "-m", "internet_tf.cli.evaluate", "--model_dir", args.model_dir]
    if args.eval_images:
        cmd += ["--max_images", str(args.eval_images)]
    run = timed_run(cmd, args.code, "eval")
    progress = [(t, int(m.group(1))) for line, t in zip(run["lines"], run["times"])
                for m in [re.match(r"^images (\d+)/\d+  ", line)] if m]
    if len(progress) >= 2:  # from the first batch's line (tracing included there) to the last
        (t1, n1), (t2, n2) = progress[0], progress[-1]
        rate = f"{(n2 - n1) / max(t2 - t1, 1e-9):.1f} img/s after the first batch ({n2} images)"
    else:
        rate = "no progress lines"
    print(f"eval: rc {run['rc']}; {rate}; longest silence {longest_silence(run['times']):.1f}s; "
          f"wall {run['wall']:.0f}s; peak RSS {run['peak_rss_mib']:.0f} MiB")


def run_cocoeval(args, paths: dict) -> None:
    """COCOeval on made-up detections, in this process (``--code``'s package)."""
    sys.path.insert(0, args.code)
    from internet_tf.data.coco import CocoIndex
    from internet_tf.evaluation.coco_eval import run_cocoeval as cocoeval

    index = CocoIndex.from_files(paths["val_annotations"], paths["val_images"], training=False)
    rng = np.random.default_rng(0)
    results = []
    for record in index.records:
        n = args.detections_per_image
        h, w = record["height"], record["width"]
        x, y = rng.uniform(0, w * 0.7, n), rng.uniform(0, h * 0.7, n)
        bw, bh = rng.uniform(1, w * 0.3, n), rng.uniform(1, h * 0.3, n)
        cats = rng.choice(index.cat_ids, n)
        scores = rng.uniform(0.05, 1, n)
        results += [{"image_id": record["image_id"], "category_id": int(c), "score": float(s),
                     "bbox": [float(a), float(b), float(c_), float(d)]}
                    for a, b, c_, d, c, s in zip(x, y, bw, bh, cats, scores)]
    t0 = time.perf_counter()
    cocoeval(index.coco, results, img_ids=[r["image_id"] for r in index.records], cat_ids=index.cat_ids)
    print(f"cocoeval: {len(results)} detections on {len(index)} images in {time.perf_counter() - t0:.1f}s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder for the stand-in (written once)")
    parser.add_argument("--train_images", type=int, default=118287)
    parser.add_argument("--val_images", type=int, default=5000)
    parser.add_argument("--polygon_points", type=int, default=32)
    parser.add_argument("--model_dir", default=None, help="run folder (default: <data>/run)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--train_eval_images", type=int, default=20,
                        help="eval.max_images of the training run's final evaluation")
    parser.add_argument("--eval_images", type=int, default=0, help="internet-eval --max_images (0: all)")
    parser.add_argument("--detections_per_image", type=int, default=100)
    parser.add_argument("--code", default=ROOT, help="checkout whose internet_tf the tools run")
    parser.add_argument("--skip", default="", help="comma-separated: train, eval, cocoeval")
    args = parser.parse_args()
    args.model_dir = args.model_dir or os.path.join(args.data, "run")
    skip = set(filter(None, args.skip.split(",")))
    paths = stand_in(args)
    if "train" not in skip:
        run_train(args, paths)
    if "eval" not in skip:
        run_eval(args)
    if "cocoeval" not in skip:
        run_cocoeval(args, paths)


if __name__ == "__main__":
    main()
