"""Metrics on hand-computed cases: precision@K, Wilson intervals, AUC, TPR at fixed FPR, FCD, the Mann-Whitney
p of an AUC and Holm's adjustment (a worked example and the step-down procedure written out)."""

from __future__ import annotations

import numpy as np
import pytest

from molleak.evaluate.metrics import (
    auc_p_value,
    holm_adjust,
    pool_metrics,
    precision_at_k,
    tpr_at_fpr,
    wilson_interval,
)
from molleak.ranking import roc_auc


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert np.isnan(wilson_interval(0, 0)[0])


def test_precision_at_k_hand_case():
    ranked = np.array([1, 1, 0, 1, 0, 0], dtype=bool)
    assert precision_at_k(ranked, 2) == (1.0, 2, 2)
    assert precision_at_k(ranked, 4) == (0.75, 3, 4)
    assert precision_at_k(ranked, 50) == (0.5, 3, 6)  # fewer ranked than K: over what was ranked


def test_tpr_at_fixed_fpr_hand_case():
    # scores 10..1; positives at ranks 1, 2, 4; 7 negatives
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    scores = np.arange(10, 0, -1, dtype=float)
    assert tpr_at_fpr(labels, scores, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(labels, scores, 0.1) == pytest.approx(2 / 3)  # one negative = FPR 1/7 > 0.1
    assert tpr_at_fpr(labels, scores, 0.15) == pytest.approx(1.0)
    # a tie between a positive and a negative at the top is never split
    assert tpr_at_fpr(np.array([1, 0, 1, 0], bool), np.array([5.0, 5.0, 1.0, 0.0]), 0.4) == 0.0
    assert np.isnan(tpr_at_fpr(np.ones(3, bool), np.arange(3.0), 0.01))


def test_auc_matches_sklearn_with_ties_and_skips_nan():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.3
    scores = np.round(rng.normal(size=300) + labels, 1)  # many ties
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    scores_nan = scores.copy()
    scores_nan[:10] = np.nan
    assert roc_auc(labels, scores_nan) == pytest.approx(roc_auc_score(labels[10:], scores[10:]))
    assert roc_auc(np.array([1, 0], bool), np.array([2.0, 1.0])) == 1.0


def test_pool_metrics_hand_case():
    scores = np.array([0.9, 0.8, 0.7, 0.6, np.nan, 0.1])
    sub = np.array([1, 0, 1, 1, 1, 0], dtype=bool)
    exact = np.array([0, 0, 1, 0, 0, 0], dtype=bool)
    m = pool_metrics(scores, {"substructure": sub, "exact": exact}, k_list=(2, 4), seed=0)
    assert m["n_pool"] == 6 and m["n_scored"] == 5
    assert m["precision_substructure@2"] == 0.5 and m["precision_substructure@4"] == 0.75
    assert m["precision_exact@4"] == 0.25 and m["hits_exact@4"] == 1
    assert m["base_rate_substructure"] == pytest.approx(3 / 5)  # the unscored molecule is left out
    assert m["base_rate_exact"] == pytest.approx(1 / 5)
    # substructure AUC: positives 0.9, 0.7, 0.6 vs negatives 0.8, 0.1 -> 4 of 6 pairs ordered
    assert m["auc"] == pytest.approx(4 / 6)
    assert m["auc_exact"] == pytest.approx(1.0 - 2 / 4)  # 0.7 beats 0.6 and 0.1, loses to 0.9 and 0.8
    assert m["precision_substructure@2_ci95"] == pytest.approx(list(wilson_interval(1, 2)))
    assert "tpr@1%fpr" in m and "tpr@0.1%fpr_exact" in m


def test_frechet_distance_matches_the_fcd_package_formula():
    from fcd import calculate_frechet_distance

    from molleak.evaluate.fcd import frechet_distance

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(80, 12)), rng.normal(loc=0.3, size=(60, 12)) * 1.5
    args = (x.mean(0), np.cov(x.T), y.mean(0), np.cov(y.T))
    assert frechet_distance(*args) == pytest.approx(calculate_frechet_distance(*args), rel=1e-6)


