"""The study's report (``benchmarks/study.py``): the mean ± std table of the COCO metrics over
seeds with the differences to the reference variant, the bar chart, and where each variant's AP
is lost (wrong labels or imprecise boxes, ``internet_tf.evaluation.error_split``)."""
from __future__ import annotations

import io
import json
import math
import os
import statistics

from internet_tf.files import write_atomic

KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# The error split's columns: class-aware against class-agnostic AP (the price of wrong labels),
# small objects' AP at IoU .5 against .75 (the price of imprecise boxes).
ERROR_KEYS = ("AP", "AP agnostic", "APs", "APs agnostic", "APs50", "APs75")


def aggregate(runs: dict, keys=KEYS, field: str = "metrics") -> dict:
    """``{variant: [run records]}`` -> ``{variant: {"n", "mean", "std", "values", "notes"}}``
    in percent over the records' ``field``; runs without it are excluded and named in
    ``notes``; COCOeval's -1 (no ground truth of that size) is left out (mean NaN when no run
    has the metric). A VOC run's metrics (mAP, with AP50 = mAP) fill the AP50 column only; the
    others stay empty."""
    out = {}
    for name, records in runs.items():
        ok = [r[field] for r in records if r.get(field)]
        values = {k: [100 * m[k] for m in ok if m.get(k, -1) >= 0] for k in keys}
        out[name] = {"n": len(ok), "values": values,
                     "mean": {k: statistics.mean(v) if v else math.nan for k, v in values.items()},
                     "std": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in values.items()},
                     "notes": [f"seed {r['seed']} {r['status'] if not r.get('metrics') else 'without ' + field}"
                               for r in records if not r.get(field)]}
    return out


def _rows(summary: dict, keys) -> list:
    lines = ["| variant | n | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for name, s in summary.items():
        n = str(s["n"]) + (f" ({', '.join(s['notes'])})" if s["notes"] else "")
        cells = [f"{s['mean'][k]:.1f} ± {s['std'][k]:.1f}" if s["values"][k] else "—" for k in keys]
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return lines


def format_table(summary: dict, reference: str, note: str = "") -> str:
    """The markdown table (percent, mean ± sample std), ``note``, then the differences of the
    mean AP and APs to ``reference``."""
    lines = _rows(summary, KEYS)
    lines += ["", note] if note else []
    lines += ["", f"difference to {reference} (mean, points):", "",
              "| variant | ΔAP | ΔAPs |", "|---|---|---|"]
    for name, s in summary.items():
        if name != reference:
            ref = summary[reference]
            cells = [f"{s['mean'][k] - ref['mean'][k]:+.1f}" if s["values"][k] and ref["values"][k] else "—"
                     for k in ("AP", "APs")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def error_split_of_run(run_dir: str, ground_truth) -> dict | None:
    """``ERROR_KEYS`` -> fraction for one finished COCO-format run, from its
    ``eval/detections.json`` and ``ground_truth(run_dir)`` (a pycocotools COCO of the
    validation split); None when the run has no detections file (VOC runs, older runs)."""
    from internet_tf.evaluation.error_split import error_split

    path = os.path.join(run_dir, "eval", "detections.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        split = error_split(ground_truth(run_dir), json.load(f))
    aware, agnostic = split["class_aware"], split["class_agnostic"]
    return {"AP": aware["AP"], "AP agnostic": agnostic["AP"], "APs": aware["APs"],
            "APs agnostic": agnostic["APs"], "APs50": aware["APs50"], "APs75": aware["APs75"]}


def format_error_table(summary: dict) -> str:
    """Where the AP is lost, as a markdown table with a line on how to read it."""
    return "\n".join(["where the AP is lost (percent, mean ± std): AP agnostic − AP is the price of wrong "
                      "labels; APs50 − APs75 that of imprecise boxes on small objects", ""]
                     + _rows(summary, ERROR_KEYS))


def bar_chart(summary: dict, path: str, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(16, max(8, 0.5 * len(KEYS) * len(summary))), 4))
    width = 0.8 / len(summary)
    for i, (name, s) in enumerate(summary.items()):
        xs = [j + (i - (len(summary) - 1) / 2) * width for j in range(len(KEYS))]
        ax.bar(xs, [s["mean"][k] for k in KEYS], width, yerr=[s["std"][k] for k in KEYS], capsize=3,
               label=f"{name} (n={s['n']})")
    ax.set_xticks(range(len(KEYS)), KEYS)
    ax.set_ylabel("COCO metric (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_png(fig, path)


def save_png(fig, path: str):
    """Writes a matplotlib figure as a PNG (atomically) and closes it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, png.getvalue())
