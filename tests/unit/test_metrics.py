"""Metrics on hand-computed cases: precision@K, Wilson intervals, AUC, TPR at fixed FPR, FCD."""

from __future__ import annotations

import numpy as np
import pytest

from molleak.evaluate.metrics import pool_metrics, precision_at_k, tpr_at_fpr, wilson_interval
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
