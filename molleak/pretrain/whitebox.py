"""White-box access: a saved victim with its pretext heads, and each molecule's pretext loss.

This is what the model's owner has and a user of the shared encoder does not: the heads the
victim was pre-trained with (saved in the checkpoint's `extra_state["strategy_state"]`), so the
loss the training minimised can be evaluated molecule by molecule. The owner's membership audit
reports it as the upper bound of what leaks.

The randomness of a pretext loss (which atoms are masked, which augmentation is drawn) is fixed by
`seed` and the order of the molecules, so every model scored on the same list sees exactly the same
masks and views: a per-molecule statistic comparable across the victim and its shadows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from molleak.errors import CheckpointError, MolleakError
from molleak.models.checkpoint import load_encoder, read_checkpoint_file
from molleak.pretrain.base import PretrainStrategy, load_strategies
from molleak.pretrain.trainer import PretrainConfig, build_strategy, featurize_all

#: per-molecule losses are floored here before the log, so a loss of exactly 0 stays finite
LOSS_FLOOR = 1e-8


def load_strategy(path: str | Path) -> PretrainStrategy:
    """The strategy (encoder and pretext heads) a victim checkpoint was trained with, in eval mode.

    Raises:
        CheckpointError: the checkpoint has no pre-training config, or no saved heads (a checkpoint
            written before heads were kept, or an imported one).
        MolleakError: the strategy has no per-molecule loss.
    """
    path = Path(path)
    obj = read_checkpoint_file(path)
    prov = obj.get("provenance", {}) if isinstance(obj.get("provenance"), dict) else {}
    cfg = prov.get("config")
    if not isinstance(cfg, dict) or "strategy" not in cfg:
        raise CheckpointError(f"checkpoint {path} carries no pre-training config: white-box losses need the recipe")
    config = PretrainConfig(**cfg)
    cls = load_strategies().get(config.strategy)
    if not cls.has_loss_per_graph():
        raise MolleakError(f"strategy {config.strategy} has no per-molecule loss: no white-box statistic for {path}")
    heads = (obj.get("extra_state") or {}).get("strategy_state")
    encoder, _ = load_encoder(path)
    strategy = build_strategy(config, encoder)
    own = {k for k in strategy.state_dict() if not k.startswith("encoder.")}
    if own and not isinstance(heads, dict):
        raise CheckpointError(f"checkpoint {path} was saved without its pretext heads; rebuild it to audit it "
                              "white-box")
    if own:
        missing, unexpected = own - set(heads), set(heads) - own
        if missing or unexpected:
            raise CheckpointError(f"checkpoint {path}: pretext heads do not fit strategy {config.strategy} "
                                  f"(missing {sorted(missing)[:2]}, unexpected {sorted(unexpected)[:2]})")
        strategy.load_state_dict({**{f"encoder.{k}": v for k, v in encoder.state_dict().items()}, **heads})
    return strategy.eval()


@torch.no_grad()
def per_molecule_losses(
    strategy: PretrainStrategy,
    smiles: Sequence[str],
    *,
    draws: int = 4,
    seed: int = 0,
    batch_size: int = 64,
    targets: Sequence[float] | None = None,
) -> np.ndarray:
    """Each molecule's pretext loss, averaged over `draws` fixed draws of masks/augmentations, [n] float64.

    Molecules are scored in the given order in chunks of `batch_size`, and draw d seeds torch with
    (seed, d) before the first chunk, so two models scored on the same list see the same draws.

    Raises:
        MolleakError: a SMILES is invalid, or targets are missing for a supervised strategy.
    """
    if draws < 1:
        raise MolleakError(f"white-box losses need at least one draw, got {draws}")
    if strategy.needs_targets != (targets is not None):
        raise MolleakError(f"strategy {strategy.name}: per-molecule losses "
                           f"{'need' if strategy.needs_targets else 'take no'} targets")
    graphs = [strategy.prepare(g) for g in featurize_all(list(smiles), strategy.encoder.featurizer, "white-box set")]
    if targets is not None:
        graphs = [(g, float(t)) for g, t in zip(graphs, targets, strict=True)]
    strategy.eval()
    total = np.zeros(len(graphs), dtype=np.float64)
    for d in range(draws):
        torch.manual_seed(int(np.random.SeedSequence([seed, d]).generate_state(1)[0]))
        for start in range(0, len(graphs), batch_size):
            chunk = graphs[start : start + batch_size]
            losses = strategy.loss_per_graph(strategy.collate(chunk))
            total[start : start + len(chunk)] += losses.double().numpy()
    return total / draws


def loss_statistic(losses: np.ndarray) -> np.ndarray:
    """The membership statistic of a per-molecule loss: -log(loss), higher = more member-like.

    For a cross-entropy loss this is close to the logit of the probability of the right answer
    (the scale on which LiRA's Gaussians fit, Carlini et al. 2022); for squared errors and cosine
    errors it makes the heavy right tail near-Gaussian.
    """
    return -np.log(np.maximum(np.asarray(losses, dtype=np.float64), LOSS_FLOOR))
