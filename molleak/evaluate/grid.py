"""Multiplicity across the cells of a grid (the canary grid, the memorisation sweep) and the verdicts that lead.

A grid asks the same question in every cell ("do the victim's canaries score above unplanted
non-members?"); asked in 12 cells, some cell answers yes by chance. So each **family** (one question:
one test's p-value taken from every cell) is Holm-adjusted across the grid's cells
(`metrics.holm_adjust`), and every test block gets, beside its raw `p_value`:

- `p_holm`: the Holm-adjusted p within its family;
- `holm_family`: {"name", "m"}: the family and how many cells had a defined p;
- `survives_holm`: `p_holm <= ALPHA` (0.05, one-sided tests).

`lead_verdicts` then writes a membership block's verdicts in the order the protocol asks for: the
victim-only test first (the victim's members vs non-members of the same distribution: valid on its
own), the reference contrast (victim minus a reference victim that saw neither set) second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from molleak.evaluate.metrics import holm_adjust
from molleak.evaluate.verdicts import ALPHA, membership_verdict

VICTIM, CONTRAST, REFERENCE = "victim", "victim-minus-reference", "reference"


def _block(cell: Mapping[str, Any], path: Sequence[str]) -> dict[str, Any] | None:
    obj: Any = cell
    for key in path:
        if not isinstance(obj, Mapping) or key not in obj:
            return None
        obj = obj[key]
    return obj if isinstance(obj, dict) else None


def holm_over_cells(cells: list[dict[str, Any]], families: Mapping[str, Sequence[str]],
                    alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """Holm-adjust each family's p-values across `cells`, in place; returns per family {"m", "survivors"}.

    Args:
        cells: the grid's cell results (JSON dicts).
        families: family name -> the path of keys from a cell to the test block holding `p_value`
            (e.g. `("canaries", "rows", "victim")`). A cell without that block is not in the family
            (a family no cell has is left out); a block without a finite `p_value` gets `p_holm` NaN
            and is not counted in m.
    """
    summary = {}
    for name, path in families.items():
        blocks = [b for b in (_block(c, path) for c in cells) if b is not None]
        if not blocks:  # a test this grid did not run (e.g. extraction without a canary pool)
            continue
        raw = [float(b["p_value"]) if isinstance(b.get("p_value"), int | float) else math.nan for b in blocks]
        adjusted = holm_adjust(raw)
        m = sum(1 for p in raw if math.isfinite(p))
        for block, p in zip(blocks, adjusted, strict=True):
            block["p_holm"] = p
            block["holm_family"] = {"name": name, "m": m}
            block["survives_holm"] = bool(math.isfinite(p) and p <= alpha)
        summary[name] = {"m": m, "survivors": sum(1 for b in blocks if b["survives_holm"]), "alpha": alpha,
                         "path": list(path)}
    return summary


def _adjusted(block: Mapping[str, Any]) -> tuple[float | None, int | None]:
    family = block.get("holm_family")
    if not isinstance(family, Mapping):
        return None, None
    return block.get("p_holm"), family.get("m")


def lead_verdicts(audit: dict[str, Any], tested: str, *, power: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Set a `membership_audit` result's verdicts, victim-only first, in place; returns it.

    `verdict` states the victim-only test (its Holm-adjusted p when `holm_over_cells` ran over it);
    `reference_contrast` the calibrated test (victim minus reference statistic) beside the
    reference's own null AUC, when the audit has a reference.
    """
    rows = audit["rows"]
    p_adj, m = _adjusted(rows[VICTIM])
    audit["verdict"] = "victim-only: " + membership_verdict(rows[VICTIM], label=VICTIM, tested=tested, power=power,
                                                            p_adjusted=p_adj, family_size=m)
    if CONTRAST in rows:
        p_adj, m = _adjusted(rows[CONTRAST])
        audit["reference_contrast"] = "reference contrast: " + membership_verdict(
            rows[CONTRAST], rows.get(REFERENCE), label=CONTRAST, tested=tested, power=power, p_adjusted=p_adj,
            family_size=m)
    return audit
