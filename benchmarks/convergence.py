"""The convergence curve of a study whose variants differ only in their step budget
(``configs/studies/convergence.yaml``): mean ± std of AP and APs against steps, the gain per
doubling, and the study budget it suggests — the first budget whose next doubling gains
under ``--gain`` AP points. Reads the ``study.json`` that ``benchmarks/study.py`` wrote:

    python benchmarks/convergence.py --study_json runs/study/convergence/study.json \\
        --out benchmarks/results/convergence
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study_report import aggregate, save_png  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from internet_tf.files import write_atomic  # noqa: E402

KEYS = ("AP", "AP50", "APs", "APm", "APl")


def curve(study: dict, keys=KEYS) -> list:
    """``study.json`` -> one row per variant with a single step budget, sorted by steps:
    ``{"variant", "steps", "n", "mean": {key}, "std": {key}, "values": {key: [...]}}`` in points."""
    single = {n: v for n, v in study["variants"].items() if len(v.get("steps", [])) == 1}
    summary = aggregate({n: v["runs"] for n, v in single.items()}, keys)
    rows = [{"variant": n, "steps": single[n]["steps"][0], **s} for n, s in summary.items()]
    return sorted(rows, key=lambda r: r["steps"])


def suggest(rows: list, gain: float = 1.0, key: str = "AP"):
    """The first budget whose doubling (the next row at twice its steps) gains under ``gain``
    points of ``key``, or None when every doubling measured still gains more."""
    by_steps = {r["steps"]: r for r in rows}
    for row in rows:
        nxt = by_steps.get(2 * row["steps"])
        if nxt and nxt["mean"][key] - row["mean"][key] < gain:
            return row["steps"]
    return None


def format_curve(rows: list, gain: float, keys=KEYS) -> str:
    lines = ["| steps | n | " + " | ".join(keys) + " | ΔAP from half the steps |",
             "|---|---|" + "---|" * len(keys) + "---|"]
    by_steps = {r["steps"]: r for r in rows}
    for r in rows:
        half = by_steps.get(r["steps"] // 2) if r["steps"] % 2 == 0 else None
        step_gain = f"{r['mean']['AP'] - half['mean']['AP']:+.1f}" if half else "—"
        cells = [f"{r['mean'][k]:.1f} ± {r['std'][k]:.1f}" if r["values"][k] else "—" for k in keys]
        lines.append(f"| {r['steps']} | {r['n']} | " + " | ".join(cells) + f" | {step_gain} |")
    budget = suggest(rows, gain)
    lines += ["", (f"First budget whose doubling gains under {gain:g} AP: **{budget} steps**." if budget else
                   f"Every doubling measured still gains {gain:g} AP or more.")]
    return "\n".join(lines)


def chart(rows: list, path: str, title: str, keys=("AP", "APs")):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        ax.errorbar([r["steps"] for r in rows], [r["mean"][key] for r in rows],
                    yerr=[r["std"][key] for r in rows], marker="o", capsize=4, label=key)
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["steps"] for r in rows], [str(r["steps"]) for r in rows])
    ax.set_xlabel("training steps (each budget its own run and schedule)")
    ax.set_ylabel("COCO metric (%), mean ± std over seeds")
    ax.set_title(title, fontsize=9)
    ax.legend()
    save_png(fig, path)


FLAGS = flags.FLAGS


def main(argv):
    del argv
    with open(FLAGS.study_json) as f:
        study = json.load(f)
    rows = curve(study)
    if not rows:
        print(f"error: {FLAGS.study_json} has no variant with a single step budget", file=sys.stderr)
        sys.exit(2)
    text = format_curve(rows, FLAGS.gain)
    os.makedirs(os.path.dirname(FLAGS.out) or ".", exist_ok=True)
    write_atomic(FLAGS.out + ".md", f"`{study.get('command', '')}`\n\n{text}\n")
    chart(rows, FLAGS.out + ".png", f"baseline AP against its budget, seeds {study.get('seeds')}")
    print(text + f"\n\nwrote {FLAGS.out}.md and {FLAGS.out}.png")


if __name__ == "__main__":
    flags.DEFINE_string("study_json", None, "study.json of a study whose variants differ in train.steps.")
    flags.DEFINE_string("out", "runs/convergence", "Output path without extension (.md and .png are written).")
    flags.DEFINE_float("gain", 1.0, "AP points per doubling below which training has converged enough.")
    flags.mark_flag_as_required("study_json")
    app.run(main)
