"""molleak.plans.bench.aggregate on hand-made cell results: means, ranges and bootstrap intervals recomputed by hand.

The rule under test: an interval over seeds only from 5 seeds on; below, the range [min, max] labelled with n.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from molleak.errors import MolleakError
from molleak.plans.bench.aggregate import MIN_SEEDS_FOR_INTERVAL, aggregate, bootstrap_ci, fmt, summarize


def _hand_quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method), written out."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (pos - lo) * (sorted_values[hi] - sorted_values[lo])


def _hand_bootstrap(values: list[float], n_boot: int, seed: int) -> tuple[float, float]:
    """The documented procedure, one resample at a time in plain Python."""
    draws = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values))).tolist()
    means = sorted(sum(values[i] for i in row) / len(values) for row in draws)
    return _hand_quantile(means, 0.025), _hand_quantile(means, 0.975)


def test_bootstrap_interval_matches_hand_computation():
    values = [0.2, 0.5, 0.8]
    lo, hi = bootstrap_ci(values, n_boot=7, seed=11)
    hand_lo, hand_hi = _hand_bootstrap(values, 7, 11)
    assert lo == pytest.approx(hand_lo, abs=1e-12)
    assert hi == pytest.approx(hand_hi, abs=1e-12)
    assert 0.2 <= lo <= hi <= 0.8


def test_bootstrap_interval_degenerate_cases():
    assert bootstrap_ci([0.4]) == (0.4, 0.4)
    assert bootstrap_ci([0.3, 0.3, 0.3], n_boot=50, seed=1) == pytest.approx((0.3, 0.3))
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_summarize_drops_missing_values():
    s = summarize([0.5, None, float("nan"), 1.0], n_boot=20, seed=3)
    assert s["n"] == 2 and s["missing"] == 2
    assert s["mean"] == pytest.approx(0.75)
    assert s["range"] == [0.5, 1.0]
    assert s["ci95"] is None  # two seeds: no interval, their range instead
    assert summarize([None])["mean"] is None and fmt(summarize([None])) == "n/a"


def test_intervals_over_seeds_only_from_five_seeds():
    assert MIN_SEEDS_FOR_INTERVAL == 5
    two = summarize([0.78, 0.84], n_boot=50, seed=0)
    assert two["ci95"] is None and fmt(two) == "0.81 (range 0.78-0.84, n=2)"
    assert "[" not in fmt(two)  # the old table printed the bootstrap over 2 seeds (their min and max) as "95%"
    four = summarize([0.1, 0.2, 0.3, 0.4], n_boot=50, seed=0)
    assert four["ci95"] is None and fmt(four) == "0.25 (range 0.10-0.40, n=4)"
    assert fmt(summarize([0.5])) == "0.50 (n=1)"
    assert fmt(summarize([-0.2, 0.1])) == "-0.05 (range -0.20 to 0.10, n=2)"
    values = [0.2, 0.5, 0.8, 0.4, 0.6]
    five = summarize(values, n_boot=30, seed=4)
    assert five["ci95"] == pytest.approx(list(_hand_bootstrap(values, 30, 4)))
    lo, hi = five["ci95"]
    assert fmt(five) == f"0.50 [{lo:.2f}, {hi:.2f}] (n=5)"


def _write_cell(bench, cid, results=None, skipped=None):
    d = bench / "cells" / cid
    d.mkdir(parents=True)
    if results is not None:
        (d / "results.json").write_text(json.dumps(results))
    if skipped is not None:
        (d / "skipped.json").write_text(json.dumps({"cell": cid, "reason": skipped}))


def test_aggregate_hand_made_cells(tmp_path):
    bench = tmp_path
    attack = [f"v.victim-s1-adapter-aux-seed{s}" for s in range(3)]
    ref = [f"v.reference-s1-adapter-aux-seed{s}" for s in range(3)]
    prior = [f"nov-s1-prior_fp-aux-seed{s}" for s in range(3)]
    plan = {"suites": {"table1": [{"table": "table1", "key": {"victim": "v", "steps": 1, "method": "ours"},
                                   "columns": {"attack": {"spec": {}, "cells": attack},
                                               "reference": {"spec": {}, "cells": ref},
                                               "prior": {"spec": {}, "cells": prior}}}]}}
    (bench / "plan.json").write_text(json.dumps(plan))
    p100 = [0.5, 0.6, 0.9]
    base = [0.4, 0.4, 0.4]
    fcd = [10.0, None, 14.0]
    for s in range(3):
        _write_cell(bench, attack[s], {"precision_substructure@100": p100[s], "base_rate_substructure": base[s],
                                       "k": 200, "fcd_random@200": fcd[s]})
    _write_cell(bench, ref[0], {"precision_substructure@100": 0.7, "k": 200})
    _write_cell(bench, ref[1], {"precision_substructure@100": 0.3, "k": 200})
    _write_cell(bench, ref[2], skipped="no reference set")
    # prior cells never ran: pending

    out = aggregate(bench, n_boot=9, seed=5)
    row = out["tables"]["table1"]["rows"][0]["columns"]
    m = row["attack"]["metrics"]["precision_substructure@100"]
    assert m["n"] == 3 and m["mean"] == pytest.approx(2.0 / 3.0)
    assert m["ci95"] is None and m["range"] == [0.5, 0.9]  # 3 seeds: a range, no interval
    assert row["attack"]["metrics"]["base_rate_substructure"]["range"] == pytest.approx([0.4, 0.4])
    f = row["attack"]["metrics"]["fcd_random@200"]
    assert f["n"] == 2 and f["missing"] == 1 and f["mean"] == pytest.approx(12.0)
    r = row["reference"]
    assert r["done"] == 2 and list(r["skipped"].values()) == ["no reference set"]
    assert r["metrics"]["precision_substructure@100"]["mean"] == pytest.approx(0.5)
    assert row["prior"]["done"] == 0 and row["prior"]["pending"] == prior

    saved = json.loads((bench / "table.json").read_text())
    assert saved["tables"]["table1"]["rows"][0]["columns"]["attack"]["metrics"]["precision_substructure@100"][
        "mean"] == pytest.approx(2.0 / 3.0)
    md = (bench / "table.md").read_text()
    assert "0.67 (range 0.50-0.90, n=3)" in md
    assert "0.50 (range 0.30-0.70, n=2)" in md  # the reference column: two seeds done, one skipped
    assert "95% percentile-bootstrap interval over seeds" in md and "from 5 seeds on" in md
    assert "| v | 1 | ours | 3/3 |" in md
    assert "pending" in md and "no reference set" in md


def test_aggregate_needs_a_plan(tmp_path):
    with pytest.raises(MolleakError, match="plan.json"):
        aggregate(tmp_path)


def test_the_policy_suite_compares_methods_at_equal_budgets_with_controls():
    from molleak.plans.bench.suites import BUDGETED_METHODS, BenchConfig, suite_rows

    rows = suite_rows("policy", BenchConfig(victims=["attrmask"], policy_budgets=[100, 300]))
    budgeted = [r for r in rows if r.key["budget"] != "whole pool"]
    assert len(budgeted) == 2 * len(BUDGETED_METHODS) and len(rows) == len(budgeted) + 1
    for row in budgeted:
        spec = row.columns["attack"]
        assert (spec.method, spec.budget, spec.steps) == (row.key["method"], row.key["budget"], 2)
        assert set(row.columns) == {"attack", "reference", "untrained", "prior"}
        assert row.columns["reference"].budget == spec.budget  # the control spends the same budget
    whole = rows[-1].columns["attack"]
    assert (whole.method, whole.budget) == ("adapter", None)
