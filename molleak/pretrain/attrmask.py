"""AttrMasking (Hu et al. 2020): mask 15% of atoms, predict their atom type from the GIN output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from molleak.data.featurize import MASK_ATOM_INDEX, NUM_ATOM_TYPE
from molleak.models.base import GraphEncoder
from molleak.pretrain._common import per_graph_mean
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


@STRATEGIES.register("attrmask")
class AttrMasking(PretrainStrategy):
    """Masked atom-type prediction.

    Args:
        mask_rate: fraction of atoms masked per molecule (at least one).
    """

    name = "attrmask"

    def __init__(self, encoder: GraphEncoder, mask_rate: float = 0.15):
        super().__init__(encoder, mask_rate=mask_rate)
        self.mask_rate = mask_rate
        self.head = nn.Linear(encoder.emb_dim, NUM_ATOM_TYPE - 1)

    def _masked_logits(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits and targets of the masked atoms, and the mask (one draw of torch's generator)."""
        x = batch.x.clone()
        n = x.size(0)
        # at least one masked atom per graph: pick by rank of a random key within each graph
        rand = torch.rand(n)
        mask = rand < self.mask_rate
        first = torch.full((batch.num_graphs,), -1.0).scatter_reduce(0, batch.batch, rand, reduce="amax")
        mask |= rand == first[batch.batch]
        target = x[mask, 0]
        x[mask, 0] = MASK_ATOM_INDEX
        x[mask, 1] = 0
        h = self.encoder.propagate_from(self.encoder.embed_atoms(x), batch.edge_index, batch.edge_attr)
        return self.head(h[mask]), target, mask

    def loss(self, batch) -> torch.Tensor:
        logits, target, _ = self._masked_logits(batch)
        return F.cross_entropy(logits, target)

    def loss_per_graph(self, batch) -> torch.Tensor:
        logits, target, mask = self._masked_logits(batch)
        return per_graph_mean(F.cross_entropy(logits, target, reduction="none"), batch.batch[mask], batch.num_graphs)
