"""Membership oracle: hand-checked labels, the fingerprint screen against brute force, caches."""

from __future__ import annotations

import numpy as np
import pytest
from rdkit import Chem

from molleak.chem import canonical_smiles
from molleak.errors import InputFileError
from molleak.oracle import Bank, Labels, clear_memory_cache, label
from molleak.oracle.bank import pattern_bits

HAND_BANK = ["OCCc1ccccc1", "Cc1ccc(N)cc1", "CC(=O)Nc1ccccc1", "C[C@@H](O)CC", "Cn1cccc1"]


@pytest.fixture()
def hand_bank(tmp_path) -> Bank:
    return Bank([canonical_smiles(s) for s in HAND_BANK], name="hand", cache_dir=tmp_path / "cache", workers=1)


@pytest.mark.parametrize(("candidate", "substructure", "exact", "count"), [
    ("c1ccccc1", True, False, 3),        # in three bank molecules, is none of them
    ("Cc1ccc(N)cc1", True, True, 1),     # an exact hit
    ("Nc1ccccc1", True, False, 2),       # aniline: in the toluidine and the anilide
    ("CCO", True, False, 2),             # C-C-O single bonds: the two alcohols, not the amide
    ("ClC", False, False, 0),            # chlorine: a substructure of nothing
    ("O=CC", True, False, 1),            # acetyl of the anilide
    ("CC(O)CC", True, True, 1),          # exact although the bank molecule has a stereocentre
    ("C[C@H](O)CC", True, True, 1),      # the other enantiomer: chirality ignored
    ("c1cc[nH]c1", True, False, 1),      # pyrrole in N-methylpyrrole: H counts are not matched
    ("CC(=O)Nc1ccccc1C", False, False, 0),  # bigger than every bank molecule
])
def test_hand_checked_labels(hand_bank, candidate, substructure, exact, count):
    labels = label([canonical_smiles(candidate)], hand_bank, workers=1, cache_dir=False)
    assert bool(labels.substructure[0]) is substructure
    assert bool(labels.exact[0]) is exact
    assert int(labels.count[0]) == count


def test_counts_off_stops_early_but_keeps_the_boolean(hand_bank):
    cands = [canonical_smiles(s) for s in ["c1ccccc1", "ClC", "Cc1ccc(N)cc1"]]
    clear_memory_cache()
    fast = label(cands, hand_bank, workers=1, counts=False, cache_dir=False)
    assert fast.substructure.tolist() == [True, False, True]
    assert fast.exact.tolist() == [False, False, True]
    assert fast.count.tolist() == [-1, -1, -1]
    # asking for counts later recomputes instead of serving the uncounted cache entries
    full = label(cands, hand_bank, workers=1, counts=True, cache_dir=False)
    assert full.count.tolist() == [3, 0, 1] and full.from_cache == 0


def test_invalid_candidates_are_labelled_no_hit(hand_bank):
    labels = label(["c1ccccc1", "not-a-smiles"], hand_bank, workers=1, cache_dir=False)
    assert labels.valid.tolist() == [True, False]
    assert labels.substructure.tolist() == [True, False]


def test_screen_never_drops_a_true_match(moses_sample):
    """The bit-sliced pattern screen against brute-force HasSubstructMatch on real molecules."""
    bank_smiles = moses_sample[:400]
    bank = Bank(bank_smiles, cache_dir=False, workers=1).build()
    bank_mols = [Chem.MolFromSmiles(s) for s in bank_smiles]
    frags = ["c1ccccc1", "C(=O)N", "c1ccncc1", "C1CCNCC1", "FC(F)F", "c1ccsc1", "O=S(=O)N",
             "Cc1ccccc1Cl", "c1ccc2[nH]ccc2c1", "CC(C)(C)OC(=O)N", "N#Cc1ccccc1", "C1CC1"]
    queries = frags + moses_sample[400:420] + bank_smiles[:5]
    for q in queries:
        qm = Chem.MolFromSmiles(q)
        truth = {k for k, m in enumerate(bank_mols) if m.HasSubstructMatch(qm)}
        screened = set(bank.screen(pattern_bits([qm])[0]).tolist())
        assert truth <= screened, q
    labels = label(queries, bank, workers=2, cache_dir=False)
    brute = np.array([sum(m.HasSubstructMatch(Chem.MolFromSmiles(q)) for m in bank_mols) for q in queries])
    assert labels.count.tolist() == brute.tolist()
    assert labels.substructure.tolist() == (brute > 0).tolist()
    assert labels.exact[-5:].all() and not labels.exact[: len(frags)].any()


