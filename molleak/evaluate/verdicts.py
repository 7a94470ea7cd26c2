"""Verdict sentences: what was tested, what was observed, and "detected" or "not detected" with the test's power.

A test that does not reject says nothing about absence unless its power is known, so a verdict
never claims absence ("no leakage", "no signal"): it names the test, gives the observed statistic
with its interval, and either

- `detected (p=..., Holm-adjusted over N cells; raw p=...)`: the one-sided p-value (adjusted when
  the test is one cell of a grid) is at most `ALPHA`; or
- `not detected (p=...); this test's power is <power>`: `power` is a measured figure for this
  recipe, e.g. `{"r": 4, "tpr_at_1pct_fpr": 0.3, "source": "canary ladder, 3 seeds"}` (a molecule
  seen r times is caught with that probability at 1% FPR); without one the sentence says
  "power not measured for this recipe: a non-detection says little".

Decisions are one-sided at `ALPHA` = 0.05 (membership and recovery can only raise a score); the
intervals shown beside them are two-sided 95% bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from molleak.errors import MolleakError

ALPHA = 0.05
NO_POWER = "power not measured for this recipe: a non-detection says little"


def _triple(e: Any) -> tuple[float, float, float]:
    """(value, lo, hi) of an attribution Estimate or its JSON form."""
    if isinstance(e, Mapping):
        v, lo, hi = (float("nan") if e.get(k) is None else float(e[k]) for k in ("value", "lo", "hi"))
        return v, lo, hi
    return float(e.value), float(e.lo), float(e.hi)


def _interval(e: Any, sign: bool = False) -> str:
    v, lo, hi = _triple(e)
    f = "+.3f" if sign else ".3f"
    return f"{v:{f}} [{lo:{f}}, {hi:{f}}]"


def format_p(p: float) -> str:
    """A p-value in 3 significant digits (`0.0012`, `3.4e-07`, `1`)."""
    return f"{p:.3g}"


def power_sentence(power: Mapping[str, Any] | None) -> str:
    """What a non-detection is worth: the measured power of this test for this recipe, or `NO_POWER`.

    Raises:
        MolleakError: `power` lacks a numeric `tpr_at_1pct_fpr` in [0, 1].
    """
    if not power:
        return NO_POWER
    tpr = power.get("tpr_at_1pct_fpr")
    if not isinstance(tpr, int | float) or isinstance(tpr, bool) or not 0 <= tpr <= 1:
        raise MolleakError(f"power {dict(power)!r}: needs tpr_at_1pct_fpr, a detection rate in [0, 1]")
    seen = f" for a molecule seen {power['r']} times" if power.get("r") is not None else ""
    source = f" ({power['source']})" if power.get("source") else ""
    return f"this test's power is a detection rate of {tpr:.2f} at 1% FPR{seen}{source}"


def decision(p_value: float | None, *, p_adjusted: float | None = None, family_size: int | None = None,
             power: Mapping[str, Any] | None = None, alpha: float = ALPHA,
             fallback_detected: bool | None = None) -> str:
    """`detected (p=...)` or `not detected (p=...); <power>`; the p used is the adjusted one when given.

    `fallback_detected` decides when no p-value was recorded (results made before p-values were).
    """
    raw = float("nan") if p_value is None else float(p_value)
    if p_adjusted is not None and math.isfinite(float(p_adjusted)):
        used = float(p_adjusted)
        where = f" over {family_size} cells" if family_size else ""
        p_text = f"one-sided p={format_p(used)}, Holm-adjusted{where}; raw p={format_p(raw)}"
    elif math.isfinite(raw):
        used, p_text = raw, f"one-sided p={format_p(raw)}"
    else:
        used, p_text = float("nan"), "no p-value recorded; decided by the 95% interval"
    detected = used <= alpha if math.isfinite(used) else bool(fallback_detected)
    if detected:
        return f"detected ({p_text})"
    return f"not detected ({p_text}); {power_sentence(power)}"


def membership_verdict(
    victim: Mapping[str, Any],
    reference: Mapping[str, Any] | None = None,
    *,
    label: str = "victim",
    tested: str | None = None,
    power: Mapping[str, Any] | None = None,
    p_adjusted: float | None = None,
    family_size: int | None = None,
) -> str:
    """One sentence on a membership test: what was tested, the AUC with its interval, the decision.

    Args:
        victim: a `membership_metrics` row (`auc`, `p_value`, `n_members`, `n_nonmembers`).
        reference: the null row (a model that saw neither set), quoted beside it.
        label: what scored the molecules (`victim`, `victim-minus-reference`).
        tested: what was tested (default: whole-molecule membership, members vs non-members).
        power: the measured power of this test for this recipe (`power_sentence`).
        p_adjusted: the Holm-adjusted p when this test is one cell of a grid of `family_size`.
    """
    _, lo, _ = _triple(victim["auc"])
    what = tested or (f"whole-molecule membership, {victim.get('n_members', '?')} members vs "
                      f"{victim.get('n_nonmembers', '?')} non-members (one-sided Mann-Whitney test of AUC > 0.5)")
    ref = f"; reference (null) AUC {_interval(reference['auc'])}" if reference is not None else ""
    verdict = decision(victim.get("p_value"), p_adjusted=p_adjusted, family_size=family_size, power=power,
                       fallback_detected=math.isfinite(lo) and lo > 0.5)
    return f"{what}: {label} AUC {_interval(victim['auc'])}{ref}; {verdict}."


def extraction_verdict(
    diff: Mapping[str, Any],
    *,
    power: Mapping[str, Any] | None = None,
    p_adjusted: float | None = None,
    family_size: int | None = None,
) -> str:
    """One sentence on the private-only test (`attribution.private_only_difference`): what was tested,
    the victim-minus-reference AUC difference with its interval, the decision."""
    n = f"{diff['n_private_only']} P-only vs {diff['n_reference_only']} P'-only candidates"
    what = (f"private-only test, {n} (does the victim rank candidates hitting only its private set P above "
            f"those hitting only the reference set P' more than its reference victim does; paired bootstrap)")
    value, lo, hi = _triple(diff["difference"])
    if not math.isfinite(value):
        return f"{what}: undefined, no candidate hits exactly one of P and P', so nothing was tested."
    verdict = decision(diff.get("p_value"), p_adjusted=p_adjusted, family_size=family_size, power=power,
                       fallback_detected=bool(diff.get("significant")))
    mde = minimum_detectable_difference(lo, hi)
    if verdict.startswith("not detected") and math.isfinite(mde):
        verdict += (f"; at this sample size the test detects an AUC difference of {mde:+.3f} or more with "
                    "probability 0.95 (one-sided 5% level)")
    return f"{what}: AUC difference {_interval(diff['difference'], sign=True)}; {verdict}."


def minimum_detectable_difference(lo: float, hi: float, alpha: float = ALPHA, power: float = 0.95) -> float:
    """The smallest true difference a one-sided test at `alpha` detects with probability `power`.

    From the 95% interval's width under a normal approximation: SE = (hi - lo) / (2 * 1.96), and
    MDE = (z_{1-alpha} + z_{power}) * SE (3.29 SE at alpha 5% and power 95%). NaN without an interval.
    """
    from scipy.stats import norm

    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return float("nan")
    se = (hi - lo) / (2 * norm.ppf(0.975))
    return float((norm.ppf(1 - alpha) + norm.ppf(power)) * se)
