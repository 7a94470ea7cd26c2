"""Membership audit, the owner's side: members vs non-members of a known training set.

The statistics are the attacker's (`molleak.attack.membership`, query access only); this module
knows which molecules were trained on, so it lives with the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from molleak.attack.membership import DEFAULT_STATISTIC, _neighbours_for, draw_neighbours, statistic_fn


def membership_audit(
    victim,
    members: Sequence[str],
    nonmembers: Sequence[str],
    references: dict[str, object] | None = None,
    *,
    n_neighbours: int = 8,
    seed: int = 0,
    n_boot: int = 1000,
    statistic: str = DEFAULT_STATISTIC,
) -> dict[str, object]:
    """Members vs non-members for the victim, each reference (the null), and the calibrated score.

    Args:
        victim: the model under audit.
        members: molecules the victim was trained on (e.g. a sample of the private set, or canaries).
        nonmembers: molecules from the same distribution it never saw (e.g. holdout).
        references: name -> model that saw neither set (reference victim, untrained encoder).
            Each gets its own raw row (the null: its AUC should cover 0.5) and a calibrated row
            `victim-minus-<name>`.
        statistic: a name from `STATISTICS` (one, chosen before looking: no multiple testing).

    Returns:
        {"rows": {name: membership_metrics(...)}, "verdict": str, "statistic": str, "n_neighbours": int,
        "seed": int, ...}.
    """
    from molleak.evaluate.attribution import membership_metrics, membership_verdict

    fn = statistic_fn(statistic)
    references = dict(references or {})
    n_neighbours = _neighbours_for(statistic, n_neighbours)
    hoods = draw_neighbours(list(members) + list(nonmembers), n_neighbours=n_neighbours, seed=seed)
    n_mem = len(members)
    raw = {"victim": fn(victim, hoods)}
    for name, model in references.items():
        raw[name] = fn(model, hoods)
    scores = dict(raw)
    for name in references:
        scores[f"victim-minus-{name}"] = raw["victim"] - raw[name]
    rows = {name: membership_metrics(s[:n_mem], s[n_mem:], n_boot=n_boot, seed=seed) for name, s in scores.items()}
    best = next((f"victim-minus-{n}" for n in references), "victim")
    null = rows[next(iter(references))] if references else None
    verdict = membership_verdict(rows[best], null)
    return {"rows": rows, "verdict": f"{best}: {verdict}", "statistic": statistic,
            "n_neighbours": n_neighbours, "seed": seed,
            "n_members": n_mem, "n_nonmembers": len(nonmembers)}
