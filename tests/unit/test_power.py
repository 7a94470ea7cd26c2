"""The power ladder's pooling: detection over seeds, tested per molecule against the threshold's null rate, Holm."""

from __future__ import annotations

import pytest

from molleak.errors import MolleakError
from molleak.plans.power import detection_start, pool_over_seeds


def _row(group, above, n_members=4, n_nonmembers=100, attack="lira_offline", statistic="loss"):
    return {"statistic": statistic, "access": "white box", "attack": attack, "group": group,
            "n_members": n_members, "n_nonmembers": n_nonmembers, "auc": {"value": 0.5},
            "tpr_at_fpr": {"0.01": {"value": len(above) / n_members}}, "above": list(above)}


def _cells(per_seed):
    return [{"rung": "overfit", "strategy": "graphcl", "rows": rows} for rows in per_seed]


def test_pooling_counts_flags_over_seeds_and_tests_molecules_flagged_by_a_majority():
    seeds = [[_row("moses r=1", []), _row("moses r=32", [0, 1, 2, 3]), _row("moses r=8", [5]),
              _row("moses r=32", [0, 1, 2, 3], attack="raw")] for _ in range(3)]
    pooled = {(r["group"], r["attack"]): r for r in pool_over_seeds(_cells(seeds), 0.01)}
    top = pooled[("moses r=32", "lira_offline")]
    assert (top["detected"], top["n"]) == (12, 12) and (top["molecules_detected"], top["molecules"]) == (4, 4)
    # 100 decoys: the threshold has floor(1) decoy above it, so a null canary beats it w.p. 2/101
    assert top["null_rate"] == pytest.approx(2 / 101)
    assert top["p"] == pytest.approx((2 / 101) ** 4) and top["above_fpr"]
    # the same one molecule flagged in every seed is one detected molecule of 4, not 3 of 12:
    # p = 1 - (99/101)^4 = 0.077, not a detection
    r8 = pooled[("moses r=8", "lira_offline")]
    assert r8["detected"] == 3 and r8["molecules_detected"] == 1
    assert r8["p"] == pytest.approx(1 - (1 - 2 / 101) ** 4, rel=1e-6) and not r8["above_fpr"]
    assert not pooled[("moses r=1", "lira_offline")]["above_fpr"]
    # attacks other than the pre-declared one are reported, never tested
    assert "p_holm" not in pooled[("moses r=32", "raw")] and not pooled[("moses r=32", "raw")]["above_fpr"]
    assert detection_start(list(pooled.values()), "overfit", "graphcl", "loss", "lira_offline", "moses") == 32


def test_a_molecule_flagged_by_one_seed_of_three_is_not_detected():
    seeds = [[_row("moses r=4", [7])], [_row("moses r=4", [])], [_row("moses r=4", [])]]
    (row,) = pool_over_seeds(_cells(seeds), 0.01)
    assert row["molecules_detected"] == 0 and row["p"] == 1.0 and not row["above_fpr"]


def test_holm_runs_across_the_cells_of_the_primary_attack():
    # two molecules of 4 flagged in a cell: p = P(X >= 2 | 4, 2/101) = 0.0023 alone, but with 30 cells
    # in the family Holm multiplies it by 30 and it no longer passes
    seeds = [[_row("moses r=2", [0, 1])] + [_row(f"external r={r}", []) for r in range(1, 30)]]
    pooled = {r["group"]: r for r in pool_over_seeds(_cells(seeds), 0.01)}
    assert pooled["moses r=2"]["p"] < 0.01 and not pooled["moses r=2"]["above_fpr"]


def test_an_audit_quotes_one_rung_of_the_ladder(tmp_path):
    """The power sentence reads one rung (the last by default), not a sum over rungs."""
    import json

    from molleak.evaluate.verdicts import power_sentence
    from molleak.plans.shadows import power_from_ladder

    cells = [{"rung": rung, "strategy": "attrmask", "rows": [_row("moses r=1", above)]}
             for rung, above in (("overfit", [0, 1, 2, 3]), ("light", []))]
    path = tmp_path / "power_ladder.json"
    path.write_text(json.dumps({"pooled": pool_over_seeds(cells, 0.01), "plan": {"rungs": ["overfit", "light"]},
                                "rungs": {"light": {"n_private": 2000, "epochs": 5}}}))
    light = power_from_ladder(path, "attrmask")
    assert (light["rung"], light["tpr_at_1pct_fpr"], light["n"]) == ("light", 0.0, 4)
    assert "rung 'light' (2000 molecules, 5 epochs)" in power_sentence(light)
    assert power_from_ladder(path, "attrmask", rung="overfit")["tpr_at_1pct_fpr"] == 1.0
    with pytest.raises(MolleakError, match="no light / graphcl"):
        power_from_ladder(path, "graphcl")
