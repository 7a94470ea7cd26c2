"""Embedding-only membership: neighbour draws, the sharpness statistic, the audit."""

from __future__ import annotations

import numpy as np
import pytest

from molleak.attack.membership import (
    STATISTICS,
    draw_neighbours,
    embedding_norm,
    invariance,
    membership_scores,
    sharpness,
)
from molleak.chem import canonical_smiles
from molleak.errors import MolleakError
from molleak.evaluate.membership import membership_audit


class CountingVictim:
    """A fake victim: a fixed random projection of a bag of characters; counts embed calls."""

    def __init__(self, seed: int = 0, dim: int = 16):
        self.proj = np.random.default_rng(seed).normal(size=(128, dim))
        self.calls = 0

    def embed(self, smiles):
        self.calls += 1
        counts = np.zeros((len(smiles), 128))
        for i, s in enumerate(smiles):
            for ch in s:
                counts[i, ord(ch) % 128] += 1
        return (counts @ self.proj).astype(np.float32)


def test_neighbours_are_valid_distinct_and_seeded(moses_sample):
    mols = moses_sample[:40]
    hoods = draw_neighbours(mols, n_neighbours=6, seed=3)
    assert hoods.smiles == [canonical_smiles(s) for s in mols]
    for query, ns in zip(hoods.smiles, hoods.neighbours, strict=True):
        assert 1 <= len(ns) <= 6
        assert query not in ns and len(set(ns)) == len(ns)
        assert all(canonical_smiles(n) == n and "." not in n for n in ns)
    assert sum(len(ns) for ns in hoods.neighbours) > 0.8 * 6 * len(mols)
    again = draw_neighbours(mols, n_neighbours=6, seed=3)
    assert again.neighbours == hoods.neighbours
    assert draw_neighbours(mols, n_neighbours=6, seed=4).neighbours != hoods.neighbours


def test_invalid_smiles_is_a_clear_error():
    with pytest.raises(MolleakError, match="invalid SMILES"):
        draw_neighbours(["CCO", "not-a-smiles"])


def test_sharpness_is_one_batched_call_and_calibration_cancels(moses_sample):
    victim = CountingVictim()
    hoods = draw_neighbours(moses_sample[:30], n_neighbours=4, seed=0)
    s = sharpness(victim, hoods)
    assert victim.calls == 1
    assert s.shape == (30,) and np.all(np.isfinite(s)) and np.all(s >= -1e-9)
    # a model calibrated against itself scores exactly zero
    same = membership_scores(victim, moses_sample[:30], reference=victim, n_neighbours=4, seed=0)
    assert np.allclose(same, 0.0)


def test_audit_reports_every_row(moses_sample):
    audit = membership_audit(CountingVictim(0), moses_sample[:40], moses_sample[40:80],
                             {"reference": CountingVictim(1)}, n_neighbours=3, n_boot=50)
    assert set(audit["rows"]) == {"victim", "reference", "victim-minus-reference"}
    # members and non-members are the same kind of molecule to a fixed projection: no signal
    assert audit["rows"]["victim"]["auc"].covers(0.5)
    assert "not detected" in audit["verdict"] and "power not measured for this recipe" in audit["verdict"]


@pytest.mark.parametrize("statistic", sorted(STATISTICS))
def test_every_statistic_calibrates_against_itself_to_zero(moses_sample, statistic):
    victim = CountingVictim()
    same = membership_scores(victim, moses_sample[:20], reference=victim, n_neighbours=3, statistic=statistic)
    assert same.shape == (20,) and np.allclose(same, 0.0)


def test_statistics_are_what_they_say(moses_sample):
    victim = CountingVictim()
    hoods = draw_neighbours(moses_sample[:20], n_neighbours=3, seed=0)
    np.testing.assert_allclose(invariance(victim, hoods), -sharpness(victim, hoods))
    np.testing.assert_allclose(embedding_norm(victim, hoods),
                               np.linalg.norm(victim.embed(hoods.smiles).astype(np.float64), axis=1), rtol=1e-6)


def test_norm_detects_members_whose_embedding_training_pushed_out(moses_sample):
    """A victim that scales up its members' embeddings (what contrastive training did to canaries)."""
    members, nonmembers = moses_sample[:40], moses_sample[40:80]
    keys = {canonical_smiles(s) for s in members}

    class Pushed(CountingVictim):
        def embed(self, smiles):
            e = super().embed(smiles)
            return e * np.array([[1.5 if canonical_smiles(s) in keys else 1.0] for s in smiles], dtype=np.float32)

    audit = membership_audit(Pushed(0), members, nonmembers, {"reference": CountingVictim(0)}, n_neighbours=2,
                             n_boot=100, statistic="norm")
    assert audit["statistic"] == "norm"
    assert audit["rows"]["victim-minus-reference"]["auc"].value > 0.95
    assert audit["verdict"].startswith("victim-minus-reference: whole-molecule membership") and "; detected (" in audit["verdict"]


def test_unknown_statistic_is_a_clear_error(moses_sample):
    with pytest.raises(MolleakError, match="unknown membership statistic 'loss'"):
        membership_scores(CountingVictim(), moses_sample[:3], statistic="loss")
