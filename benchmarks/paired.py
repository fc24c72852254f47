"""Paired differences of a study (``benchmarks/study.py``): per seed Δ = variant − reference
(the same seed gives both runs the same data order and sampling), their mean and a 95 %
Student-t interval. A gain is claimed from the interval, not from the two means.

A variant's reference is the study's, or its own ``reference:`` in the study file (warm-started
variants are compared with the baseline continued as long, not with the one trained from scratch);
a list of references pairs the variant with each (LabelEnc against the baseline at 1× and at 2×
its schedule).
"""
from __future__ import annotations

import math
import os
import statistics
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from study_report import KEYS, save_png  # noqa: E402


def t_interval(values, level: float = 0.95) -> tuple:
    """(mean, low, high) of ``values``: the mean ± t_{(1+level)/2, n−1} · s / √n (NaN bounds
    for fewer than two values)."""
    from scipy.stats import t

    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = statistics.mean(values)
    if n < 2:
        return mean, math.nan, math.nan
    half = t.ppf(0.5 + level / 2, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half


def as_list(refs) -> list:
    """A variant's ``reference`` (a name, or a list of them) as a list."""
    return refs if isinstance(refs, list) else [refs]


def pairs_of(references: dict) -> list:
    """``[(key, variant, reference)]`` of ``{variant: a reference or a list of them}``: the key is
    the variant's name for its first reference and ``"VARIANT vs REFERENCE"`` for the others."""
    out = []
    for name, refs in references.items():
        for i, reference in enumerate(as_list(refs)):
            out.append((name if i == 0 else f"{name} vs {reference}", name, reference))
    return out


def paired(runs: dict, references: dict, keys=KEYS) -> dict:
    """``runs``: ``{variant: [{"seed", "metrics", ...}]}``; ``references``: ``{variant: its
    reference or a list of them}`` (variants without one, or their own reference, are left out)
    -> ``{key: {"variant", "reference", "seeds", "deltas": {key: [...]}, "mean", "low", "high"}}``
    in points (percent), keyed as ``pairs_of`` says. Only seeds with metrics on both sides pair;
    COCOeval's −1 (no ground truth of that size) pairs with nothing."""
    out = {}
    for key_, name, reference in pairs_of(references):
        if reference == name or name not in runs or reference not in runs:
            continue
        ref = {r["seed"]: r["metrics"] for r in runs[reference] if r.get("metrics")}
        both = [(r["seed"], r["metrics"], ref[r["seed"]]) for r in runs[name]
                if r.get("metrics") and r["seed"] in ref]
        deltas = {k: [100 * (m[k] - b[k]) for _, m, b in both if m.get(k, -1) >= 0 and b.get(k, -1) >= 0]
                  for k in keys}
        stats = {k: t_interval(v) for k, v in deltas.items()}
        out[key_] = {"variant": name, "reference": reference, "seeds": [s for s, _, _ in both], "deltas": deltas,
                     "mean": {k: s[0] for k, s in stats.items()}, "low": {k: s[1] for k, s in stats.items()},
                     "high": {k: s[2] for k, s in stats.items()}}
    return out


def cell(p: dict, key: str) -> str:
    """``mean [low, high]`` of one paired key, the mean alone without an interval, — without pairs."""
    if not p["deltas"][key]:
        return "—"
    if math.isnan(p["low"][key]):
        return f"{p['mean'][key]:+.1f}"
    return f"{p['mean'][key]:+.1f} [{p['low'][key]:+.1f}, {p['high'][key]:+.1f}]"


def format_paired(result: dict, keys=KEYS) -> str:
    """The markdown table of mean Δ [95 % interval] per variant, then the per-seed ΔAP / ΔAPs."""
    if not result:
        return ""
    lines = ["paired by seed, variant − reference (points; mean [95 % t-interval]):", "",
             "| variant | reference | n | " + " | ".join(f"Δ{k}" for k in keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for name, p in result.items():
        lines.append(f"| {p['variant']} | {p['reference']} | {len(p['seeds'])} | "
                     + " | ".join(cell(p, k) for k in keys) + " |")
    lines += ["", "| variant | per seed ΔAP | per seed ΔAPs |", "|---|---|---|"]
    for name, p in result.items():
        per_seed = [" ".join(f"{s}: {d:+.1f}" for s, d in zip(p["seeds"], p["deltas"][k])) if
                    len(p["deltas"][k]) == len(p["seeds"]) else ", ".join(f"{d:+.1f}" for d in p["deltas"][k])
                    for k in ("AP", "APs")]
        lines.append(f"| {name} | {per_seed[0]} | {per_seed[1]} |")
    return "\n".join(lines)


def wrapped(name: str, width: int = 14) -> str:
    """A variant name broken at its underscores into lines of about ``width`` characters, so
    that neighbouring tick labels do not run into each other."""
    lines = textwrap.wrap(name.replace("_", " "), width, break_long_words=False)
    return "\n".join(line.replace(" ", "_") for line in lines)


def paired_chart(result: dict, path: str, title: str, keys=("AP", "APs")):
    """Mean Δ with its 95 % interval per variant (one marker per key), 0 drawn across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names) + 2), 4))
    for j, key in enumerate(keys):
        xs = [i + (j - (len(keys) - 1) / 2) * 0.25 for i in range(len(names))]
        means = [result[n]["mean"][key] for n in names]
        errs = [[0 if math.isnan(result[n]["low"][key]) else result[n]["mean"][key] - result[n]["low"][key]
                 for n in names],
                [0 if math.isnan(result[n]["high"][key]) else result[n]["high"][key] - result[n]["mean"][key]
                 for n in names]]
        ax.errorbar(xs, means, yerr=errs, fmt="o", capsize=4, label=f"Δ{key}")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(names)), [f"{wrapped(result[n]['variant'])}\nvs {result[n]['reference']}"
                                      for n in names], fontsize=7)
    ax.set_ylabel("variant − reference (points)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save_png(fig, path)
