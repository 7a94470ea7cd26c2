"""The one-run empirical epsilon lower bound (molleak.evaluate.dp_audit, Steinke et al. 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from molleak.errors import MolleakError
from molleak.evaluate import dp_audit


def test_all_guesses_right_without_delta_matches_the_closed_form():
    # with delta = 0 the p-value is P[Binomial(r, q) >= r] = q**r, so the bound is logit(beta**(1/r))
    for r in (4, 10, 40):
        q = 0.05 ** (1 / r)
        expected = max(0.0, math.log(q / (1 - q)))  # 4 right guesses are no evidence at 95%
        assert dp_audit.epsilon_lower_bound(100, r, r, 0.0, 0.05) == pytest.approx(expected, abs=1e-4)


def test_p_value_is_the_binomial_tail_plus_a_delta_term():
    m, r, v, eps = 200, 40, 30, 0.5
    q = 1 / (1 + math.exp(-eps))
    assert dp_audit.p_value(m, r, v, eps, 0.0) == pytest.approx(stats.binom.sf(v - 1, r, q))
    assert dp_audit.p_value(m, r, v, eps, 1e-3) > dp_audit.p_value(m, r, v, eps, 0.0)
    ps = [dp_audit.p_value(m, r, v, e, 1e-5) for e in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert ps == sorted(ps)  # a larger epsilon explains more correct guesses


def test_chance_guesses_give_no_bound():
    assert dp_audit.epsilon_lower_bound(100, 20, 10, 1e-5) == 0.0
    assert dp_audit.epsilon_lower_bound(100, 0, 0, 1e-5) == 0.0


def _randomized_response(eps: float, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scores of an eps-DP mechanism per canary: the IN/OUT bit flipped with probability 1/(1+e^eps)."""
    included = rng.random(m) < 0.5
    keep = rng.random(m) < 1 / (1 + math.exp(-eps))
    reported = np.where(keep, included, ~included)
    return reported + 0.01 * rng.random(m), included  # ties broken at random


def test_the_bound_exceeds_the_true_epsilon_at_most_beta_of_the_time():
    # an exactly eps-DP mechanism: the audit may claim more than eps in at most 5% of runs (its guarantee)
    rng = np.random.default_rng(0)
    eps, runs = 1.0, 200
    over = sum(dp_audit.audit(*_randomized_response(eps, 400, rng), delta=0.0)["epsilon_lower_bound"] > eps
               for _ in range(runs))
    assert over <= stats.binom.ppf(0.999, runs, 0.05)


def test_a_leaky_mechanism_is_caught():
    # eps = 4 randomized response: about 98% of guesses right; 200 guesses put the bound near 3
    rng = np.random.default_rng(1)
    res = dp_audit.audit(*_randomized_response(4.0, 1000, rng), delta=1e-5, fractions=(0.1,))
    assert res["epsilon_lower_bound"] > 2.0


def test_guess_counts_top_in_and_bottom_out():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.0])
    included = np.array([True, False, True, False, True, False])
    assert dp_audit.guess(scores, included, 1) == (2, 2)  # 5.0 is IN, 0.0 is OUT
    assert dp_audit.guess(scores, included, 2) == (4, 2)  # 4.0 guessed IN (wrong), 1.0 guessed OUT (wrong)


def test_bonferroni_across_guess_counts():
    rng = np.random.default_rng(2)
    scores, included = _randomized_response(3.0, 400, rng)
    one = dp_audit.audit(scores, included, 1e-5, fractions=(0.1,))
    four = dp_audit.audit(scores, included, 1e-5, fractions=(0.05, 0.1, 0.2, 0.5))
    assert four["per_k_level"] == pytest.approx(0.05 / 4)
    row = next(r for r in four["rows"] if r["k"] == 40)
    assert row["correct"] == one["rows"][0]["correct"]
    assert row["epsilon_lower_bound"] < one["epsilon_lower_bound"]  # the same guesses at a stricter level


def test_inclusion_is_seeded_and_about_half():
    a, b = dp_audit.canary_inclusion(1000, 7), dp_audit.canary_inclusion(1000, 7)
    assert (a == b).all() and 400 < a.sum() < 600
    assert not (a == dp_audit.canary_inclusion(1000, 8)).all()


@pytest.mark.parametrize("call", [
    lambda: dp_audit.p_value(10, 5, 6, 1.0, 0.0),
    lambda: dp_audit.p_value(10, 5, 3, -1.0, 0.0),
    lambda: dp_audit.epsilon_lower_bound(10, 5, 3, 0.0, beta=1.5),
    lambda: dp_audit.guess(np.array([1.0, np.nan]), np.array([True, False]), 1),
    lambda: dp_audit.guess(np.array([1.0, 2.0]), np.array([True, False]), 2),
    lambda: dp_audit.audit([1.0], [True], 1e-5),
])
def test_bad_input_is_refused(call):
    with pytest.raises(MolleakError):
        call()
