"""Which InterNet variant the evidence makes the default: the one with the best paired mean ΔAPs
on the premise data (classes named by shape only) among those whose ΔAP interval does not lie
wholly below 0 on either set (the premise set and the class-colour "does no harm" set). Also
says whether the chosen one meets the acceptance bar: on the premise set mean ΔAP ≥ 0 and
ΔAPs ≥ ``--min_aps`` over ``--min_seeds`` seeds, on the other set mean ΔAP ≥ ``--max_harm``.
Reads the ``study.json`` files that ``benchmarks/study.py`` wrote (their ``paired`` section):

    python benchmarks/default_rule.py --premise benchmarks/results/evidence/evidence_random_study.json \\
        --harmless benchmarks/results/evidence/evidence_class_study.json
"""
from __future__ import annotations

import json
import math
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from paired import cell  # noqa: E402


def _not_below_zero(p: dict) -> bool:
    """The ΔAP interval does not lie wholly below 0 (with one seed: the mean is not below 0)."""
    high = p["mean"]["AP"] if math.isnan(p["high"]["AP"]) else p["high"]["AP"]
    return high >= 0


def choose(premise: dict, harmless: dict, min_aps=1.0, min_seeds=5, max_harm=-0.5) -> dict:
    """``premise`` and ``harmless``: the ``paired`` sections of two studies (variant -> its paired
    result against its reference). Returns ``{"rows": [...], "chosen": name or None, "meets":
    bool}``; a row has the variant, both pairs (the other set's only when it has the same
    reference), whether it qualifies and why not. Variants that are another's reference are no
    candidates."""
    references = {p["reference"] for p in premise.values()}
    rows = []
    for name, p in premise.items():
        if name in references:  # a baseline continued as long is a reference, not a candidate
            continue
        h = harmless.get(name)
        if h is not None and h["reference"] != p["reference"]:
            h = None
        why = []
        if h is None:
            why.append("not on the class-colour set")
        elif not _not_below_zero(h):
            why.append("ΔAP below 0 on the class-colour set")
        if not _not_below_zero(p):
            why.append("ΔAP below 0 on the premise set")
        rows.append({"variant": name, "premise": p, "harmless": h, "qualifies": not why, "why": why})
    qualified = [r for r in rows if r["qualifies"]]
    best = max(qualified, key=lambda r: r["premise"]["mean"]["APs"], default=None)
    meets = bool(best) and (len(best["premise"]["seeds"]) >= min_seeds and best["premise"]["mean"]["AP"] >= 0
                            and best["premise"]["mean"]["APs"] >= min_aps
                            and best["harmless"]["mean"]["AP"] >= max_harm)
    return {"rows": rows, "chosen": best["variant"] if best else None, "meets": meets}


def format_choice(result: dict, min_aps=1.0, min_seeds=5, max_harm=-0.5) -> str:
    lines = ["| variant | reference | premise: n, ΔAP | premise ΔAPs | class colours: n, ΔAP | qualifies |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        p, h = r["premise"], r["harmless"]
        other = f"{len(h['seeds'])}, {cell(h, 'AP')}" if h else "—"
        lines.append(f"| {r['variant']} | {p['reference']} | {len(p['seeds'])}, {cell(p, 'AP')} | "
                     f"{cell(p, 'APs')} | {other} | {'yes' if r['qualifies'] else '; '.join(r['why'])} |")
    chosen = result["chosen"]
    lines += ["", f"chosen: {chosen or 'none qualifies'}; acceptance (premise ΔAP ≥ 0 and ΔAPs ≥ {min_aps:+.1f} "
              f"over ≥ {min_seeds} seeds, class-colour ΔAP ≥ {max_harm:+.1f}): "
              + ("met" if result["meets"] else "not met")]
    return "\n".join(lines)


def main(argv):
    del argv
    with open(FLAGS.premise) as f:
        premise = json.load(f)["paired"]
    with open(FLAGS.harmless) as f:
        harmless = json.load(f)["paired"]
    args = dict(min_aps=FLAGS.min_aps, min_seeds=FLAGS.min_seeds, max_harm=FLAGS.max_harm)
    print(format_choice(choose(premise, harmless, **args), **args))


if __name__ == "__main__":
    FLAGS = flags.FLAGS
    flags.DEFINE_string("premise", None, "study.json on the premise data (classes named by shape only).")
    flags.DEFINE_string("harmless", None, "study.json of the same variants on the class-colour data.")
    flags.DEFINE_float("min_aps", 1.0, "The ΔAPs the default must reach on the premise data.")
    flags.DEFINE_integer("min_seeds", 5, "The seeds that ΔAPs must be measured over.")
    flags.DEFINE_float("max_harm", -0.5, "The lowest mean ΔAP allowed on the class-colour data.")
    flags.mark_flags_as_required(["premise", "harmless"])
    sys.exit(app.run(main))
