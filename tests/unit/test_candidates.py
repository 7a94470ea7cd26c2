"""Candidate space: attach / finalise on hand-checked cases, vocabulary mining and enumeration."""

from __future__ import annotations

import pytest
from rdkit import Chem

from molleak.candidates.assemble import (
    apply_actions,
    as_mol,
    attach,
    cap_points,
    finalize,
    motif_points,
    open_points,
)
from molleak.candidates.enumerate import EnumerationStats, enumerate_pool, write_enumeration
from molleak.candidates.pool import read_pool
from molleak.candidates.vocab import Vocabulary, mine_vocabulary
from molleak.chem import canonical_smiles
from molleak.errors import InputFileError, MolleakError


def smi(mol) -> str:
    return Chem.MolToSmiles(mol)


# --- attach ---------------------------------------------------------------------------------


def test_attach_at_aromatic_nh_takes_its_explicit_h():
    pyrrole = as_mol("c1cc[nH]c1")
    n_idx = next(a.GetIdx() for a in pyrrole.GetAtoms() if a.GetSymbol() == "N")
    assert pyrrole.GetAtomWithIdx(n_idx).GetNumExplicitHs() == 1
    out = attach(pyrrole, n_idx, "C[*:1]", motif_points("C[*:1]")[0])
    assert smi(out) == canonical_smiles("Cn1cccc1")
    n_out = next(a for a in out.GetAtoms() if a.GetSymbol() == "N")
    assert n_out.GetTotalNumHs() == 0 and n_out.GetDegree() == 3


def test_attach_at_a_dummy_on_aromatic_n():
    # The template point sits on the n (N-substituted pyrrole): joining keeps it H-free.
    out = attach("*n1cccc1", 0, "c1ccc([*:1])cc1", motif_points("c1ccc([*:1])cc1")[0])
    assert smi(out) == canonical_smiles("c1ccc(-n2cccc2)cc1")


def test_attach_at_a_charged_atom():
    # An H-bearing charged N (explicit H count 3) as the point: it becomes [NH2+], charge kept.
    ammonium = as_mol("C[NH3+]")
    out = attach(ammonium, 1, "CC[*:1]", motif_points("CC[*:1]")[0])
    assert smi(out) == canonical_smiles("CC[NH2+]C")
    n = next(a for a in out.GetAtoms() if a.GetSymbol() == "N")
    assert (n.GetFormalCharge(), n.GetTotalNumHs()) == (1, 2)
    # A dummy on a quaternary N+ and a motif point on a charged atom.
    out = attach("*[N+](C)(C)C", 0, "[O-]C(=O)C[*:1]", motif_points("[O-]C(=O)C[*:1]")[0])
    assert smi(out) == canonical_smiles("C[N+](C)(C)CC(=O)[O-]")


def test_attach_refuses_an_atom_without_h():
    assert attach("CC(C)(C)C", 1, "C[*:1]", 1) is None


def test_motif_with_several_points_keeps_the_others_open():
    motif = "C(=C[*:1])[*:2]"
    pts = motif_points(motif)
    mol = as_mol(motif)
    assert [mol.GetAtomWithIdx(i).GetAtomMapNum() for i in pts] == [1, 2]
    out = attach("*c1ccc(*)cc1", 0, motif, pts[1])  # join through [*:2]
    # the template's second point comes first, then the motif's [*:1]
    assert len(open_points(out)) == 2
    assert finalize(out) == canonical_smiles("C=Cc1ccccc1")
    # second step at the motif's remaining point ([*:1], the last open point)
    out2 = attach(out, open_points(out)[1], "Cl[*:1]", motif_points("Cl[*:1]")[0])
    assert finalize(out2) == canonical_smiles("ClC=Cc1ccccc1")
    out3 = attach(out, open_points(out)[0], "Cl[*:1]", motif_points("Cl[*:1]")[0])
    assert finalize(out3) == canonical_smiles("C=Cc1ccc(Cl)cc1")
    # apply_actions uses the same ordinals
    assert finalize(apply_actions("*c1ccc(*)cc1", [(0, 0, 1), (1, 1, 0)], [motif, "Cl[*:1]"])) == \
        canonical_smiles("ClC=Cc1ccccc1")


def test_thiophene_motif_with_two_points():
    motif = "c1cc([*:1])sc1[*:2]"
    out = attach("*c1ccccc1", 0, motif, motif_points(motif)[0])
    assert finalize(out) == canonical_smiles("c1ccc(-c2cccs2)cc1")
    assert len(open_points(out)) == 1


