"""Shadow-model membership scores: LiRA (online, offline) and RMIA, from per-molecule statistics.

The attacker trains shadow models with the victim's recipe and seeds of its own, each on a known
random subset of a population, and measures one statistic per (model, molecule) (a white-box
pretext loss on the `-log` scale, or a black-box embedding statistic from
`molleak.attack.membership`). What the attacker knows is in the arguments: the victim's statistic,
the shadows' statistics and which shadow trained on which molecule (the attacker chose that). No
function here sees which molecules the victim trained on.

- LiRA online (Carlini et al., S&P 2022): per molecule, a Gaussian of the statistic over the
  shadows that trained on it (IN) and one over those that did not (OUT); the score is the log
  likelihood ratio of the victim's value.
- LiRA offline: the OUT Gaussian only; the score is how far the victim's value sits above it (the
  one-sided Gaussian CDF, on the log scale so that tails stay ordered).
- RMIA (Zarifzadeh et al., ICML 2024): the victim's likelihood ratio Pr(x|victim)/Pr(x) against the
  same ratio for population molecules z that no model trained on; the score is the fraction of z
  the molecule beats. The statistic is read as a log-likelihood and Pr(x) is its mean likelihood
  over shadows (online: all; offline: OUT only). The paper's offline correction
  Pr(x) = ((1 + a) Pr_OUT(x) + 1 - a) / 2 assumes likelihoods in [0, 1] (softmax probabilities);
  molleak's statistics (-log loss, embedding norms) are not, so offline uses the OUT mean as is
  (the paper's a = 1).

With few shadows per molecule a per-molecule variance is noisy; `global_variance=True` (LiRA's
advice below 64 shadows) pools the variance over molecules and keeps per-molecule means.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, logsumexp

from molleak.errors import MolleakError

#: the smallest standard deviation a Gaussian may get (a statistic constant over shadows)
MIN_STD = 1e-6

ATTACKS = ("lira_online", "lira_offline", "rmia_online", "rmia_offline")


def _check(target: np.ndarray, shadow: np.ndarray, shadow_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    target = np.asarray(target, dtype=np.float64)
    shadow = np.asarray(shadow, dtype=np.float64)
    shadow_in = np.asarray(shadow_in, dtype=bool)
    if target.ndim != 1 or shadow.ndim != 2 or shadow.shape[1] != target.shape[0] or shadow_in.shape != shadow.shape:
        raise MolleakError(f"shadow statistics must be [shadows, molecules] matching the target's {target.shape}, "
                           f"got {shadow.shape} and membership {shadow_in.shape}")
    if shadow.shape[0] < 2:
        raise MolleakError(f"shadow-model scores need at least 2 shadows, got {shadow.shape[0]}")
    return target, shadow, shadow_in


def _gaussian(values: np.ndarray, mask: np.ndarray, global_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-molecule mean and std of `values` [k, n] over the shadows where `mask` [k, n] is true."""
    count = mask.sum(axis=0)
    if (count == 0).any():
        raise MolleakError(f"{int((count == 0).sum())} molecules have no shadow on this side (IN or OUT); "
                           "train more shadows")
    mean = np.where(mask, values, 0.0).sum(axis=0) / count
    resid = np.where(mask, values - mean, 0.0)
    if global_variance:
        dof = max(int(count.sum() - count.size), 1)
        std = np.full(mean.shape, np.sqrt((resid**2).sum() / dof))
    else:
        std = np.sqrt((resid**2).sum(axis=0) / np.maximum(count - 1, 1))
    return mean, np.maximum(std, MIN_STD)


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std)


def lira_online(target, shadow, shadow_in, *, global_variance: bool = True) -> np.ndarray:
    """log N(t; mu_in, s_in) - log N(t; mu_out, s_out) per molecule: higher = member."""
    t, s, m = _check(target, shadow, shadow_in)
    mu_in, sd_in = _gaussian(s, m, global_variance)
    mu_out, sd_out = _gaussian(s, ~m, global_variance)
    return _log_normal_pdf(t, mu_in, sd_in) - _log_normal_pdf(t, mu_out, sd_out)


