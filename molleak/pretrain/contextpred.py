"""ContextPred (Hu et al. 2020): a K-hop neighbourhood must recognise its own context ring.

For a random centre atom, the substructure is its K-hop neighbourhood (K = encoder depth) and the
context is the ring of atoms between r1 = K - 1 and r2 = r1 + csize hops. A separate context GIN
encodes the context graph; the mean of its anchor atoms (the ring atoms also inside the
substructure) must score high against the substructure's centre embedding and low against the
contexts of other molecules in the batch (negative sampling by cyclic shift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from torch_geometric.nn import global_mean_pool

from molleak.data.featurize import FEATURIZERS, GraphBatch, MolGraph
from molleak.models.base import GraphEncoder, build_encoder
from molleak.pretrain._common import numpy_rng, subgraph, zero_loss
from molleak.pretrain.base import STRATEGIES, PretrainStrategy

_FAR = np.iinfo(np.int16).max


def hop_distances(g: MolGraph) -> np.ndarray:
    """All-pairs bond-count distances [n, n] (int16; unreachable = int16 max)."""
    n = g.num_nodes
    adj = coo_matrix((np.ones(g.edge_index.shape[1]), (g.edge_index[0], g.edge_index[1])), shape=(n, n))
    d = shortest_path(adj, method="D", unweighted=True, directed=False)
    d[~np.isfinite(d)] = _FAR
    return d.astype(np.int16)


@dataclass
class ContextBatch:
    """Substructures with their centre atoms, and context graphs with their anchor atoms."""

    sub: GraphBatch
    center: torch.Tensor  # [G] centre atom index within `sub`
    ctx: GraphBatch
    anchor: torch.Tensor  # anchor atom indices within `ctx`
    anchor_graph: torch.Tensor  # which pair each anchor belongs to
    num_pairs: int


@STRATEGIES.register("contextpred")
class ContextPred(PretrainStrategy):
    """Substructure-context pair discrimination with negative sampling.

    Args:
        csize: context ring width in hops (r2 - r1; also the context encoder's depth).
        neg_samples: negative contexts per substructure.
    """

    name = "contextpred"

    def __init__(self, encoder: GraphEncoder, csize: int = 3, neg_samples: int = 1):
        super().__init__(encoder, csize=csize, neg_samples=neg_samples)
        self.csize, self.neg_samples = csize, neg_samples
        self.k = int(encoder.config()["num_layers"])
        self.r1, self.r2 = self.k - 1, self.k - 1 + csize
        self.context_encoder = build_encoder("gin", {"num_layers": csize, "emb_dim": encoder.emb_dim})

    def prepare(self, graph: MolGraph):
        return graph, hop_distances(graph)

    def collate(self, items):
        rng = numpy_rng()
        coll = FEATURIZERS.get(self.encoder.featurizer).collate
        subs, ctxs, centers, anchors = [], [], [], []
        for g, dist in items:
            c = int(rng.integers(g.num_nodes))
            d = dist[c]
            sub_keep = d <= self.k
            ctx_keep = (d >= self.r1) & (d <= self.r2)
            anchor_keep = ctx_keep & sub_keep
            if not anchor_keep.any():
                continue  # a molecule too small to have a context ring teaches nothing here
            subs.append(subgraph(g, sub_keep))
            centers.append(int(sub_keep[:c].sum()))
            ctxs.append(subgraph(g, ctx_keep))
            anchors.append(np.flatnonzero(anchor_keep[ctx_keep]))
        if not subs:
            return None
        sub, ctx = coll(subs), coll(ctxs)
        sub_off = np.concatenate(([0], np.cumsum([s.num_nodes for s in subs])[:-1]))
        ctx_off = np.concatenate(([0], np.cumsum([s.num_nodes for s in ctxs])[:-1]))
        return ContextBatch(
            sub=sub,
            center=torch.as_tensor(np.asarray(centers) + sub_off),
            ctx=ctx,
            anchor=torch.as_tensor(np.concatenate([a + o for a, o in zip(anchors, ctx_off, strict=True)])),
            anchor_graph=torch.as_tensor(np.repeat(np.arange(len(anchors)), [a.size for a in anchors])),
            num_pairs=len(subs),
        )

    def loss(self, batch: ContextBatch | None) -> torch.Tensor:
        if batch is None or batch.num_pairs < 2:
            return zero_loss(self)
        h_sub = self.encoder.node_embeddings(batch.sub)[batch.center]
        h_ctx = self.context_encoder.node_embeddings(batch.ctx)[batch.anchor]
        ctx_rep = global_mean_pool(h_ctx, batch.anchor_graph, size=batch.num_pairs)
        pos = (h_sub * ctx_rep).sum(-1)
        neg = torch.cat([(h_sub * ctx_rep.roll(i + 1, dims=0)).sum(-1) for i in range(self.neg_samples)])
        return (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
                + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
