"""Molecule -> graph featurisation in the pretrain-gnns layout (method.md section 7).

Node features: [atom type index, chirality tag index]; atom type index = atomic number - 1
(rows 0..117; row 119 is the mask token, 120 rows in all). Chirality: unspecified, CW, CCW;
any other tag RDKit emits (CHI_OTHER, the allene/square-planar tags of newer RDKit) is mapped to
unspecified and counted. Edge features: [bond type, bond direction]; bond types single, double,
triple, aromatic (self-loop = 4 and mask = 5 are added by the model); directions none,
end-up-right, end-down-right (others map to none, counted). No charge or hydrogen features.

Graphs are plain NumPy arrays (`MolGraph`) so that featurisation, caching and collation stay
cheap; `to_pyg` makes a PyTorch Geometric `Data` for the pre-training strategies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem

# MAX_HEAVY_ATOMS (1,000) lives in molleak.chem, with why: RDKit crashes on ~20,000-atom molecules
# and no drug-like query is that large; featurisation refuses molecules over it.
from molleak.chem import MAX_HEAVY_ATOMS, rdkit_quiet, shorten, size_problem
from molleak.errors import FeaturizationError

NUM_ATOM_TYPE = 120  # atomic numbers 1..118 -> 0..117, 118 unused, 119 = mask
MASK_ATOM_INDEX = 119
NUM_CHIRALITY_TAG = 3
NUM_BOND_TYPE = 6  # single, double, triple, aromatic, self-loop, mask
SELF_LOOP_BOND_INDEX = 4
MASK_BOND_INDEX = 5
NUM_BOND_DIRECTION = 3

_CHIRALITY = {
    Chem.ChiralType.CHI_UNSPECIFIED: 0,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_BOND_TYPE = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}
_BOND_DIR = {
    Chem.BondDir.NONE: 0,
    Chem.BondDir.ENDUPRIGHT: 1,
    Chem.BondDir.ENDDOWNRIGHT: 2,
}

#: how often an unusual feature was mapped to a default, process-wide (reported by the CLI)
FEATURE_FALLBACKS: Counter[str] = Counter()


@dataclass
class MolGraph:
    """A featurised molecule: node features x [n, 2], edge_index [2, 2b], edge_attr [2b, 2] (int64)."""

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])


def featurize_mol(mol: Chem.Mol, *, name: str = "") -> MolGraph:
    """Featurise an RDKit molecule.

    Raises:
        FeaturizationError: the molecule has no atoms, more than `MAX_HEAVY_ATOMS` heavy atoms, or
            still holds a dummy atom (`*`).
    """
    atoms = mol.GetAtoms()
    n = mol.GetNumAtoms()
    if n == 0:
        raise FeaturizationError(f"molecule {shorten(name) if name else '<unnamed>'} has no atoms")
    if mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        raise FeaturizationError(f"molecule {shorten(name) if name else '<unnamed>'} has {mol.GetNumHeavyAtoms()} "
                                 f"heavy atoms, over the bound of {MAX_HEAVY_ATOMS}")
    x = np.empty((n, 2), dtype=np.int64)
    for i, atom in enumerate(atoms):
        z = atom.GetAtomicNum()
        if z == 0:
            raise FeaturizationError(
                f"molecule {shorten(name) if name else Chem.MolToSmiles(mol)} still holds a dummy atom '*'; finalise it first"
            )
        x[i, 0] = z - 1
        tag = _CHIRALITY.get(atom.GetChiralTag())
        if tag is None:
            FEATURE_FALLBACKS["chirality_tag_unknown"] += 1
            tag = 0
        x[i, 1] = tag
    nb = mol.GetNumBonds()
    edge_index = np.empty((2, 2 * nb), dtype=np.int64)
    edge_attr = np.empty((2 * nb, 2), dtype=np.int64)
    for k, bond in enumerate(mol.GetBonds()):
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        bt = _BOND_TYPE.get(bond.GetBondType())
        if bt is None:
            FEATURE_FALLBACKS["bond_type_unknown"] += 1
            bt = 0
        bd = _BOND_DIR.get(bond.GetBondDir())
        if bd is None:
            FEATURE_FALLBACKS["bond_direction_unknown"] += 1
            bd = 0
        edge_index[0, 2 * k], edge_index[1, 2 * k] = a, b
        edge_index[0, 2 * k + 1], edge_index[1, 2 * k + 1] = b, a
        edge_attr[2 * k] = edge_attr[2 * k + 1] = (bt, bd)
    return MolGraph(x, edge_index, edge_attr)


def featurize_smiles(smiles: str) -> MolGraph:
    """Featurise a SMILES string; FeaturizationError if it does not parse or is over the size bounds."""
    if problem := size_problem(smiles):
        raise FeaturizationError(f"SMILES {shorten(smiles)} {problem}")
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise FeaturizationError(f"invalid SMILES: {shorten(smiles)}")
    return featurize_mol(mol, name=smiles)


@dataclass
class GraphBatch:
    """A collated batch: node/edge tensors with a graph index per node."""

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    num_graphs: int

    def to(self, device: str | torch.device) -> GraphBatch:
        return GraphBatch(
            self.x.to(device), self.edge_index.to(device), self.edge_attr.to(device), self.batch.to(device),
            self.num_graphs,
        )


def collate(graphs: list[MolGraph]) -> GraphBatch:
    """Concatenate graphs into one disjoint-union batch (faster than PyG's generic collation)."""
    sizes = np.fromiter((g.num_nodes for g in graphs), dtype=np.int64, count=len(graphs))
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    x = np.concatenate([g.x for g in graphs])
    ei = np.concatenate([g.edge_index + off for g, off in zip(graphs, offsets, strict=True)], axis=1)
    ea = np.concatenate([g.edge_attr for g in graphs])
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    return GraphBatch(
        torch.from_numpy(x), torch.from_numpy(ei), torch.from_numpy(ea.reshape(-1, 2)), torch.from_numpy(batch),
        len(graphs),
    )


def to_pyg(graph: MolGraph):
    """A PyTorch Geometric `Data` with x, edge_index and edge_attr (for pre-training strategies)."""
    from torch_geometric.data import Data

    return Data(
        x=torch.from_numpy(graph.x),
        edge_index=torch.from_numpy(graph.edge_index),
        edge_attr=torch.from_numpy(graph.edge_attr.reshape(-1, 2)),
    )


@dataclass(frozen=True)
class Featurizer:
    """How an encoder's inputs are made: molecule -> graph, and graphs -> batch."""

    featurize: object  # Callable[[Chem.Mol, str], graph]
    collate: object  # Callable[[list[graph]], batch]


def _registry():
    from molleak.registry import Registry

    reg: Registry[Featurizer] = Registry("featurizer")
    reg.register("pretrain_gnns")(Featurizer(lambda mol, name="": featurize_mol(mol, name=name), collate))
    return reg


FEATURIZERS = _registry()
