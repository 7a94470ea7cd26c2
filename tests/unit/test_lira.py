"""Shadow-model membership scores (LiRA online/offline, RMIA) on data drawn from their own model.

Each molecule i has a difficulty mu_i (what any model gives it) and training adds `effect` to its
statistic; noise per model is small. Thresholds below come from that design, not from runs:
calibrating per molecule removes mu_i, so the calibrated AUC approaches Phi(effect / (noise * sqrt 2))
= 0.98, while a raw threshold sees effect against the spread of mu_i (AUC about 0.58).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from molleak.attack import lira
from molleak.errors import MolleakError
from molleak.ranking import roc_auc

EFFECT, NOISE = 0.3, 0.1


def _world(n=600, k=16, seed=0, effect=EFFECT):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 1, n)
    members = rng.permutation(n) < n // 2
    inc = lira.balanced_inclusion(k, n, seed + 1)
    shadow = mu + effect * inc + rng.normal(0, NOISE, (k, n))
    target = mu + effect * members + rng.normal(0, NOISE, n)
    z_mu = rng.normal(0, 1, 300)
    z_target = z_mu + rng.normal(0, NOISE, 300)
    z_shadow = z_mu + rng.normal(0, NOISE, (k, 300))
    return target, shadow, inc, members, z_target, z_shadow


@pytest.mark.parametrize("attack", lira.ATTACKS)
def test_calibrated_attacks_beat_the_raw_threshold(attack):
    t, s, inc, members, zt, zs = _world()
    auc = roc_auc(members, lira.score(attack, t, s, inc, zt, zs))
    raw = roc_auc(members, t)
    assert raw < 0.7  # design: effect 0.3 against a unit spread of difficulty
    assert auc > 0.9  # design: effect 0.3 against noise 0.1 per model


@pytest.mark.parametrize("attack", lira.ATTACKS)
def test_no_effect_gives_chance_and_calibrated_p_values(attack):
    """Under the null (training changes nothing) the one-sided test rejects at its nominal 5%."""
    rejections = 0
    trials = 200
    for seed in range(trials):
        t, s, inc, members, zt, zs = _world(n=200, k=4, seed=seed, effect=0.0)
        score = lira.score(attack, t, s, inc, zt, zs)
        rejections += mannwhitneyu(score[members], score[~members], alternative="greater").pvalue < 0.05
    # binomial(200, 0.05): P(X >= 19) < 0.5%; a miscalibrated test (e.g. one that sees labels) far exceeds it
    assert rejections < 19


def test_balanced_inclusion_puts_every_molecule_in_half_the_shadows():
    inc = lira.balanced_inclusion(6, 50, 3)
    assert (inc.sum(axis=0) == 3).all()
    assert not np.array_equal(inc, lira.balanced_inclusion(6, 50, 4))
    with pytest.raises(MolleakError, match="even number"):
        lira.balanced_inclusion(5, 10, 0)


def test_shapes_are_checked():
    t, s, inc, *_ = _world(n=20, k=4)
    with pytest.raises(MolleakError, match="shadows, molecules"):
        lira.lira_online(t[:10], s, inc)
    with pytest.raises(MolleakError, match="unknown shadow attack"):
        lira.score("nope", t, s, inc)
    with pytest.raises(MolleakError, match="population"):
        lira.score("rmia_online", t, s, inc)
