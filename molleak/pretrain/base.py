"""The strategy interface: an encoder, the heads its pre-training loss needs, and that loss."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, ClassVar

import torch
from torch import nn

from molleak.data.featurize import FEATURIZERS
from molleak.models.base import GraphEncoder
from molleak.registry import Registry

STRATEGIES: Registry[type[PretrainStrategy]] = Registry("pre-training strategy")


class PretrainStrategy(nn.Module):
    """A self-supervised pre-training objective over an encoder.

    Subclasses register with `@STRATEGIES.register(name)`, build their heads in `__init__`
    (keyword hyperparameters only, all JSON-serialisable and returned by `hparams()`), and
    implement `loss(batch)`. `prepare` (per graph, e.g. sampling a context) and `collate`
    (graphs -> batch) default to the encoder's featuriser. All randomness must come from torch's
    global generator, which the trainer seeds per epoch, so a resumed run repeats exactly.
    """

    name: ClassVar[str]
    encoder_name: ClassVar[str] = "gin"
    #: True for supervised fine-tuning strategies: the trainer then pairs each graph with a target
    needs_targets: ClassVar[bool] = False
    #: Bumped when a change to the strategy's code or defaults changes the weights a config trains,
    #: so victims, reference victims and shadows built by an older recipe are rebuilt, not reused.
    recipe_version: ClassVar[int] = 1

    def __init__(self, encoder: GraphEncoder, **hparams: Any):
        super().__init__()
        self.encoder = encoder
        self._hparams = dict(hparams)

    def hparams(self) -> dict[str, Any]:
        return dict(self._hparams)

    def prepare(self, graph: Any) -> Any:
        return graph

    def collate(self, items: list[Any]) -> Any:
        return FEATURIZERS.get(self.encoder.featurizer).collate(items)

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch (0-based); multi-phase strategies switch here."""

    def extra_state(self) -> dict[str, Any] | None:
        """Weights beyond the encoder that the saved victim carries: the pretext heads.

        The served or embedded victim uses the encoder only; the heads are what the owner's
        white-box audit needs to compute each molecule's pretext loss (`molleak.pretrain.whitebox`).
        """
        heads = {k: v.detach().cpu() for k, v in self.state_dict().items() if not k.startswith("encoder.")}
        return {"strategy_state": heads} if heads else None

    def loss_per_graph(self, batch: Any) -> torch.Tensor:
        """The pretext loss of each molecule of a collated batch, [num_graphs] (white-box membership).

        Strategies whose loss is a mean over atoms or graphs return the per-molecule terms of that
        mean; contrastive ones return each molecule's row of the batch loss (it depends on the
        other molecules of the batch, which the white-box audit keeps fixed across models).
        Strategies without one raise `NotImplementedError`.
        """
        raise NotImplementedError(f"strategy {self.name} has no per-molecule loss")

    @classmethod
    def has_loss_per_graph(cls) -> bool:
        return cls.loss_per_graph is not PretrainStrategy.loss_per_graph

    def loss(self, batch: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def load_strategies() -> Registry[type[PretrainStrategy]]:
    """Import every strategy module in this package so each registers itself."""
    import molleak.pretrain as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in {"base", "trainer"}:
            importlib.import_module(f"molleak.pretrain.{info.name}")
    return STRATEGIES
