"""benchmarks/convergence.py: the curve's rows from a study.json, the gain per doubling and the
suggested budget, the table and chart."""
import importlib.util
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
spec = importlib.util.spec_from_file_location("convergence", os.path.join(ROOT, "benchmarks", "convergence.py"))
convergence = importlib.util.module_from_spec(spec)
spec.loader.exec_module(convergence)


def variant(steps, aps):
    return {"steps": [steps], "runs": [{"seed": i, "metrics": {"AP": a, "AP50": 0.9, "APs": a - 0.1, "APm": a,
                                                               "APl": -1.0}} for i, a in enumerate(aps)]
            + [{"seed": 9, "status": "failed", "metrics": None}]}


STUDY = {"command": "cmd", "seeds": [0, 1], "variants": {
    "b2000": variant(2000, [0.745, 0.755]), "b500": variant(500, [0.62, 0.64]),
    "b1000": variant(1000, [0.70, 0.70]), "b4000": variant(4000, [0.75, 0.76]),
    "mixed": {"steps": [100, 200], "runs": []}}}


def test_rows_sorted_by_steps_with_mean_and_std_in_points():
    rows = convergence.curve(STUDY)
    assert [r["steps"] for r in rows] == [500, 1000, 2000, 4000]  # "mixed" has two budgets: left out
    assert rows[0]["n"] == 2 and rows[0]["mean"]["AP"] == pytest.approx(63.0)
    assert rows[0]["std"]["AP"] == pytest.approx(math.sqrt(2) * 1.0)
    assert rows[0]["values"]["APl"] == []  # -1: no large objects


def test_suggested_budget_is_the_first_whose_doubling_gains_under_the_threshold():
    rows = convergence.curve(STUDY)
    assert convergence.suggest(rows, 1.0) == 2000  # 63 -> 70 -> 75 -> 75.5
    assert convergence.suggest(rows, 6.0) == 1000
    assert convergence.suggest(rows, 0.1) is None
    text = convergence.format_curve(rows, 1.0)
    assert "| 1000 | 2 | 70.0 ± 0.0 |" in text and "| +7.0 |" in text
    assert "**2000 steps**" in text


def test_chart_is_written(tmp_path):
    path = str(tmp_path / "c.png")
    convergence.chart(convergence.curve(STUDY), path, "t")
    assert os.path.getsize(path) > 1000
