"""A small faithful GROVER (Rong et al. 2020): a graph transformer with node-view and edge-view message passing.

Each view runs one GTrans block: per attention head, dynamic message passing networks (dyMPN,
random hop count while training) produce queries, keys and values, which attend within each
molecule; then residual + LayerNorm + feed-forward. The node view keeps hidden states on atoms,
the edge view on directed bonds (D-MPNN style: a bond's message excludes its reverse bond), whose
states are summed onto atoms. An atom's embedding is [atom-from-atom, atom-from-bond]; the
victim's embedding is their mean over the molecule. It is not a GIN and has its own featuriser
("grover": 133 atom features, 12 bond features, GROVER's RDKit descriptors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rdkit import Chem
from torch import nn
from torch_geometric.utils import to_dense_batch

from molleak.data.featurize import FEATURIZERS, Featurizer
from molleak.errors import FeaturizationError
from molleak.models.base import ENCODERS, GraphEncoder

_HYBRID = [Chem.HybridizationType.SP, Chem.HybridizationType.SP2, Chem.HybridizationType.SP3,
           Chem.HybridizationType.SP3D, Chem.HybridizationType.SP3D2]
_CHIRAL = [Chem.ChiralType.CHI_UNSPECIFIED, Chem.ChiralType.CHI_TETRAHEDRAL_CW,
           Chem.ChiralType.CHI_TETRAHEDRAL_CCW, Chem.ChiralType.CHI_OTHER]
_BONDS = [Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC]
_STEREO = [Chem.BondStereo.STEREONONE, Chem.BondStereo.STEREOANY, Chem.BondStereo.STEREOZ,
           Chem.BondStereo.STEREOE, Chem.BondStereo.STEREOCIS, Chem.BondStereo.STEREOTRANS]
# one-hot blocks (each with a trailing "other" slot) + aromatic + mass/100
ATOM_FDIM = 101 + 7 + 6 + 5 + 6 + 6 + 1 + 1
BOND_FDIM = 4 + 1 + 1 + 6


def _onehot(value: Any, choices: list, out: np.ndarray, start: int) -> int:
    """Set one slot of `out` (the last slot of the block means 'other'); return the next block's start."""
    i = choices.index(value) if value in choices else len(choices)
    out[start + i] = 1.0
    return start + len(choices) + 1


def atom_features(atom: Chem.Atom) -> np.ndarray:
    f = np.zeros(ATOM_FDIM, dtype=np.float32)
    s = _onehot(atom.GetAtomicNum(), list(range(1, 101)), f, 0)
    s = _onehot(atom.GetTotalDegree(), list(range(6)), f, s)
    s = _onehot(atom.GetFormalCharge(), [-2, -1, 0, 1, 2], f, s)
    s = _onehot(atom.GetChiralTag(), _CHIRAL, f, s)
    s = _onehot(atom.GetTotalNumHs(), list(range(5)), f, s)
    s = _onehot(atom.GetHybridization(), _HYBRID, f, s)
    f[s] = float(atom.GetIsAromatic())
    f[s + 1] = atom.GetMass() * 0.01
    return f


def bond_features(bond: Chem.Bond) -> np.ndarray:
    f = np.zeros(BOND_FDIM, dtype=np.float32)
    bt = bond.GetBondType()
    if bt in _BONDS:
        f[_BONDS.index(bt)] = 1.0
    f[4] = float(bond.GetIsConjugated())
    f[5] = float(bond.IsInRing())
    st = bond.GetStereo()
    f[6 + (_STEREO.index(st) if st in _STEREO else 0)] = 1.0
    return f


@dataclass
class GroverGraph:
    """A molecule for GROVER: atom/bond feature matrices, directed bonds (2k, 2k+1 are reverses)."""

    x: np.ndarray  # [n, ATOM_FDIM] float32
    edge_index: np.ndarray  # [2, 2b] int64
    edge_attr: np.ndarray  # [2b, BOND_FDIM] float32
    atomic_num: np.ndarray  # [n] int64 (for pre-training labels)
    bond_type: np.ndarray  # [2b] int64 index into single/double/triple/aromatic (4 = other)
    smiles: str = ""

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])


def featurize_grover(mol: Chem.Mol, name: str = "") -> GroverGraph:
    """GROVER features of an RDKit molecule (FeaturizationError for empty or dummy-atom molecules)."""
    n = mol.GetNumAtoms()
    if n == 0:
        raise FeaturizationError(f"molecule {name or '<unnamed>'} has no atoms")
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        raise FeaturizationError(f"molecule {name or Chem.MolToSmiles(mol)} still holds a dummy atom '*'; finalise it first")
    x = np.stack([atom_features(a) for a in mol.GetAtoms()])
    nb = mol.GetNumBonds()
    ei = np.empty((2, 2 * nb), dtype=np.int64)
    ea = np.empty((2 * nb, BOND_FDIM), dtype=np.float32)
    bt = np.empty(2 * nb, dtype=np.int64)
    for k, bond in enumerate(mol.GetBonds()):
        a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        ei[:, 2 * k], ei[:, 2 * k + 1] = (a, b), (b, a)
        ea[2 * k] = ea[2 * k + 1] = bond_features(bond)
        t = bond.GetBondType()
        bt[2 * k] = bt[2 * k + 1] = _BONDS.index(t) if t in _BONDS else 4
    z = np.fromiter((a.GetAtomicNum() for a in mol.GetAtoms()), dtype=np.int64, count=n)
    return GroverGraph(x, ei, ea.reshape(-1, BOND_FDIM), z, bt, name)


@dataclass
class GroverBatch:
    """Collated GROVER graphs; `rev[e]` is the reverse of directed bond e."""

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    batch: torch.Tensor
    num_graphs: int

    @property
    def rev(self) -> torch.Tensor:
        return torch.arange(self.edge_index.size(1)) ^ 1


