"""Ranking metrics: precision@K with Wilson intervals, ROC-AUC and TPR at a fixed FPR.

Every function takes plain arrays so that other analyses (the reference set P', canaries) get the
same numbers from their own labels: `pool_metrics(scores, labels, k_list, seed)`.
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
    """
    from sklearn.metrics import roc_curve

    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    ok = np.isfinite(scores)
    labels, scores = labels[ok], scores[ok]
    if labels.all() or not labels.any():
        return float("nan")
    fprs, tprs, _ = roc_curve(labels, scores, drop_intermediate=False)
    allowed = fprs <= fpr + 1e-12
    return float(tprs[allowed].max())


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
