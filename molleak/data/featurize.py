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

import os
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
#: Bumped whenever `featurize_mol`'s output for some molecule changes: feature-cache files of
#: another version are not read (`graphs_to_npz` / `graphs_from_npz`).
FEATURIZER_VERSION = 1

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


def _fallbacks_to_zero(column: np.ndarray, fallback: str) -> None:
    """Set the -1 entries (a value our tables do not know) of `column` to 0 and count them under `fallback`."""
    unknown = column < 0
    if unknown.any():
        FEATURE_FALLBACKS[fallback] += int(unknown.sum())
        column[unknown] = 0


def featurize_mol(mol: Chem.Mol, *, name: str = "") -> MolGraph:
    """Featurise an RDKit molecule.

    Raises:
        FeaturizationError: the molecule has no atoms, more than `MAX_HEAVY_ATOMS` heavy atoms, or
            still holds a dummy atom (`*`).
    """
    n = mol.GetNumAtoms()
    if n == 0:
        raise FeaturizationError(f"molecule {shorten(name) if name else '<unnamed>'} has no atoms")
    if mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        raise FeaturizationError(f"molecule {shorten(name) if name else '<unnamed>'} has {mol.GetNumHeavyAtoms()} "
                                 f"heavy atoms, over the bound of {MAX_HEAVY_ATOMS}")
    # RDKit's per-atom and per-bond calls from Python are most of the cost: one pass over the atoms
    # and one over the bonds, each row built as a tuple and converted by one np.array call
    # (not per-element stores into NumPy arrays); -1 marks a value the tables do not know.
    chirality, bond_type, bond_dir = _CHIRALITY.get, _BOND_TYPE.get, _BOND_DIR.get
    x = np.array([(a.GetAtomicNum() - 1, chirality(a.GetChiralTag(), -1)) for a in mol.GetAtoms()],
                 dtype=np.int64).reshape(n, 2)
    if (x[:, 0] < 0).any():
        raise FeaturizationError(
            f"molecule {shorten(name) if name else Chem.MolToSmiles(mol)} still holds a dummy atom '*'; finalise it first"
        )
    _fallbacks_to_zero(x[:, 1], "chirality_tag_unknown")
    bonds = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), bond_type(b.GetBondType(), -1), bond_dir(b.GetBondDir(), -1))
                      for b in mol.GetBonds()], dtype=np.int64).reshape(-1, 4)
    _fallbacks_to_zero(bonds[:, 2], "bond_type_unknown")
    _fallbacks_to_zero(bonds[:, 3], "bond_direction_unknown")
    nb = bonds.shape[0]
    # bond k is the two directed edges 2k (begin -> end) and 2k + 1 (end -> begin)
    edge_index = np.empty((2, nb, 2), dtype=np.int64)
    edge_index[0, :, 0] = edge_index[1, :, 1] = bonds[:, 0]
    edge_index[1, :, 0] = edge_index[0, :, 1] = bonds[:, 1]
    return MolGraph(x, edge_index.reshape(2, 2 * nb), np.repeat(bonds[:, 2:], 2, axis=0))


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
    """Concatenate graphs into one disjoint-union batch (faster than PyG's generic collation).

    Each array kind is concatenated once; the node offsets are added to all edges in one operation
    (not per graph), so the cost per graph is a few list appends.
    """
    sizes = np.fromiter((g.x.shape[0] for g in graphs), dtype=np.int64, count=len(graphs))
    n_edges = np.fromiter((g.edge_index.shape[1] for g in graphs), dtype=np.int64, count=len(graphs))
    offsets = np.cumsum(sizes) - sizes
    x = np.concatenate([g.x for g in graphs])
    ei = np.concatenate([g.edge_index for g in graphs], axis=1)
    ei += np.repeat(offsets, n_edges)
    ea = np.concatenate([g.edge_attr.reshape(-1, 2) for g in graphs])
    batch = np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)
    return GraphBatch(
        torch.from_numpy(x), torch.from_numpy(ei), torch.from_numpy(ea), torch.from_numpy(batch), len(graphs),
    )


def graphs_to_npz(graphs: list[MolGraph], fallbacks: dict[str, int]) -> bytes:
    """A list of graphs as the bytes of one .npz file of plain integer arrays (no pickled objects).

    All graphs' arrays are concatenated, with per-graph node and edge counts; atom and bond indices
    are small (atom types < 120, at most `MAX_HEAVY_ATOMS` atoms plus their hydrogens), stored as
    uint8 / int32 to keep a 50,000-molecule set near 20 MB. `fallbacks` (feature fallbacks counted
    while featurising) travel along so that a cached read counts them again.
    """
    import io

    nodes = np.fromiter((g.x.shape[0] for g in graphs), dtype=np.int64, count=len(graphs))
    edges = np.fromiter((g.edge_index.shape[1] for g in graphs), dtype=np.int64, count=len(graphs))
    names = sorted(fallbacks)
    buf = io.BytesIO()
    np.savez(
        buf, version=np.array(FEATURIZER_VERSION), nodes=nodes, edges=edges,
        x=np.concatenate([g.x for g in graphs]).astype(np.uint8) if graphs else np.zeros((0, 2), np.uint8),
        edge_index=(np.concatenate([g.edge_index for g in graphs], axis=1).astype(np.int32) if graphs
                    else np.zeros((2, 0), np.int32)),
        edge_attr=(np.concatenate([g.edge_attr for g in graphs]).astype(np.uint8) if graphs
                   else np.zeros((0, 2), np.uint8)),
        fallback_names=np.array(names, dtype=np.str_), fallback_counts=np.array([fallbacks[k] for k in names], np.int64),
    )
    return buf.getvalue()


def graphs_from_npz(path: str | os.PathLike) -> tuple[list[MolGraph], dict[str, int]]:
    """The graphs (int64 arrays, as `featurize_mol` makes them) and fallback counts of a `graphs_to_npz` file.

    Raises:
        ValueError: the file is not a complete feature file of this `FEATURIZER_VERSION` (the caller
            featurises afresh); OSError: it cannot be read.
    """
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ValueError(f"unreadable feature file: {exc}") from None
    needed = {"version", "nodes", "edges", "x", "edge_index", "edge_attr", "fallback_names", "fallback_counts"}
    if not needed <= set(data) or int(data["version"]) != FEATURIZER_VERSION:
        raise ValueError("not a feature file of this featuriser version")
    nodes, edges = data["nodes"].astype(np.int64), data["edges"].astype(np.int64)
    fallbacks = dict(zip(data["fallback_names"].tolist(), data["fallback_counts"].tolist(), strict=True))
    if len(nodes) == 0:
        return [], fallbacks
    x, ei, ea = data["x"].astype(np.int64), data["edge_index"].astype(np.int64), data["edge_attr"].astype(np.int64)
    if (len(nodes) != len(edges) or x.shape != (int(nodes.sum()), 2) or ei.shape != (2, int(edges.sum()))
            or ea.shape != (int(edges.sum()), 2)):
        raise ValueError("inconsistent feature file")
    node_cuts, edge_cuts = np.cumsum(nodes)[:-1], np.cumsum(edges)[:-1]
    graphs = [MolGraph(gx, gei, gea) for gx, gei, gea in zip(
        np.split(x, node_cuts), np.split(ei, edge_cuts, axis=1), np.split(ea, edge_cuts), strict=True)]
    return graphs, fallbacks


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
