"""What every encoder provides, GIN or not."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn
from torch_geometric.nn import global_mean_pool

from molleak.registry import Registry

ENCODERS: Registry[type[GraphEncoder]] = Registry("encoder")


class GraphEncoder(nn.Module):
    """A molecular graph encoder.

    Subclasses set `featurizer` (the name of the featuriser their inputs come from), implement
    `node_embeddings(batch)` and `config()` (the keyword arguments that rebuild them), and are
    registered in `ENCODERS`. The victim's embedding is the mean of the last layer's node
    embeddings over each graph.
    """

    featurizer: ClassVar[str] = "pretrain_gnns"
    emb_dim: int

    def node_embeddings(self, batch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, batch) -> torch.Tensor:
        return self.node_embeddings(batch)

    def graph_embeddings(self, batch) -> torch.Tensor:
        """Mean-pooled graph embeddings [num_graphs, emb_dim]."""
        return global_mean_pool(self.node_embeddings(batch), batch.batch, size=batch.num_graphs)

    def config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def load_encoders() -> Registry[type[GraphEncoder]]:
    """Import every encoder module in `molleak.models` so each registers itself."""
    import importlib
    import pkgutil

    import molleak.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in {"base", "checkpoint", "victim"}:
            importlib.import_module(f"molleak.models.{info.name}")
    return ENCODERS


def build_encoder(name: str, config: dict[str, Any]) -> GraphEncoder:
    """Build a registered encoder from its name and config."""
    return load_encoders().get(name)(**config)