def test_disk_caches_serve_labels_and_the_index(tmp_path, moses_sample):
    cache = tmp_path / "cache"
    bank = Bank(moses_sample[:300], cache_dir=cache, workers=1)
    cands = ["c1ccccc1", "C1CCNCC1", "ClCCl", moses_sample[0]]
    clear_memory_cache()
    first = label(cands, bank, workers=1)
    assert first.from_cache == 0
    assert list((cache / "banks").iterdir()) and list((cache / "labels").iterdir())
    clear_memory_cache()
    again = Bank(moses_sample[:300], cache_dir=cache, workers=1)  # index loaded from disk
    second = label(cands, again, workers=1)
    assert second.from_cache == len(cands)
    assert second.count.tolist() == first.count.tolist() and second.exact.tolist() == first.exact.tolist()
    # a different bank never reuses these labels
    other = label(cands, Bank(moses_sample[300:600], cache_dir=cache, workers=1), workers=1)
    assert other.from_cache == 0 and other.bank_sha256 != first.bank_sha256


def test_bank_identity_ignores_order_and_duplicates():
    a = Bank(["CCO", "c1ccccc1", "CCO"], cache_dir=False)
    b = Bank(["c1ccccc1", "CCO"], cache_dir=False)
    assert a.sha256 == b.sha256 and len(a) == 2
    with pytest.raises(InputFileError):
        Bank([], cache_dir=False)


def test_labels_file_round_trip(tmp_path, hand_bank):
    labels = label(["c1ccccc1", "ClC"], hand_bank, workers=1, cache_dir=False)
    labels.write(tmp_path / "l.tsv")
    back = Labels.read(tmp_path / "l.tsv")
    assert back.smiles == labels.smiles and back.count.tolist() == labels.count.tolist()
    (tmp_path / "bad.tsv").write_text("nope\n")
    with pytest.raises(InputFileError, match="header"):
        Labels.read(tmp_path / "bad.tsv")


def test_index_built_in_blocks_equals_one_block(moses_sample, monkeypatch):
    import molleak.oracle.bank as bank_mod

    whole = Bank(moses_sample[:500], cache_dir=False, workers=1).build()
    monkeypatch.setattr(bank_mod, "_TRANSPOSE_BLOCK", 64)
    blocked = Bank(moses_sample[:500], cache_dir=False, workers=1).build()
    assert np.array_equal(whole._columns, blocked._columns)
    assert np.array_equal(whole._bit_freq, blocked._bit_freq)
    q = pattern_bits([Chem.MolFromSmiles("c1ccccc1")])[0]
    assert blocked.screen(q).tolist() == whole.screen(q).tolist()


def test_large_banks_do_not_keep_decoded_molecules(moses_sample, monkeypatch):
    import molleak.oracle.bank as bank_mod

    monkeypatch.setattr(bank_mod, "MAX_DECODED", 10)
    bank = Bank(moses_sample[:50], cache_dir=False, workers=1)
    bank.decode_all()
    assert all(m is None for m in bank._mols)
    labels = label(["c1ccccc1"], bank, workers=1, cache_dir=False)
    brute = sum(Chem.MolFromSmiles(s).HasSubstructMatch(Chem.MolFromSmiles("c1ccccc1")) for s in moses_sample[:50])
    assert int(labels.count[0]) == brute
