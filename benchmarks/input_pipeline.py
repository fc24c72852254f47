"""Input pipeline against the train step (the embedded demo must never wait on input).

    python benchmarks/input_pipeline.py --config configs/demo.yaml
    python benchmarks/input_pipeline.py --config configs/baseline_r50_fpn_coco.yaml --coco_like 200 \
        --override model.backbone_weights=none --override train.batch_size=2

For the config's training stream (``data.datasets.train_dataset``: the exact pipeline that
``internet-train`` reads, seeded, shuffled, flipped) it prints, with ``data.cache_images``
off and on (``--cache``):

- the ``tf.data`` pipeline alone: images/s over ``--batches`` batches after ``--warmup``
  (with the cache on, the warm-up includes the first fill of the shuffle buffer, which decodes
  the images it holds);
- the train step on one fixed batch (``training.step.build_train_step``; no input at all)
  and the train step fed by each pipeline as the trainer runs it, in alternating rounds of
  one step each (``--steps`` timed rounds after ``--warmup``): images/s from the median
  step, and the median time a fed step spends waiting in ``next(iterator)``. A step that
  never waits on input has a wait near 0; on a CPU the fed step can still be slower than
  the fixed one, by the pipeline's work on the same cores.

``--coco_like N`` writes N COCO-sized JPEGs (640 × 480 and 480 × 640, smooth shapes and
noise, 3–10 boxes each, 80 categories) and a COCO json into a temporary folder and points
``data.*`` at them (removed at the end), for a 512 px COCO-like measurement without COCO. On a CPU the pipeline
and the step share the cores: the pipeline-alone figure is what it reaches with the cores
to itself; the fed-step figure is the one that says whether training waits.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
import time

import numpy as np
from absl import app, flags

import internet_tf.cli  # noqa: F401  (quiets TF's C++ logging)
from internet_tf.cli.common import define_config_flags, load_flags_config

define_config_flags(model_dir_required=False)
flags.DEFINE_integer("batches", 20, "Timed batches of the pipeline alone.")
flags.DEFINE_integer("warmup", 3, "Untimed batches (and steps) first.")
flags.DEFINE_integer("steps", 10, "Timed train steps (fixed batch, and fed by the pipeline); 0: pipeline only.")
flags.DEFINE_enum("cache", "both", ["off", "on", "both"], "data.cache_images settings to measure.")
flags.DEFINE_integer("coco_like", 0, "Write this many COCO-sized JPEGs and train on them (0: the config's data).")
FLAGS = flags.FLAGS


def write_coco_like(root: str, count: int, seed: int = 0) -> dict:
    """``count`` JPEGs of COCO's usual sizes with a COCO json; returns the four data paths."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images_dir = os.path.join(root, "images")
    os.makedirs(images_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        width, height = (640, 480) if i % 3 else (480, 640)
        base = rng.uniform(0, 255, (height // 32 + 1, width // 32 + 1, 3)).astype(np.uint8)
        picture = Image.fromarray(base).resize((width, height), Image.BILINEAR)
        draw = ImageDraw.Draw(picture)
        for _ in range(int(rng.integers(3, 11))):
            w, h = rng.uniform(16, width / 2), rng.uniform(16, height / 2)
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            fill = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=fill)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0, "category_id": int(rng.integers(1, 81))})
        noisy = np.asarray(picture, np.float32) + rng.normal(0, 6, (height, width, 3))
        name = f"{i:06d}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(os.path.join(images_dir, name), quality=90)
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
    path = os.path.join(root, "instances.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations,
                   "categories": [{"id": c, "name": f"class{c}"} for c in range(1, 81)]}, f)
    return {"train_annotations": path, "train_images": images_dir,
            "val_annotations": path, "val_images": images_dir}


