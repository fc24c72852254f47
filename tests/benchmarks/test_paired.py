"""benchmarks/paired.py: per-seed differences, their mean and 95 % t-interval, checked against
hand-computed values; unpaired seeds and COCOeval's -1 are left out; the table and chart."""
import importlib.util
import math
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("paired", os.path.join(ROOT, "benchmarks", "paired.py"))
paired = importlib.util.module_from_spec(spec)
spec.loader.exec_module(paired)


def run(seed, ap, aps, apl=0.5):
    return {"seed": seed, "metrics": {"AP": ap, "AP50": 0.9, "AP75": 0.6, "APs": aps, "APm": 0.5, "APl": apl}}


def test_t_interval_matches_hand_computed_values():
    # [1, 2, 3]: mean 2, s = 1, t(0.975, 2) = 4.302653 -> 2 ± 4.302653 / sqrt(3)
    mean, low, high = paired.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    # five values: t(0.975, 4) = 2.776445
    values = [0.5, -1.0, 2.0, 1.5, 0.0]
    mean, low, high = paired.t_interval(values)
    s = math.sqrt(sum((v - 0.6) ** 2 for v in values) / 4)
    assert mean == pytest.approx(0.6) and high - mean == pytest.approx(2.776445 * s / math.sqrt(5), abs=1e-5)
    assert math.isnan(paired.t_interval([1.0])[1]) and math.isnan(paired.t_interval([])[0])


def test_pairs_by_seed_and_reports_mean_delta_and_interval():
    runs = {
        "base": [run(0, 0.60, 0.40), run(1, 0.62, 0.44), run(2, 0.58, 0.38), {"seed": 3, "metrics": None}],
        "new": [run(0, 0.61, 0.42), run(1, 0.64, 0.47), run(2, 0.58, 0.41, apl=-1.0), run(3, 0.9, 0.9)],
        "warm_base": [run(0, 0.7, 0.5)],
        "warm_new": [run(0, 0.72, 0.49), run(1, 0.7, 0.5)],
    }
    result = paired.paired(runs, {"base": "base", "new": "base", "warm_base": "warm_base", "warm_new": "warm_base"})
    assert set(result) == {"new", "warm_new"}  # a reference is not paired with itself
    new = result["new"]
    assert new["reference"] == "base" and new["seeds"] == [0, 1, 2]  # seed 3 has no reference
    assert new["deltas"]["AP"] == pytest.approx([1.0, 2.0, 0.0])
    assert new["deltas"]["APs"] == pytest.approx([2.0, 3.0, 3.0])
    assert new["deltas"]["APl"] == pytest.approx([0.0, 0.0])  # -1 (no large objects) pairs with nothing
    assert new["mean"]["AP"] == pytest.approx(1.0)
    assert new["low"]["AP"] == pytest.approx(1.0 - 4.302653 / math.sqrt(3), abs=1e-4)
    assert new["mean"]["APs"] == pytest.approx(8 / 3)
    warm = result["warm_new"]
    assert warm["seeds"] == [0] and warm["deltas"]["AP"] == pytest.approx([2.0]) and math.isnan(warm["low"]["AP"])
    table = paired.format_paired(result)
    assert "| new | base | 3 | +1.0 [-1.5, +3.5] |" in table
    assert "| warm_new | warm_base | 1 | +2.0 |" in table
    assert "| new | 0: +1.0 1: +2.0 2: +0.0 | 0: +2.0 1: +3.0 2: +3.0 |" in table


def test_a_list_of_references_pairs_the_variant_with_each(tmp_path):
    runs = {"base": [run(0, 0.60, 0.40), run(1, 0.62, 0.44)],
            "base_2x": [run(0, 0.64, 0.45), run(1, 0.63, 0.46)],
            "labelenc": [run(0, 0.63, 0.43), run(1, 0.66, 0.47)]}
    result = paired.paired(runs, {"base_2x": "base", "labelenc": ["base", "base_2x"]})
    assert list(result) == ["base_2x", "labelenc", "labelenc vs base_2x"]
    assert result["labelenc"]["reference"] == "base" and result["labelenc"]["variant"] == "labelenc"
    assert result["labelenc"]["deltas"]["AP"] == pytest.approx([3.0, 4.0])
    second = result["labelenc vs base_2x"]
    assert second["variant"] == "labelenc" and second["reference"] == "base_2x"
    assert second["deltas"]["AP"] == pytest.approx([-1.0, 3.0]) and second["mean"]["APs"] == pytest.approx(-0.5)
    table = paired.format_paired(result)
    assert "| labelenc | base | 2 |" in table and "| labelenc | base_2x | 2 |" in table
    paired.paired_chart(result, str(tmp_path / "paired.png"), "t")
    assert os.path.getsize(tmp_path / "paired.png") > 1000


def test_chart_is_written(tmp_path):
    result = paired.paired({"a": [run(0, 0.5, 0.3), run(1, 0.5, 0.3)], "b": [run(0, 0.6, 0.2), run(1, 0.55, 0.25)]},
                           {"b": "a"})
    path = str(tmp_path / "paired.png")
    paired.paired_chart(result, path, "t")
    assert os.path.getsize(path) > 1000


def test_long_variant_names_are_broken_at_underscores_for_the_chart():
    assert paired.wrapped("warm_separate_decay_no_ot") == "warm_separate\ndecay_no_ot"
    assert paired.wrapped("baseline_cont") == "baseline_cont"
    assert all(len(line) <= 14 for line in paired.wrapped("warm_separate_ot_authors").split("\n"))
