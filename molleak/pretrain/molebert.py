"""Mole-BERT (Xia et al. 2023): a context-aware VQ atom tokenizer, then masked atom modelling over its tokens.

Phase 1 (the first `tokenizer_epochs` epochs) trains the tokenizer alone: a GIN whose atom states
are quantised to the nearest code of a codebook split by element (carbon, nitrogen, oxygen, other,
in Mole-BERT's 377/55/54/26 proportions), with a GIN decoder reconstructing the atom types
(VQ-VAE loss). Phase 2 freezes it and trains the victim encoder: masked atom modelling (predict
each masked atom's token) plus triplet masked contrastive learning (the 15%-masked view must be
closer to the intact molecule than the 30%-masked view, and the two masked views are contrasted
against other molecules with NT-Xent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import global_mean_pool

from molleak.data.featurize import NUM_ATOM_TYPE
from molleak.errors import MolleakError
from molleak.models.base import GraphEncoder, build_encoder
from molleak.pretrain._common import GINDecoder, mask_atoms, nt_xent, random_node_mask
from molleak.pretrain.base import STRATEGIES, PretrainStrategy

#: element groups of the codebook (atom type index = atomic number - 1) and their share of the codes
_GROUP_OF_TYPE = {5: 0, 6: 1, 7: 2}  # C, N, O; everything else is group 3
_GROUP_SHARE = (377, 55, 54, 26)


class VQTokenizer(nn.Module):
    """GIN encoder + element-grouped codebook + GIN decoder (the Mole-BERT tokenizer)."""

    def __init__(self, encoder_config: dict, codebook_size: int, commitment: float):
        super().__init__()
        self.gnn = build_encoder("gin", encoder_config)
        d = self.gnn.emb_dim
        self.codebook = nn.Embedding(codebook_size, d)
        nn.init.uniform_(self.codebook.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        self.decoder = GINDecoder(d, NUM_ATOM_TYPE - 1)
        self.commitment = commitment
        total = sum(_GROUP_SHARE)
        sizes = [max(1, codebook_size * s // total) for s in _GROUP_SHARE[:3]]
        sizes.append(codebook_size - sum(sizes))
        if sizes[-1] < 1:
            raise MolleakError(f"molebert codebook_size {codebook_size} is too small for four element groups")
        group = torch.repeat_interleave(torch.arange(4), torch.tensor(sizes))
        self.register_buffer("code_group", group, persistent=False)

    @staticmethod
    def atom_group(x: torch.Tensor) -> torch.Tensor:
        g = torch.full((x.size(0),), 3, dtype=torch.long)
        for t, grp in _GROUP_OF_TYPE.items():
            g[x[:, 0] == t] = grp
        return g

    def quantize(self, z: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest code of each atom's own element group: (code indices, quantised vectors)."""
        dist = torch.cdist(z, self.codebook.weight)
        wrong_group = self.atom_group(x).unsqueeze(1) != self.code_group.unsqueeze(0)
        idx = dist.masked_fill(wrong_group, float("inf")).argmin(1)
        return idx, self.codebook(idx)

    def loss(self, batch) -> torch.Tensor:
        z = self.gnn.node_embeddings(batch)
        _, e = self.quantize(z, batch.x)
        vq = F.mse_loss(e, z.detach()) + self.commitment * F.mse_loss(z, e.detach())
        zq = z + (e - z).detach()  # straight-through estimator
        logits = self.decoder(zq, batch.edge_index, batch.edge_attr)
        return F.cross_entropy(logits, batch.x[:, 0]) + vq

    @torch.no_grad()
    def tokens(self, batch) -> torch.Tensor:
        return self.quantize(self.gnn.node_embeddings(batch), batch.x)[0]


@STRATEGIES.register("molebert")
class MoleBERT(PretrainStrategy):
    """Tokenizer phase, then masked atom modelling + triplet masked contrastive learning.

    Args:
        codebook_size: tokens in the codebook (split by element).
        commitment: VQ commitment weight.
        tokenizer_epochs: epochs of phase 1 (default: a third of the run, at least one).
        mask_rate: atoms masked for MAM and the positive view; `mask_rate_2` for the negative view.
        margin: triplet margin.
        cl_weight: weight of the NT-Xent term; `temperature` its temperature.
    """

    name = "molebert"

    def __init__(self, encoder: GraphEncoder, codebook_size: int = 512, commitment: float = 0.25,
                 tokenizer_epochs: int | None = None, mask_rate: float = 0.15, mask_rate_2: float = 0.30,
                 margin: float = 0.1, cl_weight: float = 0.1, temperature: float = 0.1):
        super().__init__(encoder, codebook_size=codebook_size, commitment=commitment,
                         tokenizer_epochs=tokenizer_epochs, mask_rate=mask_rate, mask_rate_2=mask_rate_2,
                         margin=margin, cl_weight=cl_weight, temperature=temperature)
        self.tokenizer = VQTokenizer(encoder.config(), codebook_size, commitment)
        self.head = nn.Linear(encoder.emb_dim, codebook_size)
        self.tokenizer_epochs = tokenizer_epochs
        self.mask_rate, self.mask_rate_2 = mask_rate, mask_rate_2
        self.margin, self.cl_weight, self.temperature = margin, cl_weight, temperature
        self.phase = "tokenizer"

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        n_tok = self.tokenizer_epochs if self.tokenizer_epochs is not None else max(1, round(epochs / 3))
        if n_tok >= epochs:
            raise MolleakError(
                f"molebert needs more epochs ({epochs}) than tokenizer epochs ({n_tok}): "
                "it trains the tokenizer first, then the encoder"
            )
        self.phase = "tokenizer" if epoch < n_tok else "mam"

    def _masked_view(self, batch, rate: float) -> tuple[torch.Tensor, torch.Tensor]:
        mask = random_node_mask(batch, rate)
        h = self.encoder.propagate_from(
            self.encoder.embed_atoms(mask_atoms(batch.x, mask)), batch.edge_index, batch.edge_attr
        )
        return mask, h

    def loss(self, batch) -> torch.Tensor:
        if self.phase == "tokenizer":
            return self.tokenizer.loss(batch)
        self.tokenizer.eval()  # frozen: fixed BatchNorm statistics, no gradients
        tokens = self.tokenizer.tokens(batch)
        mask1, h1 = self._masked_view(batch, self.mask_rate)
        mam = F.cross_entropy(self.head(h1[mask1]), tokens[mask1])
        _, h2 = self._masked_view(batch, self.mask_rate_2)
        pool = lambda h: global_mean_pool(h, batch.batch, size=batch.num_graphs)  # noqa: E731
        g0, g1, g2 = pool(self.encoder.node_embeddings(batch)), pool(h1), pool(h2)
        tri = F.triplet_margin_loss(g0, g1, g2, margin=self.margin)
        return mam + tri + self.cl_weight * nt_xent(g1, g2, self.temperature)
