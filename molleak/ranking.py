"""Ranking rules shared by the attack (which ranks) and the evaluation (which re-ranks to score).

Neutral ground: neither side imports the other for these.
"""

from __future__ import annotations

import numpy as np


def rank_order(values: np.ndarray, seed: int) -> np.ndarray:
    """Indices of the finite values, best first; ties broken at random with `seed`.

    This is the one ranking rule: extraction writes its top-K with it and evaluation recomputes
    precision@K with it, so both see the same order.
    """
    values = np.asarray(values, dtype=np.float64)
    tiebreak = np.random.default_rng(seed).random(len(values))
    finite = np.flatnonzero(np.isfinite(values))
    order = np.lexsort((tiebreak[finite], -values[finite]))
    return finite[order]


def roc_auc(labels: np.ndarray, values: np.ndarray) -> float:
    """ROC-AUC of `values` for binary `labels` over finite values (NaN when one class is missing).

    The Mann-Whitney form with average ranks for ties (equal to scikit-learn's `roc_auc_score`),
    in NumPy because the adapter calls it at every training step.
    """
    labels, values = np.asarray(labels, dtype=bool), np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    labels, values = labels[ok], values[ok]
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties share their mean rank
    rank_sum = average_rank[inverse][labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