def test_finalize_turns_leftover_points_into_h():
    assert finalize("*c1ccc(*)cc1") == "c1ccccc1"
    assert finalize("*n1cccc1") == "c1cc[nH]c1"  # deleting the dummy would leave an unkekulisable n
    assert finalize("[*:1]C(=O)[*:2]") == "C=O"
    assert finalize("*[N+](C)(C)C") == "C[NH+](C)C"
    assert finalize("O=C1CC(*)CN1*") == canonical_smiles("O=C1CCCN1")
    assert finalize(Chem.MolFromSmiles("*C1CC1")) == "C1CC1"
    assert finalize("c1cc*cc1") is None  # an H cannot sit inside an aromatic ring
    assert finalize("") is None and finalize("not a smiles") is None


def test_cap_points_keeps_the_chosen_points():
    capped = cap_points("*c1ccc(*)cc1", keep=[0])
    assert len(open_points(capped)) == 1
    assert smi(capped) == "*c1ccccc1"


# --- vocabulary -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mined(moses_sample) -> Vocabulary:
    return mine_vocabulary(moses_sample[:600], n_templates=15, n_motifs=20, workers=2, source="fixture")


def test_mined_vocabulary_is_well_formed(mined):
    assert len(mined.templates) == 15 and len(mined.motifs) == 20
    assert mined.template_freq == sorted(mined.template_freq, reverse=True)
    for t in mined.templates:
        mol = as_mol(t)
        pts = open_points(mol)
        assert 1 <= len(pts) <= 4
        assert all(mol.GetAtomWithIdx(p).GetBonds()[0].GetBondType() == Chem.BondType.SINGLE for p in pts)
        ring_atoms = {a.GetIdx() for a in mol.GetAtoms() if a.IsInRing()}
        assert all(mol.GetAtomWithIdx(p).GetNeighbors()[0].GetIdx() in ring_atoms for p in pts)
    for m in mined.motifs:
        mol = as_mol(m)
        pts = motif_points(mol)
        assert [mol.GetAtomWithIdx(p).GetAtomMapNum() for p in pts] == list(range(1, len(pts) + 1))
        assert 1 <= mol.GetNumAtoms() - len(pts) <= 13
        assert all(mol.GetAtomWithIdx(p).GetBonds()[0].GetBondType() == Chem.BondType.SINGLE for p in pts)
    assert "*c1ccccc1" in mined.templates  # monosubstituted benzene is everywhere in MOSES
    assert mined.meta["aux_molecules"] == 600


def test_template_frequency_counts_aux_molecules():
    aux = ["Clc1ccccc1", "COc1ccccc1", "Cc1ccc(C)cc1", "c1ccccc1", "COc1ccc(OC)cc1"]
    vocab = mine_vocabulary(aux, n_templates=5, n_motifs=5, workers=1)
    # plain benzene has no point: not a template; per molecule, not per occurrence
    assert vocab.frequencies["templates"] == {"*c1ccccc1": 2, "*c1ccc(*)cc1": 2}
    # BRICS cuts the aryl ethers only (not aryl-Cl or aryl-CH3)
    assert vocab.frequencies["motifs"] == {"CO[*:1]": 2, "c1ccc([*:1])cc1": 1, "c1cc([*:2])ccc1[*:1]": 1}


def test_vocabulary_round_trip_and_user_files(tmp_path, mined):
    mined.save(tmp_path / "v")
    back = Vocabulary.load(tmp_path / "v")
    assert back.templates == mined.templates and back.motifs == mined.motifs
    assert back.template_freq == mined.template_freq and back.meta["aux_molecules"] == 600
    # user files: no frequency column, unlabelled motif points get labels in atom order
    user = tmp_path / "user"
    user.mkdir()
    (user / "templates.smi").write_text("*c1ccc(*)cc1\n*C1CC1\n")
    (user / "motifs.smi").write_text("Cl*\nC(=C*)[*:1]\n")
    v = Vocabulary.load(user)
    assert v.template_freq == [0, 0]
    assert v.motifs[0] == "Cl[*:1]"
    assert sorted(as_mol(v.motifs[1]).GetAtomWithIdx(i).GetAtomMapNum() for i in motif_points(v.motifs[1])) == [1, 2]


@pytest.mark.parametrize(("templates", "motifs", "message"), [
    ("c1ccccc1\n", "Cl[*:1]\n", "no attachment point"),
    ("*c1ccccc1\n", "C(=[*:1])C\n", "not bonded by one single bond"),
    ("*c1ccccc1\n", "Xx[*:1]\n", "does not parse"),
    ("*c1ccccc1\n", "", "holds no motifs"),
])
def test_bad_vocabulary_files_give_one_clear_error(tmp_path, templates, motifs, message):
    (tmp_path / "templates.smi").write_text(templates)
    (tmp_path / "motifs.smi").write_text(motifs)
    with pytest.raises(InputFileError, match=message):
        Vocabulary.load(tmp_path)


