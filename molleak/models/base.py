"""What every encoder provides, GIN or not."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

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
        return mean_pool(self.node_embeddings(batch), batch.batch, batch.num_graphs)

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


def mean_pool(x: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of the rows of `x` per graph (`index`: each row's graph), [size, dim]; empty graphs give 0.

    The same operations, in the same order, as PyTorch Geometric's `global_mean_pool` (a `scatter_add_`
    of ones for the counts, clamped at 1, a `scatter_add_` of the rows, a division), so its results and
    gradients are bitwise PyG's; written here so that encoding a molecule does not import PyG, whose
    import (it loads torch._dynamo) costs every molleak process and plan worker seconds.
    """
    count = x.new_zeros(size).scatter_add_(0, index, x.new_ones(x.size(0))).clamp(min=1)
    out = x.new_zeros((size, *x.shape[1:])).scatter_add_(0, index.view(-1, *([1] * (x.dim() - 1))).expand_as(x), x)
    return out / count.view(-1, *([1] * (x.dim() - 1))).expand_as(out)