def lira_offline(target, shadow, shadow_in, *, global_variance: bool = True) -> np.ndarray:
    """log Pr[Z < t] for Z ~ N(mu_out, s_out) per molecule: higher = further above the OUT shadows."""
    t, s, m = _check(target, shadow, shadow_in)
    mu_out, sd_out = _gaussian(s, ~m, global_variance)
    return log_ndtr((t - mu_out) / sd_out)


def _log_marginal(shadow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log Pr(x) over shadows: the mean likelihood over the shadows in `mask` (log-sum-exp)."""
    count = mask.sum(axis=0)
    if (count == 0).any():
        raise MolleakError("RMIA: some molecules have no shadow to average over; train more shadows")
    return logsumexp(np.where(mask, shadow, -np.inf), axis=0) - np.log(count)


def rmia(target, shadow, shadow_in, population_target, population_shadow, *, online: bool = True,
         gamma: float = 1.0) -> np.ndarray:
    """Fraction of population molecules z with ratio(x) / ratio(z) > gamma, ratio = Pr(.|victim) / Pr(.).

    Args:
        target, shadow, shadow_in: as for LiRA; statistics are log-likelihoods (higher = more likely).
        population_target: the victim's statistic on population molecules no model trained on [z].
        population_shadow: the shadows' statistics on them [k, z].
        online: average Pr(x) over all shadows; else over OUT shadows with the offline correction.
    """
    t, s, m = _check(target, shadow, shadow_in)
    zt = np.asarray(population_target, dtype=np.float64)
    zs = np.asarray(population_shadow, dtype=np.float64)
    if zt.ndim != 1 or zs.shape != (s.shape[0], zt.shape[0]) or zt.size == 0:
        raise MolleakError(f"RMIA population statistics must be [z] and [shadows, z], got {zt.shape} and {zs.shape}")
    x_mask = np.ones_like(m) if online else ~m
    log_ratio_x = t - _log_marginal(s, x_mask)
    # no shadow trained on a population molecule: all of them are its OUT shadows
    log_ratio_z = zt - _log_marginal(zs, np.ones_like(zs, dtype=bool))
    threshold = np.sort(log_ratio_z)
    # ratio(x)/ratio(z) > gamma  <=>  log_ratio_z < log_ratio_x - log(gamma)
    return np.searchsorted(threshold, log_ratio_x - np.log(gamma), side="left") / threshold.size


def score(attack: str, target, shadow, shadow_in, population_target=None, population_shadow=None,
          *, global_variance: bool = True) -> np.ndarray:
    """The membership score of `attack` (one of ATTACKS), higher = member."""
    if attack == "lira_online":
        return lira_online(target, shadow, shadow_in, global_variance=global_variance)
    if attack == "lira_offline":
        return lira_offline(target, shadow, shadow_in, global_variance=global_variance)
    if attack in ("rmia_online", "rmia_offline"):
        if population_target is None or population_shadow is None:
            raise MolleakError(f"{attack} needs population statistics")
        return rmia(target, shadow, shadow_in, population_target, population_shadow, online=attack == "rmia_online")
    raise MolleakError(f"unknown shadow attack {attack!r}; choose from {', '.join(ATTACKS)}")


def balanced_inclusion(n_shadows: int, n_molecules: int, seed: int) -> np.ndarray:
    """Which shadow trains on which molecule [shadows, molecules]: each molecule IN exactly half the shadows.

    Balanced per molecule (rather than a coin per pair) so every molecule has both IN and OUT
    shadows to fit, even with few shadows.
    """
    if n_shadows < 2 or n_shadows % 2:
        raise MolleakError(f"shadow-model membership needs an even number (>= 2) of shadows, got {n_shadows}")
    rng = np.random.default_rng(seed)
    inc = np.zeros((n_shadows, n_molecules), dtype=bool)
    for j in range(n_molecules):
        inc[rng.permutation(n_shadows)[: n_shadows // 2], j] = True
    return inc
