import numpy as np
import pytest
from rdkit import Chem

from molleak.data.featurize import (
    FEATURE_FALLBACKS,
    MolGraph,
    collate,
    featurize_mol,
    featurize_smiles,
)
from molleak.errors import FeaturizationError


def test_atoms_bonds_and_directions():
    g = featurize_smiles("C/C=C/Cl")
    # atom type index = atomic number - 1
    assert g.x[:, 0].tolist() == [5, 5, 5, 16]
    assert g.edge_index.shape == (2, 6)
    # double bond is type 1; the directional single bonds carry ENDUPRIGHT/ENDDOWNRIGHT (1 or 2)
    types = {tuple(a) for a in g.edge_attr.tolist()}
    assert (1, 0) in types
    assert any(bt == 0 and bd in (1, 2) for bt, bd in types)


def test_aromatic_and_chirality():
    g = featurize_smiles("C[C@H](N)c1ccccc1")
    assert set(g.x[:, 1].tolist()) <= {0, 1, 2} and g.x[1, 1] in (1, 2)
    assert 3 in g.edge_attr[:, 0].tolist()  # aromatic bonds


def test_unknown_chirality_maps_to_unspecified_and_is_counted():
    mol = Chem.MolFromSmiles("CC(F)Cl")
    mol.GetAtomWithIdx(1).SetChiralTag(Chem.ChiralType.CHI_OTHER)
    before = FEATURE_FALLBACKS["chirality_tag_unknown"]
    g = featurize_mol(mol)
    assert g.x[1, 1] == 0
    assert FEATURE_FALLBACKS["chirality_tag_unknown"] == before + 1


def test_dummy_atom_is_rejected_with_clear_error():
    with pytest.raises(FeaturizationError, match="dummy atom"):
        featurize_smiles("*c1ccccc1")


def test_invalid_smiles_is_rejected():
    with pytest.raises(FeaturizationError, match="invalid SMILES"):
        featurize_smiles("C1CC")


def test_collate_offsets_edges():
    a, b = featurize_smiles("CCO"), featurize_smiles("CN")
    batch = collate([a, b])
    assert batch.num_graphs == 2
    assert batch.batch.tolist() == [0, 0, 0, 1, 1]
    assert batch.edge_index[:, -2:].tolist() == [[3, 4], [4, 3]]
    assert isinstance(a, MolGraph) and np.array_equal(batch.x[:3].numpy(), a.x)


def _per_element_reference(mol) -> MolGraph:
    """Featurisation written the plain way, atom by atom and bond by bond (the layout's definition)."""
    from molleak.data.featurize import _BOND_DIR, _BOND_TYPE, _CHIRALITY

    x = np.array([[a.GetAtomicNum() - 1, _CHIRALITY.get(a.GetChiralTag(), 0)] for a in mol.GetAtoms()], dtype=np.int64)
    edges, attrs = [], []
    for bond in mol.GetBonds():
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        attr = [_BOND_TYPE.get(bond.GetBondType(), 0), _BOND_DIR.get(bond.GetBondDir(), 0)]
        edges += [[a, b], [b, a]]
        attrs += [attr, attr]
    return MolGraph(x, np.array(edges, dtype=np.int64).reshape(-1, 2).T, np.array(attrs, dtype=np.int64).reshape(-1, 2))


def test_featurisation_matches_the_per_element_reference(moses_sample):
    extra = ["C/C=C/Cl", "F/C=C\\C=C/Br", "C[C@H](N)c1ccccc1", "[Na+].[Cl-]", "C", "C#N", "[2H]C([2H])=O"]
    for smiles in moses_sample[:1000] + extra:
        mol = Chem.MolFromSmiles(smiles)
        got, ref = featurize_mol(mol), _per_element_reference(mol)
        for field in ("x", "edge_index", "edge_attr"):
            a, b = getattr(got, field), getattr(ref, field)
            assert a.dtype == np.int64 and a.shape == b.shape and np.array_equal(a, b), (smiles, field)


def test_unknown_bond_type_and_direction_map_to_defaults_and_are_counted():
    mol = Chem.RWMol(Chem.MolFromSmiles("CCO"))
    mol.GetBondWithIdx(0).SetBondType(Chem.BondType.DATIVE)
    mol.GetBondWithIdx(1).SetBondDir(Chem.BondDir.BEGINWEDGE)
    before = dict(FEATURE_FALLBACKS)
    g = featurize_mol(mol)
    assert g.edge_attr.tolist() == [[0, 0], [0, 0], [0, 0], [0, 0]]
    assert FEATURE_FALLBACKS["bond_type_unknown"] == before.get("bond_type_unknown", 0) + 1
    assert FEATURE_FALLBACKS["bond_direction_unknown"] == before.get("bond_direction_unknown", 0) + 1


def test_collate_matches_graph_by_graph_concatenation(moses_sample):
    graphs = [featurize_smiles(s) for s in moses_sample[:50]] + [featurize_smiles("[Na+]")]  # one without bonds
    batch = collate(graphs)
    offset = 0
    for k, g in enumerate(graphs):
        nodes = slice(offset, offset + g.num_nodes)
        assert np.array_equal(batch.x[nodes].numpy(), g.x) and (batch.batch[nodes] == k).all()
        offset += g.num_nodes
    expected = np.concatenate([g.edge_index + off for g, off in
                               zip(graphs, np.cumsum([0] + [g.num_nodes for g in graphs[:-1]]), strict=True)], axis=1)
    assert np.array_equal(batch.edge_index.numpy(), expected)
    assert np.array_equal(batch.edge_attr.numpy(), np.concatenate([g.edge_attr for g in graphs]))


def test_feature_file_round_trip(tmp_path, moses_sample):
    from molleak.data.featurize import graphs_from_npz, graphs_to_npz

    graphs = [featurize_smiles(s) for s in moses_sample[:40]] + [featurize_smiles("[Na+]")]
    (tmp_path / "f.npz").write_bytes(graphs_to_npz(graphs, {"bond_type_unknown": 2}))
    back, fallbacks = graphs_from_npz(tmp_path / "f.npz")
    assert fallbacks == {"bond_type_unknown": 2} and len(back) == len(graphs)
    for a, b in zip(back, graphs, strict=True):
        for field in ("x", "edge_index", "edge_attr"):
            assert getattr(a, field).dtype == np.int64 and np.array_equal(getattr(a, field), getattr(b, field))
    (tmp_path / "bad.npz").write_bytes(graphs_to_npz(graphs, {})[:100])  # a truncated file
    with pytest.raises(ValueError):
        graphs_from_npz(tmp_path / "bad.npz")
