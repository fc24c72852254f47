"""benchmarks/default_rule.py: the default is the best premise ΔAPs among variants whose ΔAP
interval is not wholly below 0 on either set; the acceptance bar is checked on that one."""
import importlib.util
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("default_rule", os.path.join(ROOT, "benchmarks", "default_rule.py"))
rule = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rule)


def pair(ap, ap_low, ap_high, aps, n=5, reference="baseline_cont"):
    nan = math.nan
    return {"reference": reference, "seeds": list(range(n)), "deltas": {"AP": [ap] * n, "APs": [aps] * n},
            "mean": {"AP": ap, "APs": aps}, "low": {"AP": ap_low, "APs": nan}, "high": {"AP": ap_high, "APs": nan}}


def test_best_aps_among_variants_not_below_zero_on_either_set():
    premise = {"baseline_cont": pair(0.5, 0.1, 0.9, 0.5, reference="baseline"),
               "a": pair(0.6, 0.1, 1.1, 0.4),        # qualifies
               "b": pair(-0.3, -0.5, -0.1, 2.0),     # best APs, but its ΔAP lies below 0
               "c": pair(0.0, -0.1, 0.1, 0.9),       # better APs than a, but harms the class-colour set
               "d": pair(1.0, 0.5, 1.5, 3.0)}        # not run on the class-colour set
    harmless = {"a": pair(-0.2, -0.6, 0.2, 0.0), "b": pair(0.1, -0.1, 0.3, 0.0),
                "c": pair(-0.8, -1.2, -0.4, 0.0), "baseline_cont": pair(0, 0, 0, 0, reference="baseline")}
    result = rule.choose(premise, harmless)
    assert result["chosen"] == "a" and not result["meets"]  # its ΔAPs +0.4 is short of +1.0
    rows = {r["variant"]: r for r in result["rows"]}
    assert "baseline_cont" not in rows
    assert rows["b"]["why"] == ["ΔAP below 0 on the premise set"]
    assert rows["c"]["why"] == ["ΔAP below 0 on the class-colour set"]
    assert rows["d"]["why"] == ["not on the class-colour set"]
    text = rule.format_choice(result)
    assert "| a | baseline_cont | 5, +0.6 [+0.1, +1.1] | +0.4 | 5, -0.2 [-0.6, +0.2] | yes |" in text
    assert "chosen: a;" in text and text.endswith("not met")


def test_the_acceptance_bar_and_a_reference_mismatch():
    premise = {"a": pair(0.2, -0.3, 0.7, 1.2)}
    assert rule.choose(premise, {"a": pair(-0.4, -0.9, 0.1, 0.0)})["meets"]
    assert not rule.choose(premise, {"a": pair(-0.6, -0.9, 0.1, 0.0)})["meets"]  # harms the class-colour set
    assert not rule.choose({"a": pair(0.2, -0.3, 0.7, 1.2, n=3)}, {"a": pair(0, -1, 1, 0)})["meets"]  # 3 seeds
    mismatch = rule.choose(premise, {"a": pair(0.0, -0.1, 0.1, 0.0, reference="baseline")})
    assert mismatch["chosen"] is None and mismatch["rows"][0]["why"] == ["not on the class-colour set"]
    assert "chosen: none qualifies" in rule.format_choice(mismatch)