def pipeline_rate(dataset, batch_size: int, warmup: int, batches: int) -> float:
    """Images/s of iterating ``dataset`` alone for ``batches`` batches after ``warmup``."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - t0)


def step_rates(cfg, bundle, datasets: dict) -> dict:
    """Median seconds per train step, timed in alternating rounds (a change of machine load
    hits all alike): ``"fixed"`` on one fixed batch, and for each ``datasets[name]`` the step
    fed by it, with ``"<name> wait"`` the time spent in ``next(iterator)`` alone."""
    from internet_tf.assembly.factory import build_model_and_optimizer
    from internet_tf.training.step import build_train_step

    model, optimizer = build_model_and_optimizer(cfg, bundle.num_classes, len(bundle.train))
    step = build_train_step(model, optimizer, cfg.train.clip_norm)
    iterators = {name: iter(dataset) for name, dataset in datasets.items()}
    batch = next(next(iter(iterators.values())))
    float(step(batch)["loss/total"])  # traces

    def fixed():
        float(step(batch)["loss/total"])
        return 0.0

    def fed(iterator):
        t0 = time.perf_counter()
        inputs = next(iterator)
        wait = time.perf_counter() - t0
        float(step(inputs)["loss/total"])
        return wait

    runs = {"fixed": fixed, **{name: (lambda it=it: fed(it)) for name, it in iterators.items()}}
    times = {name: [] for name in runs}
    waits = {name: [] for name in runs}
    for round_ in range(FLAGS.warmup + FLAGS.steps):
        for name, run in runs.items():
            t0 = time.perf_counter()
            wait = run()
            if round_ >= FLAGS.warmup:
                times[name].append(time.perf_counter() - t0)
                waits[name].append(wait)
    out = {name: statistics.median(t) for name, t in times.items()}
    out.update({f"{name} wait": statistics.median(w) for name, w in waits.items() if name != "fixed"})
    return out


def measure(cfg, where: str):
    """Prints the pipeline-alone and train-step figures of ``cfg`` (see the module docstring)."""
    from internet_tf.config import copy_config
    from internet_tf.data.datasets import load_datasets, train_dataset

    bundle = load_datasets(cfg, val=False)
    m, b = cfg.model, cfg.train.batch_size
    print(f"{m.backbone} {m.image_size}px, batch {b}, {len(bundle.train)} training images ({where}); "
          f"{os.cpu_count()} CPU cores")
    settings = {"off": [False], "on": [True], "both": [False, True]}[FLAGS.cache]
    datasets = {}
    for cache in settings:
        name = f"cache {'on' if cache else 'off'}"
        datasets[name] = train_dataset(bundle, copy_config(cfg, [f"data.cache_images={str(cache).lower()}"]))
        rate = pipeline_rate(datasets[name], b, FLAGS.warmup, FLAGS.batches)
        print(f"  input pipeline alone, {name}: {rate:.1f} images/s ({FLAGS.batches} batches after "
              f"{FLAGS.warmup} warm-up)", flush=True)
    if FLAGS.steps:
        med = step_rates(cfg, bundle, datasets)
        print(f"  train step on a fixed batch: {b / med['fixed']:.2f} images/s (median step {med['fixed']:.3f} s "
              f"of {FLAGS.steps}, in rounds alternating with the fed steps below)")
        for name in datasets:
            print(f"  train step fed by the pipeline, {name}: {b / med[name]:.2f} images/s (median step "
                  f"{med[name]:.3f} s, {med['fixed'] / med[name]:.2f} of the fixed-batch rate); waiting "
                  f"on input {1000 * med[name + ' wait']:.1f} ms per step (median)")


def main(argv):
    del argv
    from internet_tf.config import copy_config

    cfg = load_flags_config()
    if not FLAGS.coco_like:
        return measure(cfg, f"data.dataset {cfg.data.dataset}")
    with tempfile.TemporaryDirectory(prefix="coco_like_") as root:
        paths = write_coco_like(root, FLAGS.coco_like)
        cfg = copy_config(cfg, ["data.dataset=coco"] + [f"data.{k}={v}" for k, v in paths.items()])
        measure(cfg, f"{FLAGS.coco_like} COCO-like JPEGs, 640x480")


if __name__ == "__main__":
    app.run(main)
