"""GraphMAE (Hou et al. 2022): masked atom-feature reconstruction with re-masking, a GNN decoder and SCE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from molleak.data.featurize import NUM_ATOM_TYPE
from molleak.models.base import GraphEncoder
from molleak.pretrain._common import GINDecoder, mask_atoms, per_graph_mean, random_node_mask
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


def scaled_cosine_error(pred: torch.Tensor, target: torch.Tensor, alpha: float) -> torch.Tensor:
    """GraphMAE's SCE: mean of (1 - cos(pred, target)) ** alpha."""
    cos = (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(-1)
    return (1 - cos).pow(alpha).mean()


@STRATEGIES.register("graphmae")
class GraphMAE(PretrainStrategy):
    """Mask atoms, encode, re-mask their codes, decode with one GIN layer, score the one-hot atom type by SCE.

    Args:
        mask_rate: fraction of atoms masked (at least one per molecule).
        alpha: SCE exponent.
    """

    name = "graphmae"

    def __init__(self, encoder: GraphEncoder, mask_rate: float = 0.25, alpha: float = 1.0):
        super().__init__(encoder, mask_rate=mask_rate, alpha=alpha)
        self.mask_rate, self.alpha = mask_rate, alpha
        d = encoder.emb_dim
        self.enc_to_dec = nn.Linear(d, d, bias=False)
        self.activation = nn.PReLU()
        self.decoder = GINDecoder(d, NUM_ATOM_TYPE - 1)

    def _masked_prediction(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = random_node_mask(batch, self.mask_rate)
        h = self.encoder.propagate_from(
            self.encoder.embed_atoms(mask_atoms(batch.x, mask)), batch.edge_index, batch.edge_attr
        )
        z = self.enc_to_dec(self.activation(h))
        z = z.masked_fill(mask.unsqueeze(1), 0.0)  # re-mask: the decoder must infer masked atoms from context
        pred = self.decoder(z, batch.edge_index, batch.edge_attr)
        target = F.one_hot(batch.x[mask, 0], NUM_ATOM_TYPE - 1).float()
        return pred[mask], target, mask

    def loss(self, batch) -> torch.Tensor:
        pred, target, _ = self._masked_prediction(batch)
        return scaled_cosine_error(pred, target, self.alpha)

    def loss_per_graph(self, batch) -> torch.Tensor:
        pred, target, mask = self._masked_prediction(batch)
        cos = (F.normalize(pred, dim=-1) * F.normalize(target, dim=-1)).sum(-1)
        return per_graph_mean((1 - cos).pow(self.alpha), batch.batch[mask], batch.num_graphs)
