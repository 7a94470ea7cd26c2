"""EdgePred (Hu et al. 2020): score bonded atom pairs above random non-bonded pairs of the same molecule."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from molleak.models.base import GraphEncoder
from molleak.pretrain._common import per_graph_mean, zero_loss
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


@STRATEGIES.register("edgepred")
class EdgePred(PretrainStrategy):
    """Link prediction: inner product of node embeddings, binary cross-entropy against sampled negatives.

    Args:
        neg_ratio: negative pairs drawn per bond (pairs that are bonds or self-pairs are dropped).
        scaled: divide each inner product by sqrt(embedding width) before the sigmoid. Hu et al.
            use the raw inner product; on BatchNorm-ed 300-wide node states that starts the logits
            in the hundreds (initial loss about 60), and within two epochs the last layer's ReLUs
            all die and every molecule embeds to one point (seen for both our standard-tier victim
            and its reference). Scaling keeps the objective and its optimum and starts it unsaturated.
    """

    name = "edgepred"
    recipe_version = 2  # 2: inner products scaled by 1/sqrt(width) (the collapse fix)

    def __init__(self, encoder: GraphEncoder, neg_ratio: int = 1, scaled: bool = True):
        super().__init__(encoder, neg_ratio=neg_ratio, scaled=scaled)
        self.neg_ratio = neg_ratio
        self.scaled = scaled

    def _scores(self, batch):
        """Logits of the bonds and of the sampled non-bonded pairs, and the graph of each (None: no bond)."""
        h = self.encoder.node_embeddings(batch)
        ei = batch.edge_index
        pos = ei[:, ei[0] < ei[1]]
        if pos.size(1) == 0:
            return None
        sizes = torch.bincount(batch.batch, minlength=batch.num_graphs)
        ptr = torch.cumsum(sizes, 0) - sizes
        g = batch.batch[pos[0]].repeat(self.neg_ratio)
        u = ptr[g] + (torch.rand(g.size(0)) * sizes[g]).long()
        v = ptr[g] + (torch.rand(g.size(0)) * sizes[g]).long()
        n = h.size(0)
        is_edge = torch.isin(u * n + v, ei[0] * n + ei[1])
        keep = (u != v) & ~is_edge
        pos_score = (h[pos[0]] * h[pos[1]]).sum(-1)
        neg_score = (h[u[keep]] * h[v[keep]]).sum(-1)
        if self.scaled:
            scale = h.size(1) ** -0.5
            pos_score, neg_score = pos_score * scale, neg_score * scale
        return pos_score, neg_score, batch.batch[pos[0]], g[keep]

    def loss(self, batch) -> torch.Tensor:
        scores = self._scores(batch)
        if scores is None:
            return zero_loss(self)
        pos_score, neg_score, _, _ = scores
        loss = F.binary_cross_entropy_with_logits(pos_score, torch.ones_like(pos_score))
        if neg_score.numel():
            loss = loss + F.binary_cross_entropy_with_logits(neg_score, torch.zeros_like(neg_score))
        return loss

    def loss_per_graph(self, batch) -> torch.Tensor:
        """Each molecule's mean BCE over its bonds plus its mean over its sampled non-bonded pairs."""
        scores = self._scores(batch)
        if scores is None:
            return torch.zeros(batch.num_graphs)
        pos_score, neg_score, pos_graph, neg_graph = scores
        bce = F.binary_cross_entropy_with_logits
        loss = per_graph_mean(bce(pos_score, torch.ones_like(pos_score), reduction="none"), pos_graph, batch.num_graphs)
        if neg_score.numel():
            neg = per_graph_mean(bce(neg_score, torch.zeros_like(neg_score), reduction="none"), neg_graph,
                                 batch.num_graphs)
            loss = loss + torch.nan_to_num(neg, nan=0.0)
        return torch.nan_to_num(loss, nan=0.0)
