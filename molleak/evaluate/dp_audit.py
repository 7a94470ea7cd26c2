"""An empirical lower bound on a DP victim's epsilon from one training run (Steinke, Nasr, Jagielski 2023).

The owner plants m canaries, each included in the training set independently with probability 1/2,
trains once, and then guesses each canary's inclusion from a score (higher = more member-like): IN
for the k highest, OUT for the k lowest, no guess for the rest. If training is (epsilon, delta)-DP,
the number of correct guesses v out of r = 2k is stochastically dominated by a Binomial(r, q) with
q = e^epsilon / (1 + e^epsilon), up to a delta term (Steinke et al. 2023, Theorem 5.2, via the
p-value below). The largest epsilon that the observed v rejects at confidence 1 - beta is a lower
bound on the epsilon the training really has: if it exceeds the accountant's epsilon, the
implementation does not do what its accounting says (a wrong noise scale, clipping that does not
bound a molecule's gradient, a molecule counted twice).

The bound is conservative by construction: a weak attack gives a bound near 0, which proves nothing
about the guarantee; only a bound above the claimed epsilon is informative (a violation). Several
guess counts k are tried and each is tested at beta / len(ks) (Bonferroni), so trying them does not
inflate the confidence.

This is the owner's evaluation: it knows which canaries were included and the victim's initial
weights (the score is the drop of a canary's pretext loss from the initial weights to the trained
ones, which removes each molecule's intrinsic difficulty at no shadow-model cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from molleak.errors import MolleakError

#: guess counts tried, as fractions of the canaries guessed on each side (Bonferroni across them)
DEFAULT_GUESS_FRACTIONS = (0.05, 0.1, 0.2, 0.5)


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[at least v of r guesses correct] under (epsilon, delta)-DP with m canaries (Steinke et al. 2023).

    The epsilon-DP part is the Binomial(r, q) tail; delta adds at most 2 m delta times the largest
    average probability mass of the i values just below v (their Theorem 5.2 made computable).
    """
    if not (0 <= v <= r <= m):
        raise MolleakError(f"DP audit: need 0 <= correct ({v}) <= guesses ({r}) <= canaries ({m})")
    if epsilon < 0 or not (0 <= delta <= 1):
        raise MolleakError(f"DP audit: epsilon must be >= 0 and delta in [0, 1], got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))
    tail = float(stats.binom.sf(v - 1, r, q))
    if delta == 0 or v == 0:
        return min(1.0, tail)
    # alpha = max over i = 1..v of P[v - i <= Binomial(r, q) < v] / i
    below = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(1.0, tail + alpha * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, beta: float = 0.05, tol: float = 1e-6) -> float:
    """The largest epsilon rejected at level beta by v correct of r guesses (0 when none is)."""
    if not 0 < beta < 1:
        raise MolleakError(f"DP audit: beta must be in (0, 1), got {beta}")
    if r == 0 or p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < beta:  # p rises with epsilon; find a bracket
        lo, hi = hi, hi * 2
        if hi > 1e4:
            return math.inf  # only with delta = 0 and every guess right: no finite epsilon explains it
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if p_value(m, r, v, mid, delta) < beta:
            lo = mid
        else:
            hi = mid
    return lo


def guess(scores: np.ndarray, included: np.ndarray, k: int) -> tuple[int, int]:
    """Guess IN for the k highest scores and OUT for the k lowest; (guesses, correct).

    Ties at the cut are broken by canary order (a fixed rule, independent of the inclusion).
    """
    scores, included = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    if scores.shape != included.shape or scores.ndim != 1:
        raise MolleakError("DP audit: one score and one inclusion flag per canary")
    if not np.isfinite(scores).all():
        raise MolleakError("DP audit: every canary needs a finite score")
    m = scores.size
    if not 1 <= k <= m // 2:
        raise MolleakError(f"DP audit: guesses per side must be from 1 to {m // 2}, got {k}")
    order = np.argsort(-scores, kind="stable")
    top, bottom = order[:k], order[m - k:]
    return 2 * k, int(included[top].sum() + (~included[bottom]).sum())


def audit(scores: Sequence[float], included: Sequence[bool], delta: float, *, beta: float = 0.05,
          fractions: Sequence[float] = DEFAULT_GUESS_FRACTIONS) -> dict[str, Any]:
    """The one-run epsilon lower bound from canary scores: the best over guess counts, Bonferroni-corrected.

    Returns {"epsilon_lower_bound", "confidence", "m", "rows": [{"k", "guesses", "correct",
    "epsilon_lower_bound"}], "best_k"}.
    """
    s, inc = np.asarray(scores, dtype=np.float64), np.asarray(included, dtype=bool)
    m = s.size
    ks = sorted({max(1, min(m // 2, int(round(f * m)))) for f in fractions})
    if m < 2:
        raise MolleakError("DP audit: needs at least two canaries")
    level = beta / len(ks)
    rows = []
    for k in ks:
        r, v = guess(s, inc, k)
        rows.append({"k": k, "guesses": r, "correct": v, "epsilon_lower_bound": epsilon_lower_bound(m, r, v, delta, level)})
    best = max(rows, key=lambda row: row["epsilon_lower_bound"])
    return {"epsilon_lower_bound": best["epsilon_lower_bound"], "best_k": best["k"], "confidence": 1 - beta,
            "per_k_level": level, "m": m, "n_included": int(inc.sum()), "delta": delta, "rows": rows}


def canary_inclusion(m: int, seed: int) -> np.ndarray:
    """Each canary IN independently with probability 1/2 (the design the theorem needs), from the audit seed."""
    return np.random.default_rng([int(seed), 0x57E1]).random(m) < 0.5


def loss_drop_scores(victim: str, canaries: list[str], *, draws: int = 4, seed: int = 0) -> np.ndarray:
    """Per canary: its white-box statistic (-log pretext loss) under the trained victim minus under
    the victim's initial weights (rebuilt from its recipe's seed), on the same fixed draws."""
    import torch

    from molleak.pretrain.trainer import build_strategy
    from molleak.pretrain.whitebox import load_strategy, loss_statistic, per_molecule_losses
    from molleak.victims.build import recipe_of

    trained = load_strategy(victim)
    recipe = recipe_of(victim, "the DP audit")
    torch.manual_seed(recipe.seed)  # as `pretrain` does before building the strategy
    initial = build_strategy(recipe)
    after = loss_statistic(per_molecule_losses(trained, canaries, draws=draws, seed=seed))
    before = loss_statistic(per_molecule_losses(initial, canaries, draws=draws, seed=seed))
    return after - before
