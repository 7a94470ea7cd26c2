"""The query and pre-training paths as they were before the speed work of issue 17, for the "before"
columns of `bench_embed.py` and `bench_pretrain.py` (timed side by side with the current code in one
run). Not used by molleak itself.

- `featurize_mol`: per-element stores into NumPy arrays;
- `collate`: per-graph edge offsets;
- `PropagateGINConv`: the GIN layer on PyTorch Geometric's `MessagePassing.propagate`;
- `PreviousVictim`: featurise, collate and forward chunk after chunk, no overlap.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
from rdkit import Chem
from torch import nn
from torch_geometric.nn import MessagePassing

from molleak.chem import MAX_HEAVY_ATOMS, shorten
from molleak.data.featurize import (
    _BOND_DIR,
    _BOND_TYPE,
    _CHIRALITY,
    FEATURE_FALLBACKS,
    NUM_BOND_DIRECTION,
    NUM_BOND_TYPE,
    SELF_LOOP_BOND_INDEX,
    GraphBatch,
    MolGraph,
)
from molleak.errors import FeaturizationError
from molleak.models.gin import _remove_generated_propagate_file
from molleak.models.victim import Victim


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



class PropagateGINConv(MessagePassing):
    """The GIN layer on `propagate` (same parameters and math as `molleak.models.gin.GINConv`)."""

    def __init__(self, emb_dim: int):
        super().__init__(aggr="add")
        _remove_generated_propagate_file(self)
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, emb_dim))
        self.edge_embedding1 = nn.Embedding(NUM_BOND_TYPE, emb_dim)
        self.edge_embedding2 = nn.Embedding(NUM_BOND_DIRECTION, emb_dim)
        nn.init.xavier_uniform_(self.edge_embedding1.weight)
        nn.init.xavier_uniform_(self.edge_embedding2.weight)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        n = x.size(0)
        loops = torch.arange(n, device=x.device)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr[:, 0] = SELF_LOOP_BOND_INDEX
        edge_attr = torch.cat([edge_attr, loop_attr], dim=0)
        edge_emb = self.edge_embedding1(edge_attr[:, 0]) + self.edge_embedding2(edge_attr[:, 1])
        return self.propagate(edge_index, x=x, edge_attr=edge_emb)

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return x_j + edge_attr

    def update(self, aggr_out: torch.Tensor) -> torch.Tensor:
        return self.mlp(aggr_out)


def with_propagate_layers(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose GIN layers (`gnns.*`, and a decoder's `conv`) are `PropagateGINConv`
    holding the same weights."""
    from molleak.models.gin import GINConv

    module = copy.deepcopy(module)
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, GINConv):
                layer = PropagateGINConv(child.edge_embedding1.embedding_dim)
                layer.mlp = child.mlp  # a decoder's MLP may have another output width
                layer.edge_embedding1, layer.edge_embedding2 = child.edge_embedding1, child.edge_embedding2
                setattr(parent, name, layer)
    return module


class PreviousVictim(Victim):
    """`Victim` with the previous featurisation, collation and GIN layer, one chunk after the other."""

    def __init__(self, victim: Victim, **kwargs):
        super().__init__(with_propagate_layers(victim.encoder), batch_size=victim.batch_size, **kwargs)

    @torch.inference_mode()
    def _compute(self, items):
        graphs = [featurize_mol(q.mol, name=q.key) for q in items]
        return self.encoder.graph_embeddings(collate(graphs)).float().numpy(), len(items)

    def _compute_chunks(self, chunks):
        for chunk in chunks:
            yield self._compute(chunk)


@contextlib.contextmanager
def installed():
    """Within the block, molleak featurises, collates and runs GIN layers the previous way.

    For timing the previous pre-training path through the real `pretrain` loop (call it with
    `feature_cache=False`: there was no feature cache).
    """
    import molleak.data.featurize as featurize
    import molleak.models.gin as gin
    import molleak.pretrain._common as common

    saved = (featurize.FEATURIZERS._items["pretrain_gnns"], gin.GINConv, common.GINConv)
    featurize.FEATURIZERS._items["pretrain_gnns"] = featurize.Featurizer(
        lambda mol, name="": featurize_mol(mol, name=name), collate)
    gin.GINConv = common.GINConv = PropagateGINConv
    try:
        yield
    finally:
        featurize.FEATURIZERS._items["pretrain_gnns"], gin.GINConv, common.GINConv = saved
