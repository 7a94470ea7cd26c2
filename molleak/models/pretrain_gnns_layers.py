"""The pretrain-gnns GCN, GraphSAGE and GAT encoders (Hu et al. 2020, `chem/model.py`), on PyTorch Geometric.

The same frame as the GIN (`molleak.models.gin`): atom embeddings `x_embedding1/2`, K layers each
followed by `batch_norms.{l}`, ReLU on all but the last, dropout (off in eval), the last layer's
node embeddings (JK = "last"). Every layer adds a self-loop to each node with bond type 4
(`SELF_LOOP_BOND_INDEX`) and direction 0, and embeds bonds with its own `edge_embedding1/2`.

* `GCNConv`: h = linear(x); out_i = sum_j norm_ij (h_j + e_ij), norm_ij = deg_i^-1/2 deg_j^-1/2, the
  degrees counted with the self-loop.
* `GraphSAGEConv`: h = linear(x); out_i = L2-normalise(mean_j (h_j + e_ij)).
* `GATConv`: h = weight_linear(x) split into `heads` heads; per head m_ij = h_j + e_ij,
  a_ij = softmax over the neighbours j of i of leaky_relu([h_i, m_ij] . att, 0.2); out_i = mean over
  heads of sum_j a_ij m_ij, plus bias. (The attention sees the target's h_i without its bond term.)

Parameter names are the published ones (`gnns.{l}.linear`, `gnns.{l}.weight_linear`, `gnns.{l}.att`,
`gnns.{l}.bias`), so the released `chem/model_architecture/*.pth` files load with `strict=True`;
`tests/unit/test_published.py` checks every forward pass against a dense re-implementation.
Molecular graphs hold both directions of every bond with the same features, so which end of an
edge is the "source" does not change any of these layers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.inits import glorot
from torch_geometric.utils import softmax

from molleak.data.featurize import (
    NUM_BOND_DIRECTION,
    NUM_BOND_TYPE,
    SELF_LOOP_BOND_INDEX,
)
from molleak.models.base import ENCODERS
from molleak.models.gin import PretrainGnnsEncoder, _remove_generated_propagate_file


def _bond_embeddings(width: int) -> tuple[nn.Embedding, nn.Embedding]:
    one, two = nn.Embedding(NUM_BOND_TYPE, width), nn.Embedding(NUM_BOND_DIRECTION, width)
    nn.init.xavier_uniform_(one.weight)
    nn.init.xavier_uniform_(two.weight)
    return one, two


def _with_self_loops(conv: nn.Module, x: torch.Tensor, edge_index: torch.Tensor,
                     edge_attr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges plus one self-loop per node (bond type 4, direction 0), and every edge's bond embedding."""
    n = x.size(0)
    loops = torch.arange(n, device=edge_index.device)
    edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
    loop_attr = torch.zeros(n, 2, dtype=edge_attr.dtype, device=edge_attr.device)
    loop_attr[:, 0] = SELF_LOOP_BOND_INDEX
    edge_attr = torch.cat([edge_attr, loop_attr], dim=0)
    return edge_index, conv.edge_embedding1(edge_attr[:, 0]) + conv.edge_embedding2(edge_attr[:, 1])