def collate_grover(graphs: list[GroverGraph]) -> GroverBatch:
    sizes = np.fromiter((g.num_nodes for g in graphs), dtype=np.int64, count=len(graphs))
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return GroverBatch(
        torch.from_numpy(np.concatenate([g.x for g in graphs])),
        torch.from_numpy(np.concatenate([g.edge_index + o for g, o in zip(graphs, offsets, strict=True)], axis=1)),
        torch.from_numpy(np.concatenate([g.edge_attr for g in graphs]).reshape(-1, BOND_FDIM)),
        torch.from_numpy(np.repeat(np.arange(len(graphs), dtype=np.int64), sizes)),
        len(graphs),
    )


if "grover" not in FEATURIZERS:
    FEATURIZERS.register("grover")(Featurizer(featurize_grover, collate_grover))


class DyMPN(nn.Module):
    """Dynamic message passing: a random number of hops (depth +- 1) while training, `depth` otherwise."""

    def __init__(self, hidden: int, depth: int, on_bonds: bool):
        super().__init__()
        self.depth, self.on_bonds = depth, on_bonds
        self.w_h = nn.Linear(hidden, hidden, bias=False)

    def forward(self, inp: torch.Tensor, batch: GroverBatch, bond_in: torch.Tensor | None = None) -> torch.Tensor:
        hops = self.depth
        if self.training:
            hops = max(1, self.depth + int(torch.randint(-1, 2, (1,)).item()))
        src, dst = batch.edge_index
        m = inp
        for _ in range(hops):
            if self.on_bonds:  # bond u->v gathers bonds into u, except its own reverse v->u
                into = torch.zeros(batch.x.size(0), m.size(1), dtype=m.dtype).index_add_(0, dst, m)
                agg = into[src] - m[batch.rev]
            else:  # atom v gathers neighbour states plus the connecting bonds' inputs
                agg = torch.zeros_like(m).index_add_(0, dst, m[src] + bond_in)
            m = F.relu(inp + self.w_h(agg))
        return m


class GTransBlock(nn.Module):
    """Multi-head attention with dyMPN-made queries/keys/values, then residual/LayerNorm/FFN."""

    def __init__(self, hidden: int, heads: int, depth: int, on_bonds: bool):
        super().__init__()
        self.heads = heads
        self.mpn = nn.ModuleList(DyMPN(hidden, depth, on_bonds) for _ in range(3 * heads))
        self.w_o = nn.Linear(heads * hidden, hidden)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))

    def forward(self, h: torch.Tensor, group: torch.Tensor, batch: GroverBatch,
                bond_in: torch.Tensor | None) -> torch.Tensor:
        outs = []
        for k in range(self.heads):
            q, key, v = (to_dense_batch(self.mpn[3 * k + j](h, batch, bond_in), group, batch_size=batch.num_graphs)
                         for j in range(3))
            mask = q[1]
            attn_mask = mask.unsqueeze(1).unsqueeze(1)  # [G, 1, 1, L]: attend only within the molecule
            o = F.scaled_dot_product_attention(q[0].unsqueeze(1), key[0].unsqueeze(1), v[0].unsqueeze(1),
                                               attn_mask=attn_mask).squeeze(1)
            outs.append(o[mask])
        h = self.norm1(h + self.w_o(torch.cat(outs, dim=1)))
        return self.norm2(h + self.ffn(h))


@ENCODERS.register("grover")
class GroverEncoder(GraphEncoder):
    """Node-view and edge-view GTrans encoders; node embedding = [atom-from-atom, atom-from-bond].

    Args:
        hidden: width of each view (the embedding is 2 * hidden wide).
        heads: attention heads per view.
        depth: dyMPN hops (the mean of the dynamic depth while training).
        num_layers: GTrans blocks per view.
    """

    featurizer = "grover"

    def __init__(self, hidden: int = 100, heads: int = 2, depth: int = 2, num_layers: int = 1):
        super().__init__()
        self.hidden, self.heads, self.depth, self.num_layers = hidden, heads, depth, num_layers
        self.emb_dim = 2 * hidden
        self.atom_in = nn.Linear(ATOM_FDIM, hidden)
        self.bond_in = nn.Linear(ATOM_FDIM + BOND_FDIM, hidden)
        self.node_blocks = nn.ModuleList(GTransBlock(hidden, heads, depth, False) for _ in range(num_layers))
        self.edge_blocks = nn.ModuleList(GTransBlock(hidden, heads, depth, True) for _ in range(num_layers))
        self.atom_from_bond = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.norm_ab = nn.LayerNorm(hidden)

    def views(self, batch: GroverBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(atom-from-atom, atom-from-bond) atom embeddings, each [atoms, hidden]."""
        src, dst = batch.edge_index
        a0 = F.relu(self.atom_in(batch.x))
        b0 = F.relu(self.bond_in(torch.cat([batch.x[src], batch.edge_attr], dim=1)))
        a = a0
        for blk in self.node_blocks:
            a = blk(a, batch.batch, batch, b0)
        b = b0
        bond_group = batch.batch[src]
        for blk in self.edge_blocks:
            b = blk(b, bond_group, batch, None)
        into = torch.zeros_like(a0).index_add_(0, dst, b)
        ab = self.norm_ab(a0 + self.atom_from_bond(torch.cat([a0, into], dim=1)))
        return a, ab

    def node_embeddings(self, batch: GroverBatch) -> torch.Tensor:
        return torch.cat(self.views(batch), dim=1)

    def config(self) -> dict[str, Any]:
        return {"hidden": self.hidden, "heads": self.heads, "depth": self.depth, "num_layers": self.num_layers}
