"""The privacy-utility curve's summary (molleak.plans.defences.summarise) and its report section."""

from __future__ import annotations

import re

import numpy as np
import pytest

from molleak.plans import defences
from molleak.report.load import DEFENCES_FILE


def _row(access: str, statistic: str, attack: str, p: float, auc: float) -> dict:
    return {"access": access, "statistic": statistic, "attack": attack, "group": "all", "p_auc": p,
            "auc": {"value": auc}, "tpr_at_fpr": {"0.01": {"value": auc - 0.5}}}


def _cell(level: str, kind: str, seed: int, p_white: float | None, p_black: float, utility: float) -> dict:
    rows = [] if p_white is None else [_row("white box", "loss", "lira_offline", p_white, 0.8 if p_white < 0.01 else 0.52)]
    rows += [_row("black box", "norm", "lira_online", p_black, 0.7 if p_black < 0.01 else 0.51),
             _row("black box", "invariance", "lira_online", 0.5, 0.5)]
    cell = {"defence": kind, "level": level, "victim_seed": seed, "rows": rows,
            "utility": {"freesolv": utility, "bbb": utility + 0.1}}
    if kind == "dp":
        eps = None if level == "eps=inf" else float(level[4:])
        cell.update(epsilon=eps, epsilon_spent=eps, noise_multiplier=None, empirical_epsilon={"epsilon_lower_bound": 0.0})
    else:
        cell["noise_scale"] = float(level[6:])
    return cell


def _results() -> dict:
    cells = []
    for s in range(3):
        cells.append(_cell("eps=inf", "dp", s, 1e-6, 1e-6, 0.50))   # leaks through both accesses
        cells.append(_cell("eps=100", "dp", s, 1e-6, 0.4, 0.48))    # still leaks (white box)
        cells.append(_cell("eps=10", "dp", s, 0.3, 0.4, 0.40))      # clean, useful
        cells.append(_cell("eps=1", "dp", s, 0.5, 0.5, 0.60))       # clean, stronger (utility noise: higher)
        cells.append(_cell("noise=0.1", "output", s, None, 1e-6, 0.45))  # black box still leaks
        cells.append(_cell("noise=1", "output", s, None, 0.6, 0.10))     # clean
    return {"cells": cells, "random_init": [{"freesolv": 0.05, "bbb": 0.15}], "plan": {"victim_seeds": [0, 1, 2]}}


def test_summary_finds_the_cheapest_setting_that_removes_detected_leakage():
    summary = defences.summarise(_results())
    by = {lv["level"]: lv for lv in summary["levels"]}
    assert by["eps=inf"]["detected"] and by["eps=100"]["detected"]
    assert not by["eps=10"]["detected"] and not by["eps=1"]["detected"]
    assert by["noise=0.1"]["detected_by_access"]["black box"] and not by["noise=1"]["detected"]
    assert summary["cheapest"]["dp"]["level"] == "eps=10"  # the weakest level with no victim detected
    assert summary["cheapest"]["output"]["level"] == "noise=1"
    assert summary["holm_family"] == 3 * (4 * 3 + 2 * 2)
    assert summary["random_init_utility_mean"] == pytest.approx(0.10)
    assert by["eps=10"]["utility_mean"] == pytest.approx(np.mean([0.40, 0.50]))


def test_one_detected_victim_of_three_keeps_a_level_detected():
    res = _results()
    for c in res["cells"]:
        if c["level"] == "eps=10" and c["victim_seed"] == 2:
            c["rows"][0]["p_auc"] = 1e-7
    summary = defences.summarise(res)
    level = next(lv for lv in summary["levels"] if lv["level"] == "eps=10")
    assert level["detected_seeds"] == 1 and level["detected"]
    assert summary["cheapest"]["dp"]["level"] == "eps=1"


def test_holm_across_the_curve_can_hide_a_weak_signal():
    res = _results()
    for c in res["cells"]:
        if c["level"] == "eps=100":
            c["rows"][0]["p_auc"] = 0.01  # significant alone, not after Holm across 48 tests
    summary = defences.summarise(res)
    assert not next(lv for lv in summary["levels"] if lv["level"] == "eps=100")["detected"]
    assert summary["cheapest"]["dp"]["level"] == "eps=100"


def test_nothing_to_remove_without_detected_leakage():
    res = _results()
    for c in res["cells"]:
        for r in c["rows"]:
            r["p_auc"] = 0.5
    summary = defences.summarise(res)
    assert summary["cheapest"]["dp"]["level"] is None and "nothing measured to remove" in summary["cheapest"]["dp"]["why"]


def test_report_section_draws_the_curve_and_names_the_fix():
    from molleak.report.defences import defences_section

    res = _results()
    res["summary"] = defences.summarise(res)
    html = defences_section([("curve/defences.json", res)])
    assert html.count("<svg") == 1
    assert len(re.findall(r"<tr><td>", html)) == 6  # one row per level
    assert "<b>eps=10</b>" in html and "<b>noise=1</b>" in html
    assert "n=3" in html  # fewer than 5 seeds: range and n, no interval
    assert defences_section([]).startswith('<p class="missing">')


def test_the_report_reads_the_plans_file():
    assert DEFENCES_FILE == defences.RESULTS_FILE


@pytest.mark.parametrize("kwargs", [{"canaries": 4}, {"victim_seeds": ()}, {"epsilons": (None, -1.0)},
                                    {"noise_scales": (0.0,)}, {"strategy": "graphcl"}])
def test_bad_plans_are_refused(kwargs):
    from molleak.errors import MolleakError

    with pytest.raises(MolleakError):
        defences.DefencePlan(**kwargs)
