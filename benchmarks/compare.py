"""Baseline vs InterNet on the embedded dataset: same steps, several seeds (issue: Table 2a's
comparison at demo scale). Writes a markdown table (mean ± std of AP, AP50, AP75, APs,
APm, APl) and a bar chart.

    python benchmarks/compare.py --out runs/compare --seeds 0,1,2
    python benchmarks/compare.py --out runs/compare --override train.steps=300   # shorter

Each run is ``internet-train`` with ``configs/demo_baseline.yaml`` or ``configs/demo.yaml``
and ``--override seed=S`` into ``OUT/<name>_seed<S>``; finished runs are reused, so an
interrupted comparison resumes.
"""
from __future__ import annotations

import json
import os
import statistics

from absl import app, flags

import internet_tf  # noqa: F401  (quiets TF's C++ logging)

flags.DEFINE_string("out", "runs/compare", "Output folder.")
flags.DEFINE_string("seeds", "0,1,2", "Comma-separated seeds.")
flags.DEFINE_multi_string("override", [], "key=value overrides applied to both configs.")
FLAGS = flags.FLAGS

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
VARIANTS = (("baseline", "configs/demo_baseline.yaml"), ("InterNet", "configs/demo.yaml"))
KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def run_one(name: str, config: str, seed: int) -> dict:
    from internet_tf.config import load_config
    from internet_tf.training.run import train_and_evaluate

    model_dir = os.path.join(FLAGS.out, f"{name}_seed{seed}")
    metrics_path = os.path.join(model_dir, "eval", "metrics.json")
    cfg = load_config(os.path.join(ROOT, config), [f"seed={seed}"] + list(FLAGS.override))
    if os.path.exists(metrics_path) and os.path.exists(os.path.join(model_dir, "checkpoints")):
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
        if latest and latest.endswith(f"-{cfg.train.steps}"):
            with open(metrics_path) as f:
                return json.load(f)
    return train_and_evaluate(cfg, model_dir)


def table(results: dict) -> str:
    lines = ["| model | " + " | ".join(KEYS) + " |", "|---|" + "---|" * len(KEYS)]
    for name, runs in results.items():
        cells = []
        for key in KEYS:
            values = [100 * r[key] for r in runs]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {std:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(results: dict, path: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(KEYS))
    width = 0.38
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (name, runs) in enumerate(results.items()):
        means = [statistics.mean(100 * r[k] for r in runs) for k in KEYS]
        stds = [statistics.stdev([100 * r[k] for r in runs]) if len(runs) > 1 else 0 for k in KEYS]
        ax.bar(x + (i - 0.5) * width, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(x, KEYS)
    ax.set_ylabel("COCO metric (%)")
    ax.set_title(f"Embedded validation split, mean ± std over {len(next(iter(results.values())))} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv):
    del argv
    os.makedirs(FLAGS.out, exist_ok=True)
    seeds = [int(s) for s in FLAGS.seeds.split(",")]
    results = {name: [run_one(name, config, seed) for seed in seeds] for name, config in VARIANTS}
    text = table(results)
    with open(os.path.join(FLAGS.out, "compare.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(FLAGS.out, "compare.json"), "w") as f:
        json.dump({n: [{k: r[k] for k in KEYS} for r in runs] for n, runs in results.items()}, f, indent=1)
    bar_chart(results, os.path.join(FLAGS.out, "compare.png"))
    delta = statistics.mean(r["APs"] for r in results["InterNet"]) - statistics.mean(
        r["APs"] for r in results["baseline"])
    print(text)
    print(f"\nInterNet APs - baseline APs = {100 * delta:+.1f} points; "
          f"wrote {FLAGS.out}/compare.md, compare.png, compare.json")


if __name__ == "__main__":
    app.run(main)
