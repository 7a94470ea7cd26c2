"""Pieces several strategies share: seeded NumPy draws, node masks, subgraphs, NT-Xent, GIN decoders."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from molleak.data.featurize import MASK_ATOM_INDEX, GraphBatch, MolGraph
from molleak.models.gin import GINConv


def numpy_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's global generator, so the trainer's per-epoch seed decides it."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def random_node_mask(batch: GraphBatch, rate: float) -> torch.Tensor:
    """A boolean mask over the batch's atoms: each atom with probability `rate`, at least one per graph."""
    rand = torch.rand(batch.x.size(0))
    mask = rand < rate
    # the atom with the largest key in each graph is always masked, so no graph goes unmasked
    first = torch.full((batch.num_graphs,), -1.0).scatter_reduce(0, batch.batch, rand, reduce="amax")
    return mask | (rand == first[batch.batch])


def mask_atoms(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A copy of the [atom type, chirality] features with masked atoms set to the mask token."""
    x = x.clone()
    x[mask, 0] = MASK_ATOM_INDEX
    x[mask, 1] = 0
    return x


def subgraph(graph: MolGraph, keep: np.ndarray) -> MolGraph:
    """The subgraph induced by the atoms where `keep` (a boolean mask) is true, atoms renumbered."""
    idx = np.flatnonzero(keep)
    remap = np.full(graph.num_nodes, -1, dtype=np.int64)
    remap[idx] = np.arange(idx.size)
    ei = graph.edge_index
    emask = keep[ei[0]] & keep[ei[1]] if ei.size else np.zeros(0, dtype=bool)
    return MolGraph(graph.x[idx], remap[ei[:, emask]].reshape(2, -1), graph.edge_attr[emask].reshape(-1, 2))


def per_graph_mean(values: torch.Tensor, graph: torch.Tensor, num_graphs: int) -> torch.Tensor:
    """Mean of per-item `values` within each graph ([num_graphs]; NaN for a graph with no item)."""
    total = torch.zeros(num_graphs, dtype=values.dtype).index_add_(0, graph, values)
    count = torch.zeros(num_graphs, dtype=values.dtype).index_add_(0, graph, torch.ones_like(values))
    return total / count


def zero_loss(module: nn.Module) -> torch.Tensor:
    """A zero loss connected to the parameters (for a batch with nothing to learn from)."""
    return sum(p.sum() for p in module.parameters() if p.requires_grad) * 0.0


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent as in GraphCL: view-1 graph i against view-2 graph i (positive) and the other graphs."""
    return nt_xent_rows(z1, z2, temperature).mean()


def nt_xent_rows(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The per-graph terms of `nt_xent` ([num_graphs]): graph i's loss against the batch's other graphs."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = z1 @ z2.T / temperature
    pos = logits.diagonal()
    eye = torch.eye(logits.size(0), dtype=torch.bool)
    # GraphCL divides by the sum over negatives only (the positive is left out of the denominator)
    return torch.logsumexp(logits.masked_fill(eye, float("-inf")), dim=1) - pos


def projection_head(dim: int) -> nn.Sequential:
    """The two-layer projection head contrastive methods put between encoder and loss."""
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))


class GINDecoder(nn.Module):
    """One GIN layer mapping node states to `out_dim` outputs (the GraphMAE / Mole-BERT decoder)."""

    def __init__(self, emb_dim: int, out_dim: int):
        super().__init__()
        self.conv = GINConv(emb_dim)
        self.conv.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, out_dim))

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return self.conv(h, edge_index, edge_attr)
