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
