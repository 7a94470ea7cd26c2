"""Ranking metrics: precision@K with Wilson intervals, ROC-AUC and TPR at a fixed FPR; the tests behind them.

Every function takes plain arrays so that other analyses (the reference set P', canaries) get the
same numbers from their own labels: `pool_metrics(scores, labels, k_list, seed)`.

- `auc_p_value`: the one-sided Mann-Whitney U test that positives score higher than negatives (the
  test of an AUC against 0.5; valid whenever positives and negatives are exchangeable under the null,
  e.g. canaries and non-members drawn at random from one set);
- `holm_adjust`: Holm's step-down adjustment of a family of p-values (the cells of a grid).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from molleak import rundir
from molleak.ranking import rank_order, roc_auc

K_LIST = rundir.K_LIST
FPR_LEVELS = rundir.FPR_LEVELS


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def precision_at_k(ranked_labels: np.ndarray, k: int) -> tuple[float, int, int]:
    """(precision, hits, n) over the first min(k, len) ranked labels; n is how many were ranked."""
    top = np.asarray(ranked_labels[:k], dtype=bool)
    n = len(top)
    hits = int(top.sum())
    return (hits / n if n else float("nan")), hits, n


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The highest TPR over thresholds whose FPR is at most `fpr` (finite scores only).

    Thresholds are the distinct score values (a tie is never split), as in LiRA's reporting.
    NaN when one class is missing.

    The same value as the best TPR over `sklearn.metrics.roc_curve` thresholds with FPR <= `fpr`,
    without building the curve (the bootstraps call this thousands of times): at most
    k = floor(fpr * n_neg) non-members may score at or above the threshold, so the lowest allowed
    threshold lies just above the (k+1)-th highest non-member score v, and the TPR is the share of
    members scoring above v (1 when k >= n_neg).
    """
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    labels, scores = labels[ok], scores[ok]
    if labels.all() or not labels.any():
        return float("nan")
    pos, neg = scores[labels], scores[~labels]
    k = int(np.floor((fpr + 1e-12) * neg.size))
    if k >= neg.size:
        return 1.0
    v = np.partition(neg, neg.size - 1 - k)[neg.size - 1 - k]  # the (k+1)-th highest non-member score
    return float(np.mean(pos > v))


def pool_metrics(scores: np.ndarray, labels: Mapping[str, np.ndarray], k_list: Sequence[int] = K_LIST,
                 seed: int = 0) -> dict[str, Any]:
    """Precision@K (with 95% Wilson intervals), base rates, AUC and TPR@FPR of one scoring.

    Args:
        scores: per molecule, its score (NaN = not scored: left out of every metric).
        labels: ground truth per molecule by kind, e.g. {"substructure": ..., "exact": ...}. AUC
            and TPR are reported for every kind; the unsuffixed `auc` / `tpr@...` keys are those of
            the first kind (the paper's substructure hit).
        k_list: the K of precision@K.
        seed: the run's seed (ties broken with it, exactly as the run ranked them).

    Returns:
        Flat keys such as `precision_substructure@50`, `precision_substructure@50_ci95`,
        `base_rate_exact`, `auc`, `auc_exact`, `tpr@1%fpr`, `n_scored`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = rank_order(scores, seed)
    scored = np.isfinite(scores)
    out: dict[str, Any] = {"n_pool": int(len(scores)), "n_scored": int(scored.sum())}
    for i, (kind, lab) in enumerate(labels.items()):
        lab = np.asarray(lab, dtype=bool)
        if len(lab) != len(scores):
            raise ValueError(f"{kind} labels have {len(lab)} entries for {len(scores)} scores")
        ranked = lab[order]
        for k in k_list:
            p, hits, n = precision_at_k(ranked, k)
            out[rundir.precision_key(kind, k)] = p
            out[rundir.precision_key(kind, k) + rundir.CI_SUFFIX] = list(wilson_interval(hits, n))
            out[rundir.hits_key(kind, k)] = hits
            if n < k:
                out[f"n_ranked@{k}"] = n
        out[rundir.base_rate_key(kind)] = float(lab[scored].mean()) if scored.any() else float("nan")
        out[rundir.positives_key(kind)] = int(lab[scored].sum())
        suffix = "" if i == 0 else f"_{kind}"
        out[f"auc{suffix}"] = roc_auc(lab, scores)
        for name, level in FPR_LEVELS.items():
            out[f"tpr@{name}fpr{suffix}"] = tpr_at_fpr(lab, scores, level)
    return out


def auc_p_value(positive: Sequence[float], negative: Sequence[float]) -> float:
    """One-sided p of the Mann-Whitney U test that `positive` scores are higher than `negative` ones.

    U / (n_pos * n_neg) is the AUC (ties counted half), so this is the test of AUC > 0.5:
    `scipy.stats.mannwhitneyu(..., alternative="greater")` (exact when a sample has at most 8 values
    and there are no ties, else the normal approximation with tie and continuity correction). Non-finite scores are left out; NaN when a
    side has none left.
    """
    from scipy.stats import mannwhitneyu

    pos, neg = np.asarray(positive, dtype=np.float64), np.asarray(negative, dtype=np.float64)
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    if np.ptp(np.r_[pos, neg]) == 0:  # every score tied: U is exactly its null mean
        return 1.0
    return float(mannwhitneyu(pos, neg, alternative="greater").pvalue)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (Holm 1979), in the input order.

    With the m finite p-values sorted, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max over j <= i of min(1, (m - j + 1) * p_(j)). A hypothesis is rejected at family-wise level
    alpha exactly when its adjusted p is at most alpha (the step-down procedure: reject H_(1), H_(2),
    ... while p_(j) <= alpha / (m - j + 1)). NaN entries (a test undefined in that cell) stay NaN
    and are not counted in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"holm_adjust takes a 1-D list of p-values, got shape {p.shape}")
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[(p < 0) | (p > 1)].tolist()}")
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
        out[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in out]
