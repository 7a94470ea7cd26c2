"""Attribution metrics on constructed cases where the right answer is known."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from molleak.errors import MolleakError
from molleak.evaluate.attribution import (
    Estimate,
    attribution_report,
    auc_estimate,
    membership_metrics,
    precision_at_k,
    private_only_auc,
    private_only_difference,
    to_jsonable,
    tpr_at_fpr,
)
from molleak.evaluate.metrics import wilson_interval
from molleak.ranking import roc_auc


def _labels(n: int = 2000, seed: int = 1):
    """Candidates whose P and P' hits share a common, distribution-driven part (as on MOSES)."""
    rng = np.random.default_rng(seed)
    commonness = rng.random(n)  # how common a fragment is in the distribution
    hits_p = rng.random(n) < 0.2 + 0.6 * commonness
    hits_r = rng.random(n) < 0.2 + 0.6 * commonness
    return rng, commonness, hits_p, hits_r


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, size=300).astype(float)
    y = rng.random(300) < 0.4
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(roc_auc(np.zeros(300, bool), s))


def test_auc_estimate_interval_contains_value():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.5
    s = y + rng.normal(size=500)
    est = auc_estimate(s, y, n_boot=200)
    assert est.lo < est.value < est.hi
    assert est.lo > 0.6


def test_precision_at_k_and_wilson():
    s = np.arange(10.0)
    y = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1], bool)
    est = precision_at_k(s, y, 4)
    assert est.value == pytest.approx(0.75)
    assert est.lo < 0.75 < est.hi
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and 0.0 < hi < 0.1
    with pytest.raises(MolleakError):
        precision_at_k(s, y, 0)


def test_precision_at_k_breaks_ties_at_random():
    s = np.zeros(1000)
    y = np.arange(1000) < 500  # the first half are hits; a stable sort would pick only them
    vals = [precision_at_k(s, y, 100, seed=k).value for k in range(5)]
    assert all(0.3 < v < 0.7 for v in vals)


def test_score_that_knows_p_is_detected():
    rng, commonness, hits_p, hits_r = _labels()
    knows_p = hits_p + 0.05 * rng.random(hits_p.size)  # ranks P hits first, regardless of P'
    reference = commonness + 0.05 * rng.random(hits_p.size)  # knows the distribution only
    po = private_only_auc(knows_p, hits_p, hits_r, n_boot=200)
    assert po.value > 0.95
    diff = private_only_difference(knows_p, reference, hits_p, hits_r, n_boot=300)
    assert diff["significant"] is True
    assert diff["difference"].lo > 0.3
    assert diff["p_value"] == pytest.approx(1 / 301)  # no replicate at or below 0: (1 + 0) / (1 + n_boot)
    assert diff["reference"].covers(0.5)
    verdict = attribution_report(knows_p, reference, hits_p, hits_r, ks=(50,), n_boot=300)["verdict"]
    assert "; detected (one-sided p=0.00332)" in verdict and "difference +" in verdict


def test_score_that_knows_the_distribution_is_not_detected():
    rng, commonness, hits_p, hits_r = _labels()
    victim = commonness + 0.1 * rng.normal(size=hits_p.size)
    reference = commonness + 0.1 * rng.normal(size=hits_p.size)
    # the distribution-only score still ranks P hits well: the paper's metric would call it leakage
    assert auc_estimate(victim, hits_p, n_boot=100).value > 0.65
    diff = private_only_difference(victim, reference, hits_p, hits_r, n_boot=300)
    assert diff["difference"].covers(0.0)
    assert diff["victim"].covers(0.5)
    assert diff["significant"] is False
    report = attribution_report(victim, reference, hits_p, hits_r, ks=(50,), n_boot=100)
    assert report["verdict"].startswith("private-only test, ")
    assert "; not detected (one-sided p=" in report["verdict"]
    assert "power not measured for this recipe: a non-detection says little" in report["verdict"]
    assert re.search(r"detects an AUC difference of \+0\.\d{3} or more with probability 0\.95", report["verdict"])
    # the victim ranks P' hits as well as P hits: the control the paper lacked
    assert abs(report["victim"]["private"]["auc"].value - report["victim"]["reference"]["auc"].value) < 0.05
    to_jsonable(report)  # JSON-ready


def test_private_only_difference_undefined_without_disjoint_hits():
    hits = np.array([True, False, True, False])
    diff = private_only_difference(np.arange(4.0), np.arange(4.0), hits, hits, n_boot=10)
    assert diff["n_private_only"] == 0 and diff["significant"] is False
    assert np.isnan(diff["difference"].value)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(MolleakError, match="private-only"):
        private_only_difference(np.zeros(3), np.zeros(4), [True] * 3, [False] * 3)
    with pytest.raises(MolleakError, match="equal length"):
        auc_estimate(np.zeros(3), [True, False])


def test_tpr_at_fpr_exact_thresholds():
    neg = np.arange(100.0)  # 0..99
    pos = np.array([98.5, 99.5, 200.0, 50.0])
    # at 1% FPR one non-member (99) may score above the threshold: threshold 98
    assert tpr_at_fpr(pos, neg, 0.01) == pytest.approx(0.75)
    # at 0.1% FPR with 100 non-members: threshold above every non-member
    assert tpr_at_fpr(pos, neg, 0.001) == pytest.approx(0.5)


def test_membership_metrics_separated_and_null():
    rng = np.random.default_rng(0)
    sep = membership_metrics(rng.normal(3, 1, 300), rng.normal(0, 1, 1000), n_boot=200)
    assert sep["auc"].lo > 0.9 and sep["p_value"] < 1e-50
    assert sep["tpr_at_fpr"][0.01].value > 0.3
    null_rng = np.random.default_rng(2)
    null = membership_metrics(null_rng.normal(0, 1, 300), null_rng.normal(0, 1, 1000), n_boot=200)
    assert abs(null["auc"].value - 0.5) < 0.05 and null["auc"].covers(0.5) and null["p_value"] > 0.05
    assert null["tpr_at_fpr"][0.01].value < 0.06
    with pytest.raises(MolleakError):
        membership_metrics([np.nan], [0.0])


def test_estimate_format():
    assert f"{Estimate(0.5, 0.25, 0.75):.2f}" == "0.50 [0.25, 0.75]"