class GCNConv(MessagePassing):
    """GCN layer: linear, then a degree-normalised sum of (neighbour + bond embedding)."""

    def __init__(self, emb_dim: int):
        super().__init__(aggr="add")
        _remove_generated_propagate_file(self)
        self.linear = nn.Linear(emb_dim, emb_dim)
        self.edge_embedding1, self.edge_embedding2 = _bond_embeddings(emb_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        edge_index, edge_emb = _with_self_loops(self, x, edge_index, edge_attr)
        target = edge_index[1]  # where messages are summed
        deg = torch.zeros(x.size(0), dtype=x.dtype, device=x.device).index_add_(
            0, target, torch.ones(target.numel(), dtype=x.dtype, device=x.device))
        inv_sqrt = deg.pow(-0.5)
        inv_sqrt[torch.isinf(inv_sqrt)] = 0
        norm = inv_sqrt[edge_index[0]] * inv_sqrt[target]
        return self.propagate(edge_index, x=self.linear(x), edge_attr=edge_emb, norm=norm)

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
        return norm.view(-1, 1) * (x_j + edge_attr)


class GraphSAGEConv(MessagePassing):
    """GraphSAGE layer: linear, mean of (neighbour + bond embedding), L2-normalised."""

    def __init__(self, emb_dim: int):
        super().__init__(aggr="mean")
        _remove_generated_propagate_file(self)
        self.linear = nn.Linear(emb_dim, emb_dim)
        self.edge_embedding1, self.edge_embedding2 = _bond_embeddings(emb_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        edge_index, edge_emb = _with_self_loops(self, x, edge_index, edge_attr)
        return self.propagate(edge_index, x=self.linear(x), edge_attr=edge_emb)

    def message(self, x_j: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return x_j + edge_attr

    def update(self, aggr_out: torch.Tensor) -> torch.Tensor:
        return F.normalize(aggr_out, p=2, dim=-1)


class GATConv(MessagePassing):
    """GAT layer: `heads` attention heads over (neighbour + bond embedding), averaged, plus a bias."""

    def __init__(self, emb_dim: int, heads: int = 2, negative_slope: float = 0.2):
        super().__init__(aggr="add", node_dim=0)  # x is [nodes, heads, emb_dim]
        _remove_generated_propagate_file(self)
        self.emb_dim, self.heads, self.negative_slope = emb_dim, heads, negative_slope
        self.weight_linear = nn.Linear(emb_dim, heads * emb_dim)
        self.att = nn.Parameter(torch.empty(1, heads, 2 * emb_dim))
        self.bias = nn.Parameter(torch.zeros(emb_dim))
        glorot(self.att)
        self.edge_embedding1, self.edge_embedding2 = _bond_embeddings(heads * emb_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        edge_index, edge_emb = _with_self_loops(self, x, edge_index, edge_attr)
        h = self.weight_linear(x).view(-1, self.heads, self.emb_dim)
        return self.propagate(edge_index, x=h, edge_attr=edge_emb.view(-1, self.heads, self.emb_dim))

    def message(self, x_i: torch.Tensor, x_j: torch.Tensor, edge_attr: torch.Tensor, index: torch.Tensor,
                size_i: int | None) -> torch.Tensor:
        m = x_j + edge_attr
        alpha = F.leaky_relu((torch.cat([x_i, m], dim=-1) * self.att).sum(dim=-1), self.negative_slope)
        alpha = softmax(alpha, index, num_nodes=size_i)  # over the edges into each target node
        return m * alpha.unsqueeze(-1)

    def update(self, aggr_out: torch.Tensor) -> torch.Tensor:
        return aggr_out.mean(dim=1) + self.bias


@ENCODERS.register("gcn")
class GCNEncoder(PretrainGnnsEncoder):
    """K-layer pretrain-gnns GCN (5 x 300 in the paper)."""

    def __init__(self, num_layers: int = 5, emb_dim: int = 300, drop_ratio: float = 0.0):
        super().__init__(num_layers, emb_dim, drop_ratio, GCNConv)


@ENCODERS.register("graphsage")
class GraphSAGEEncoder(PretrainGnnsEncoder):
    """K-layer pretrain-gnns GraphSAGE (5 x 300 in the paper)."""

    def __init__(self, num_layers: int = 5, emb_dim: int = 300, drop_ratio: float = 0.0):
        super().__init__(num_layers, emb_dim, drop_ratio, GraphSAGEConv)


@ENCODERS.register("gat")
class GATEncoder(PretrainGnnsEncoder):
    """K-layer pretrain-gnns GAT (5 x 300, 2 heads in the paper)."""

    def __init__(self, num_layers: int = 5, emb_dim: int = 300, heads: int = 2, drop_ratio: float = 0.0):
        if heads < 1:
            raise ValueError("heads must be at least 1")
        super().__init__(num_layers, emb_dim, drop_ratio, lambda dim: GATConv(dim, heads))
        self.heads = heads

    def config(self) -> dict[str, Any]:
        return {"num_layers": self.num_layers, "emb_dim": self.emb_dim, "heads": self.heads,
                "drop_ratio": self.drop_ratio}
