"""The power ladder's pooling: detection counts over seeds, the null rate of a 1%-FPR threshold, Holm."""

from __future__ import annotations

import pytest

from molleak.plans.power import detection_start, pool_over_seeds


def _row(group, tpr, n_members=4, n_nonmembers=100, attack="lira_offline", statistic="loss"):
    return {"statistic": statistic, "access": "white box", "attack": attack, "group": group,
            "n_members": n_members, "n_nonmembers": n_nonmembers, "auc": {"value": 0.5},
            "tpr_at_fpr": {"0.01": {"value": tpr}}}


def _cells(seeds=3):
    rows = [_row("moses r=1", 0.0), _row("moses r=32", 1.0), _row("moses r=8", 0.25), _row("moses r=32", 1.0, attack="raw")]
    return [{"rung": "overfit", "strategy": "graphcl", "rows": rows} for _ in range(seeds)]


def test_pooling_counts_canaries_over_seeds_and_tests_against_the_thresholds_null_rate():
    pooled = {(r["group"], r["attack"]): r for r in pool_over_seeds(_cells(), 0.01)}
    top = pooled[("moses r=32", "lira_offline")]
    assert (top["detected"], top["n"]) == (12, 12)
    # 100 decoys: the threshold has floor(1) decoy above it, so a null canary beats it w.p. 2/101
    assert top["null_rate"] == pytest.approx(2 / 101)
    assert top["above_fpr"] and top["p_holm"] < 1e-10
    # 3 of 12 at a null rate of 2%: raw p = 0.0018, times 3 cells (Holm) still < 0.05
    assert pooled[("moses r=8", "lira_offline")]["above_fpr"]
    assert not pooled[("moses r=1", "lira_offline")]["above_fpr"]
    # attacks other than the pre-declared one are reported, never tested
    assert "p_holm" not in pooled[("moses r=32", "raw")] and not pooled[("moses r=32", "raw")]["above_fpr"]
    assert detection_start(list(pooled.values()), "overfit", "graphcl", "loss", "lira_offline", "moses") == 8


def test_one_seed_with_one_canary_of_four_is_not_a_detection():
    """1 of 4 canaries above the threshold happens by chance with probability 1 - (99/101)^4 = 7.7%."""
    cells = [{"rung": "r", "strategy": "s", "rows": [_row("moses r=4", 0.25)]}]
    (row,) = pool_over_seeds(cells, 0.01)
    assert row["p"] == pytest.approx(1 - (1 - 2 / 101) ** 4, rel=1e-6)
    assert not row["above_fpr"]