def test_missing_vocabulary_directory(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        Vocabulary.load(tmp_path / "nope")


# --- enumeration ----------------------------------------------------------------------------

HAND = Vocabulary(
    templates=["*c1ccc(*)cc1", "*n1cccc1", "*C1CCN(*)CC1"],
    motifs=["Cl[*:1]", "C(=C[*:1])[*:2]", "O=C([*:1])[*:2]", "c1cc([*:1])sc1[*:2]"],
)


def test_one_step_pool_by_hand():
    stats = EnumerationStats()
    records = enumerate_pool(HAND, steps=1, templates=[0], workers=1, stats=stats)
    # 2 template points x 7 motif slots (1 + 2 + 2 + 2)
    assert stats.records == 14 and stats.rejected == 0
    # para-symmetric template, symmetric motifs, and both thiophene points are alpha to S
    assert stats.unique == 4
    assert {r.smiles for r in records} == {canonical_smiles(s) for s in
                                            ["Clc1ccccc1", "C=Cc1ccccc1", "O=Cc1ccccc1", "c1ccc(-c2cccs2)cc1"]}
    rec = next(r for r in records if r.actions == ((1, 0, 0),))
    assert rec.smiles == "Clc1ccccc1"
    assert rec.steps[0].before == "c1ccccc1" and rec.steps[0].motif == "Cl" and rec.steps[0].after == rec.smiles


def test_two_step_records_rebuild_exactly():
    stats = EnumerationStats()
    records = enumerate_pool(HAND, steps=2, workers=2, stats=stats, verify=True)
    assert stats.verified == stats.records > 0
    assert stats.mismatches == 0 and stats.rejected == 0
    # template 1 (one point) then each motif's remaining points, template 0/2 two points each
    n_slots = 7
    expected = 0
    for t_points in (2, 1, 2):
        for first_motif_points in (1, 2, 2, 2):
            # first step: t_points x (points of the motif); second: open points x slots
            expected += t_points * first_motif_points * ((t_points - 1) + (first_motif_points - 1)) * n_slots
    assert stats.records == expected
    for rec in records[:: max(1, len(records) // 200)]:
        assert rec.steps[0].after == rec.steps[1].before
        assert rec.steps[1].after == rec.smiles
        assert finalize(apply_actions(HAND.templates[rec.template], rec.actions, HAND.motifs)) == rec.smiles


def test_mined_one_step_pool_has_no_rejects_and_matches_plain_assembly(mined):
    stats = EnumerationStats()
    enumerate_pool(mined, steps=1, workers=2, stats=stats, verify=True)
    assert stats.records > 100 and stats.rejected == 0
    assert stats.verified == stats.records and stats.mismatches == 0
    assert stats.unique < stats.records


def test_streaming_writer_matches_in_memory_pool(tmp_path):
    path = tmp_path / "pool.tsv.gz"
    stats = write_enumeration(HAND, path, steps=2, templates=[1, 2], workers=2)
    records = read_pool(path)
    assert len(records) == stats.records
    assert [r.to_line() for r in records] == [r.to_line() for r in enumerate_pool(HAND, 2, [1, 2], workers=1)]
    assert stats.unique == len({r.smiles for r in records})
    first = write_enumeration(HAND, tmp_path / "first.tsv", steps=2, templates=[1, 2], workers=1,
                              first_record_only=True)
    assert first.records == first.unique == stats.unique


def test_bad_enumeration_arguments():
    with pytest.raises(MolleakError, match="out of range"):
        enumerate_pool(HAND, steps=1, templates=[7])
    with pytest.raises(MolleakError, match="steps"):
        enumerate_pool(HAND, steps=3)


def test_brics_fragments_cut_at_a_double_bond_are_dropped():
    # BRICS cuts the olefin C=C of both molecules (its rule 7): those fragments cannot be re-made by a
    # single-bond attach, so they are dropped and counted (method.md section 10).
    vocab = mine_vocabulary(["c1ccc(C=Cc2ccccc2)cc1", "CCCC=CCCC(=O)NC"], n_templates=5, n_motifs=10, workers=1)
    assert vocab.meta["skipped"]["motif_cut_not_single"] == 4
    assert vocab.motifs == ["CN[*:1]"]
