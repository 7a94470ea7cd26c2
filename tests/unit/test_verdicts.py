"""Verdict sentences state what was tested and the test's power; they never claim absence."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from molleak.errors import MolleakError
from molleak.evaluate.attribution import Estimate
from molleak.evaluate.verdicts import NO_POWER, extraction_verdict, membership_verdict, power_sentence

ROOT = Path(__file__).resolve().parents[2]
#: phrases that claim absence (a non-significant test of unknown power shows none of them)
ABSENCE = re.compile(r"no leakage|no signal|no membership|no private-specific|not the private set|"
                     r"reflects the data distribution|absence of leakage", re.IGNORECASE)


def _row(auc, lo, hi, p=None, n=50):
    row = {"auc": Estimate(auc, lo, hi), "n_members": n, "n_nonmembers": n}
    if p is not None:
        row["p_value"] = p
    return row


def test_a_detection_names_the_test_the_statistic_and_the_holm_adjusted_p():
    text = membership_verdict(_row(0.71, 0.60, 0.81, p=0.0004), _row(0.49, 0.38, 0.60), p_adjusted=0.0024,
                              family_size=6)
    assert text == ("whole-molecule membership, 50 members vs 50 non-members (one-sided Mann-Whitney test of "
                    "AUC > 0.5): victim AUC 0.710 [0.600, 0.810]; reference (null) AUC 0.490 [0.380, 0.600]; "
                    "detected (one-sided p=0.0024, Holm-adjusted over 6 cells; raw p=0.0004).")


def test_holm_decides_a_grid_cell_not_its_raw_p():
    # raw p 0.02 would be detected alone; adjusted over 12 cells it is 0.24: not detected
    text = membership_verdict(_row(0.62, 0.51, 0.73, p=0.02), p_adjusted=0.24, family_size=12)
    assert "; not detected (one-sided p=0.24, Holm-adjusted over 12 cells; raw p=0.02); " in text
    assert membership_verdict(_row(0.62, 0.51, 0.73, p=0.02)).count("; detected (one-sided p=0.02)") == 1


def test_a_non_detection_states_the_power_or_that_it_is_unmeasured():
    row = _row(0.52, 0.41, 0.63, p=0.37)
    assert membership_verdict(row).endswith(f"; not detected (one-sided p=0.37); {NO_POWER}.")
    power = {"r": 4, "tpr_at_1pct_fpr": 0.3, "source": "canary ladder, GraphCL 3x128, 3 seeds"}
    assert membership_verdict(row, power=power).endswith(
        "; not detected (one-sided p=0.37); this test's power is a detection rate of 0.30 at 1% FPR for a "
        "molecule seen 4 times (canary ladder, GraphCL 3x128, 3 seeds).")
    assert power_sentence({"tpr_at_1pct_fpr": 0.05}) == "this test's power is a detection rate of 0.05 at 1% FPR"
    for bad in ({"r": 4}, {"tpr_at_1pct_fpr": 1.5}, {"tpr_at_1pct_fpr": "high"}):
        with pytest.raises(MolleakError, match="tpr_at_1pct_fpr"):
            membership_verdict(row, power=bad)


def test_rows_without_a_p_value_are_decided_by_their_interval():
    assert "; detected (no p-value recorded; decided by the 95% interval)" in membership_verdict(_row(0.7, 0.6, 0.8))
    assert "; not detected (no p-value recorded" in membership_verdict(_row(0.55, 0.45, 0.65))


def test_extraction_verdict_states_the_difference_and_power():
    diff = {"difference": Estimate(0.01, -0.03, 0.05), "p_value": 0.31, "n_private_only": 40,
            "n_reference_only": 35, "significant": False}
    text = extraction_verdict(diff)
    assert text.startswith("private-only test, 40 P-only vs 35 P'-only candidates (")
    assert text.endswith(f"AUC difference +0.010 [-0.030, +0.050]; not detected (one-sided p=0.31); {NO_POWER}; "
                         "at this sample size the test detects an AUC difference of +0.067 or more with "
                         "probability 0.95 (one-sided 5% level).")  # SE = 0.08 / 3.92; 3.29 SE
    json_form = {**diff, "difference": {"value": 0.2, "lo": 0.1, "hi": 0.3}, "p_value": 0.001}
    assert extraction_verdict(json_form).endswith("; detected (one-sided p=0.001).")
    undefined = {**diff, "difference": Estimate(float("nan"), float("nan"), float("nan"))}
    assert "undefined" in extraction_verdict(undefined) and "detected" not in extraction_verdict(undefined)


def test_no_verdict_claims_absence():
    rows = [_row(a, a - 0.1, a + 0.1, p=p) for a, p in ((0.5, 0.5), (0.45, 0.9), (0.8, 1e-6))]
    texts = [membership_verdict(r, r) for r in rows]
    texts += [extraction_verdict({"difference": Estimate(d, d - 0.05, d + 0.05), "p_value": p, "n_private_only": 3,
                                  "n_reference_only": 4, "significant": False}) for d, p in ((0.0, 0.5), (-0.1, 1.0))]
    assert not [t for t in texts if ABSENCE.search(t)]


def test_the_code_and_the_docs_state_no_absence_as_a_verdict():
    """The sentences found in review ("no membership signal", "the ranking reflects the data distribution,
    not the private set", "no leakage detected" as a finding) are gone from molleak/, README and BENCHMARKS."""
    found = []
    for path in [*sorted((ROOT / "molleak").rglob("*.py")), ROOT / "README.md", ROOT / "BENCHMARKS.md"]:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("#") and path.suffix == ".py":
                continue  # a comment may quote an old sentence (e.g. to parse results written with it)
            if re.search(r"no membership signal|reflects the data distribution|no private-specific (leakage|signal)"
                         r"|\"no leakage detected\"|no leakage detected\b", line, re.IGNORECASE):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()}")
    assert not found, "\n".join(found)


def test_minimum_detectable_difference_from_the_interval():
    from molleak.evaluate.verdicts import minimum_detectable_difference

    # SE 0.05 (interval +-1.96 SE): (1.645 + 1.645) * 0.05 = 0.1645
    assert minimum_detectable_difference(-0.098, 0.098) == pytest.approx(0.1645, abs=1e-3)
    assert math.isnan(minimum_detectable_difference(float("nan"), 0.1))