def test_fcd_is_zero_against_itself_and_canonicalises(moses_sample):
    from molleak.evaluate.fcd import fcd_score

    a, b = moses_sample[:60], moses_sample[60:120]
    assert fcd_score(a, a) == pytest.approx(0.0, abs=1e-3)
    # the same molecules written differently (random atom order) give the same distance
    from rdkit import Chem

    shuffled = [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True) for s in a]
    assert shuffled != a
    assert fcd_score(shuffled, b) == pytest.approx(fcd_score(a, b), rel=1e-6)
    assert fcd_score(shuffled, a) == pytest.approx(0.0, abs=1e-3)
    assert fcd_score(a, b) > 1.0
    small_rings = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCNCC1"] * 5
    assert fcd_score(a, small_rings) > fcd_score(a, b)


def test_tpr_at_fpr_is_the_best_roc_curve_point_within_the_fpr():
    """The closed form against scikit-learn's ROC curve (every distinct score a threshold), ties included."""
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(2, 200))
        labels = rng.random(n) < 0.4
        if labels.all() or not labels.any():
            continue
        scores = (rng.integers(0, 6, n).astype(float) if trial % 2 else rng.normal(size=n) + labels)
        fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
        for level in (0.0, 0.001, 0.01, 0.1, 0.5, 1.0):
            assert tpr_at_fpr(labels, scores, level) == pytest.approx(tprs[fprs <= level + 1e-12].max(), abs=1e-12)


def test_holm_worked_example():
    # Holm (1979) as usually taught (e.g. the Wikipedia example): four hypotheses, alpha 0.05.
    # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max(0.06, 0.04) = 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # H4 and H1 are rejected at 0.05; H3 is not (0.03 > 0.05 / 2), so neither is H2, though 0.04 <= 0.05 / 1
    assert [p <= 0.05 for p in holm_adjust([0.01, 0.04, 0.03, 0.005])] == [True, False, False, True]
    assert holm_adjust([0.5]) == [0.5] and holm_adjust([]) == []
    assert holm_adjust([0.4, 0.3]) == [0.6, 0.6]  # capped by monotonicity, not above 1
    assert holm_adjust([0.9, 0.8]) == [1.0, 1.0]
    out = holm_adjust([0.01, float("nan"), 0.02])  # an undefined test is not counted in m
    assert out[0] == pytest.approx(0.02) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([0.2, 1.5])


def _step_down(p: list[float], alpha: float) -> list[bool]:
    """Holm's procedure as stated: reject H_(1), H_(2), ... while p_(j) <= alpha / (m - j + 1)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = [False] * len(p)
    for j, i in enumerate(order):
        if p[i] > alpha / (len(p) - j):
            break
        rejected[i] = True
    return rejected


def test_holm_adjusted_p_rejects_exactly_what_the_step_down_procedure_rejects():
    rng = np.random.default_rng(3)
    for _ in range(500):
        m = int(rng.integers(1, 15))
        p = (rng.random(m) ** rng.uniform(1, 6)).tolist()  # many small p-values as well as large ones
        adjusted = holm_adjust(p)
        assert all(a >= raw for a, raw in zip(adjusted, p, strict=True)) and max(adjusted) <= 1.0
        for alpha in (0.01, 0.05, 0.1):
            assert [a <= alpha for a in adjusted] == _step_down(p, alpha)


def test_auc_p_value_exact_small_case_and_direction():
    # 2 vs 2, no ties: U = 4 (every member above every non-member) has null probability 1 / C(4, 2)
    assert auc_p_value([3.0, 4.0], [1.0, 2.0]) == pytest.approx(1 / 6)
    assert auc_p_value([1.0, 2.0], [3.0, 4.0]) == pytest.approx(1.0)  # one-sided: lower scores are no evidence
    assert auc_p_value([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert np.isnan(auc_p_value([np.nan], [1.0]))


def test_auc_p_value_rejects_at_its_nominal_rate_under_the_null():
    # 400 independent nulls (members and non-members from one distribution): rejections at 0.05 are
    # Binomial(400, 0.05), mean 20, sd 4.4; [6, 36] is mean +- 3.2 sd (a false failure about 1 in 700)
    rng = np.random.default_rng(11)
    rejected = sum(auc_p_value(rng.normal(size=50), rng.normal(size=50)) <= 0.05 for _ in range(400))
    assert 6 <= rejected <= 36
