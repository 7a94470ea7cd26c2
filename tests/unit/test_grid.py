"""Holm across a grid's cells and the order of the verdicts, on hand-made cell results."""

from __future__ import annotations

import math

import pytest

from molleak.evaluate.grid import holm_over_cells, lead_verdicts


def _row(p, auc=0.6):
    return {"auc": {"value": auc, "lo": auc - 0.1, "hi": auc + 0.1}, "p_value": p, "n_members": 50,
            "n_nonmembers": 50}


def _cell(p_victim, p_contrast):
    return {"canaries": {"rows": {"victim": _row(p_victim), "victim-minus-reference": _row(p_contrast),
                                  "reference": _row(0.5, 0.5)}, "n_members": 50, "n_nonmembers": 50}}


FAMILIES = {"victim-only": ("canaries", "rows", "victim"),
            "contrast": ("canaries", "rows", "victim-minus-reference"),
            "extraction": ("extraction", "victim_only")}


def test_each_family_is_adjusted_across_the_cells():
    cells = [_cell(0.01, 0.2), _cell(0.04, 0.001), _cell(0.03, float("nan")), _cell(0.005, 0.3)]
    summary = holm_over_cells(cells, FAMILIES)
    victim = [c["canaries"]["rows"]["victim"] for c in cells]
    assert [r["p_holm"] for r in victim] == pytest.approx([0.03, 0.06, 0.06, 0.02])  # the worked example
    assert [r["survives_holm"] for r in victim] == [True, False, False, True]
    assert all(r["holm_family"] == {"name": "victim-only", "m": 4} for r in victim)
    contrast = [c["canaries"]["rows"]["victim-minus-reference"] for c in cells]
    assert contrast[1]["p_holm"] == pytest.approx(0.003) and math.isnan(contrast[2]["p_holm"])
    assert contrast[0]["holm_family"]["m"] == 3  # the undefined test is not counted
    assert summary["victim-only"]["survivors"] == 2 and summary["contrast"]["survivors"] == 1
    assert "extraction" not in summary  # no cell ran it
    assert "p_holm" not in cells[0]["canaries"]["rows"]["reference"]  # the null row is not a test of the grid


def test_the_victim_only_verdict_leads_and_uses_the_adjusted_p():
    cells = [_cell(0.02, 0.01), _cell(0.5, 0.6), _cell(0.7, 0.9)]
    holm_over_cells(cells, FAMILIES)
    audit = lead_verdicts(cells[0]["canaries"], "canaries (r=8, 10 epochs)")
    # raw p 0.02 alone would be a detection; adjusted over the 3 cells it is 0.06
    assert audit["verdict"].startswith("victim-only: canaries (r=8, 10 epochs): victim AUC 0.600")
    assert "; not detected (one-sided p=0.06, Holm-adjusted over 3 cells; raw p=0.02)" in audit["verdict"]
    assert audit["reference_contrast"].startswith("reference contrast: canaries (r=8, 10 epochs): "
                                                  "victim-minus-reference AUC")
    assert "reference (null) AUC 0.500" in audit["reference_contrast"]
    assert "; detected (one-sided p=0.03, Holm-adjusted over 3 cells" in audit["reference_contrast"]
