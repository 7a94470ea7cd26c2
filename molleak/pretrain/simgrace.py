"""SimGRACE (Xia et al. 2022): contrast the encoder with a weight-perturbed copy of itself, no augmentation."""

from __future__ import annotations

import torch
from torch.func import functional_call
from torch_geometric.nn import global_mean_pool

from molleak.models.base import GraphEncoder
from molleak.pretrain._common import nt_xent, nt_xent_rows, projection_head
from molleak.pretrain.base import STRATEGIES, PretrainStrategy


def _perturbed(module: torch.nn.Module, eta: float) -> dict[str, torch.Tensor]:
    """Parameters plus Gaussian noise scaled by each tensor's std (SimGRACE), and copies of the buffers."""
    out = {}
    for name, p in module.named_parameters():
        p = p.detach()
        scale = p.std() if p.numel() > 1 else p.abs()
        out[name] = p + eta * torch.randn_like(p) * scale
    # copies, so the perturbed pass does not move the real encoder's BatchNorm statistics
    out.update({name: b.detach().clone() for name, b in module.named_buffers()})
    return out


@STRATEGIES.register("simgrace")
class SimGRACE(PretrainStrategy):
    """NT-Xent between the encoder's and a perturbed encoder's graph embeddings, both through one projection head.

    Args:
        eta: perturbation magnitude (noise std = eta * std of each weight tensor).
        temperature: NT-Xent temperature.
        perturb_head: also perturb the projection head for the target view (recipe version 1).
    """

    name = "simgrace"
    recipe_version = 2  # 2: the projection head is not perturbed (as in SimGRACE's code)

    def __init__(self, encoder: GraphEncoder, eta: float = 1.0, temperature: float = 0.2,
                 perturb_head: bool = False):
        super().__init__(encoder, eta=eta, temperature=temperature, perturb_head=perturb_head)
        self.eta, self.temperature, self.perturb_head = eta, temperature, perturb_head
        self.proj = projection_head(encoder.emb_dim)

    def perturbed_view(self, batch) -> torch.Tensor:
        """The target view: a weight-perturbed copy of the encoder, then the unperturbed projection head.

        SimGRACE perturbs the encoder only (its code copies `proj_head` unchanged into the perturbed
        model); recipe version 1 also perturbed the head, which only added noise to the target.
        The view is a fixed target (no gradient), as in SimGRACE.
        """
        with torch.no_grad():
            h2 = functional_call(self.encoder, _perturbed(self.encoder, self.eta), (batch,))
            g2 = global_mean_pool(h2, batch.batch, size=batch.num_graphs)
            if self.perturb_head:
                return functional_call(self.proj, _perturbed(self.proj, self.eta), (g2,))
            return self.proj(g2)

    def loss(self, batch) -> torch.Tensor:
        z1 = self.proj(self.encoder.graph_embeddings(batch))
        return nt_xent(z1, self.perturbed_view(batch), self.temperature)

    def loss_per_graph(self, batch) -> torch.Tensor:
        z1 = self.proj(self.encoder.graph_embeddings(batch))
        return nt_xent_rows(z1, self.perturbed_view(batch), self.temperature)
