"""The pretrain-gnns GIN encoder (Hu et al. 2020), in plain torch (PyTorch Geometric's batch layout).

Parameter names follow the published layout exactly (`x_embedding1`, `x_embedding2`,
`gnns.{l}.mlp.{0,2}`, `gnns.{l}.edge_embedding{1,2}`, `batch_norms.{l}`), so a published
checkpoint loads with `strict=True`.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from molleak.data.featurize import (
    NUM_ATOM_TYPE,
    NUM_BOND_DIRECTION,
    NUM_BOND_TYPE,
    NUM_CHIRALITY_TAG,
    SELF_LOOP_BOND_INDEX,
)
from molleak.models.base import ENCODERS, GraphEncoder

if TYPE_CHECKING:  # PyG is imported by the encoders that use its layers, not by the GIN
    from torch_geometric.nn import MessagePassing


def _remove_generated_propagate_file(conv: MessagePassing) -> None:
    """Delete the source file PyG generated for this class's `propagate`, once it is imported.

    PyG renders each MessagePassing class's `propagate` from a template into a temporary file and
    never removes it: one file per class per process, piling up in /tmp over many runs. The module
    is in memory after its import, and nothing here needs its source again (no TorchScript).
    """
    module = sys.modules.get(f"{type(conv).__module__}_{type(conv).__name__}_propagate")
    path = getattr(module, "__file__", None)
    if path and Path(path).parent == Path(tempfile.gettempdir()):
        Path(path).unlink(missing_ok=True)


class GINConv(nn.Module):
    """GIN layer with bond embeddings added to messages and a self-loop on every node.

    The message of edge j -> i is h_j + edge embedding; node i sums its incoming messages in edge
    order and then its self-loop's message, h_i + embedding of (self-loop, no direction), and the
    MLP maps the sum. Written with `index_select` / `index_add_` on contiguous tensors rather than
    PyTorch Geometric's `propagate`, in the same order of additions, so the outputs (and, while
    gradients are taken, the gradients) are bitwise those of the `propagate` version: published and
    already trained checkpoints give the same embeddings, and training the same weights.
    """

    def __init__(self, emb_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, emb_dim))
        self.edge_embedding1 = nn.Embedding(NUM_BOND_TYPE, emb_dim)
        self.edge_embedding2 = nn.Embedding(NUM_BOND_DIRECTION, emb_dim)
        nn.init.xavier_uniform_(self.edge_embedding1.weight)
        nn.init.xavier_uniform_(self.edge_embedding2.weight)

    def edge_embeddings(self, edge_attr: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of the edges [E, d] and of the n self-loops ([n, d], or [d] shared by all)."""
        w1, w2 = self.edge_embedding1.weight, self.edge_embedding2.weight
        if not torch.is_grad_enabled():
            # Inference: one lookup in the sums of every (type, direction) pair; each sum is the same
            # float addition the two lookups make, so the values are bitwise the same.
            table = (w1.unsqueeze(1) + w2.unsqueeze(0)).reshape(-1, w1.size(1))
            edge_emb = table.index_select(0, edge_attr[:, 0] * w2.size(0) + edge_attr[:, 1])
            return edge_emb, table[SELF_LOOP_BOND_INDEX * w2.size(0)]
        # With gradients: one lookup per table over the edges followed by the self-loops, as the
        # `propagate` version did, so each embedding row's gradient sums its terms in the same order.
        loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype, device=edge_attr.device)
        loop_attr[:, 0] = SELF_LOOP_BOND_INDEX
        attr = torch.cat([edge_attr, loop_attr], dim=0)
        emb = F.embedding(attr[:, 0], w1) + F.embedding(attr[:, 1], w2)
        return emb[: edge_attr.size(0)], emb[edge_attr.size(0) :]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        edge_emb, loop_emb = self.edge_embeddings(edge_attr, x.size(0))
        messages = x.index_select(0, edge_index[0])
        # in place where no gradient is taken (one [E, d] buffer fewer); the same additions either way
        messages = messages.add_(edge_emb) if not torch.is_grad_enabled() else messages + edge_emb
        # messages to each node summed in edge order, then the self-loop's message (its last edge)
        aggr = torch.zeros_like(x).index_add_(0, edge_index[1], messages) + (x + loop_emb)
        return self.mlp(aggr)


class PretrainGnnsEncoder(GraphEncoder):
    """The pretrain-gnns frame around a layer type: atom embeddings, layers, BatchNorm, ReLU, JK last."""

    featurizer = "pretrain_gnns"

    def __init__(self, num_layers: int, emb_dim: int, drop_ratio: float, layer: Callable[[int], nn.Module]):
        super().__init__()
        if num_layers < 1:
            raise ValueError("num_layers must be at least 1")
        self.num_layers, self.emb_dim, self.drop_ratio = num_layers, emb_dim, drop_ratio
        self.x_embedding1 = nn.Embedding(NUM_ATOM_TYPE, emb_dim)
        self.x_embedding2 = nn.Embedding(NUM_CHIRALITY_TAG, emb_dim)
        nn.init.xavier_uniform_(self.x_embedding1.weight)
        nn.init.xavier_uniform_(self.x_embedding2.weight)
        self.gnns = nn.ModuleList(layer(emb_dim) for _ in range(num_layers))
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(emb_dim) for _ in range(num_layers))

    def embed_atoms(self, x: torch.Tensor) -> torch.Tensor:
        """Input node embeddings from [atom type, chirality] indices."""
        return self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])

    def node_embeddings(self, batch) -> torch.Tensor:
        return self.propagate_from(self.embed_atoms(batch.x), batch.edge_index, batch.edge_attr)

    def propagate_from(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """Run the layers from given input node embeddings (used by strategies that perturb them)."""
        for layer in range(self.num_layers):
            h = self.batch_norms[layer](self.gnns[layer](h, edge_index, edge_attr))
            if layer < self.num_layers - 1:
                h = F.relu(h)
            h = F.dropout(h, self.drop_ratio, training=self.training)
        return h

    def config(self) -> dict[str, Any]:
        return {"num_layers": self.num_layers, "emb_dim": self.emb_dim, "drop_ratio": self.drop_ratio}


@ENCODERS.register("gin")
class GINEncoder(PretrainGnnsEncoder):
    """K-layer GIN with BatchNorm; ReLU on all but the last layer; last-layer node embeddings.

    Args:
        num_layers: message-passing layers (5 in the paper).
        emb_dim: hidden and output width (300 in the paper).
        drop_ratio: dropout after each layer (0 in the victims we build).
    """

    def __init__(self, num_layers: int = 5, emb_dim: int = 300, drop_ratio: float = 0.0):
        super().__init__(num_layers, emb_dim, drop_ratio, GINConv)
