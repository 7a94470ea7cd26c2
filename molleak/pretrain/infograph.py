"""InfoGraph (Sun et al. 2020): maximise local-global mutual information with the JSD estimator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import global_mean_pool

from molleak.models.base import GraphEncoder
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


class _FF(nn.Module):
    """InfoGraph's discriminator feature map: a 3-layer MLP plus a linear shortcut."""

    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
                                   nn.Linear(dim, dim), nn.ReLU())
        self.shortcut = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + self.shortcut(x)


@STRATEGIES.register("infograph")
class InfoGraph(PretrainStrategy):
    """Each atom's embedding against its own molecule's summary (positive) and other molecules' (negatives).

    The summary is the victim's own readout (mean of last-layer node embeddings), so the mutual
    information is maximised on the representation the attack sees.
    """

    name = "infograph"

    def __init__(self, encoder: GraphEncoder):
        super().__init__(encoder)
        self.local_d = _FF(encoder.emb_dim)
        self.global_d = _FF(encoder.emb_dim)

    def loss(self, batch) -> torch.Tensor:
        h = self.encoder.node_embeddings(batch)
        g = global_mean_pool(h, batch.batch, size=batch.num_graphs)
        scores = self.local_d(h) @ self.global_d(g).T  # [atoms, graphs]
        pos = F.one_hot(batch.batch, batch.num_graphs).bool()
        log2 = math.log(2.0)
        e_pos = (log2 - F.softplus(-scores))[pos].mean()
        e_neg = (F.softplus(-scores) + scores - log2)[~pos].mean()
        return e_neg - e_pos
