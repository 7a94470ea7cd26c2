"""The one victim builder: build or reuse a victim, reference victim, untrained encoder or shadow.

Every model molleak trains goes through `ensure_victim`, so there is one rule for reuse: a
checkpoint at `out` is reused only when its provenance says it was made by the current recipe
version of the same config (strategy, encoder, epochs, batch size, learning rate, seed), on
training data with the same sha256 (and, for a fine-tune, from a base checkpoint with the same
sha256). Anything else is rebuilt. The role is recorded in the checkpoint's provenance.

Roles and what they are for:

- `victim`: the owner's model, trained on its private set;
- `reference`: the victim's recipe and seed on disjoint data (the owner's leakage control: same
  initial weights, other data);
- `untrained`: the victim's encoder at its seeded random initialisation;
- `shadow`: the attacker's own model of the victim's published recipe, trained on the attacker's
  data with the attacker's seed (the caller passes one independent of the victim's).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from molleak.errors import CheckpointError, MolleakError
from molleak.rundir import Role
from molleak.runs import sha256_file, sha256_lines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """What `ensure_victim` did: the checkpoint, whether it was reused, and its provenance."""

    path: Path
    reused: bool
    provenance: dict[str, Any]


def _provenance(path: Path) -> dict[str, Any] | None:
    from molleak.models.checkpoint import read_checkpoint_file

    if not path.exists():
        return None
    try:
        return dict(read_checkpoint_file(path).get("provenance", {}) or {})
    except (CheckpointError, MolleakError) as exc:
        log.warning("rebuilding %s: %s", path, exc)
        return None


def _train_sha(smiles: Sequence[str], targets: Sequence[float] | None) -> str:
    """The training data's sha256 as the trainer records it (targets are part of a supervised set)."""
    if targets is None:
        return sha256_lines(list(smiles))
    return sha256_lines([f"{s}\t{float(t)!r}" for s, t in zip(smiles, targets, strict=True)])


def _untrained_provenance(recipe: Any) -> dict[str, Any]:
    return {"strategy": "untrained", "config": asdict(recipe), "untrained_of": recipe.strategy, "seed": recipe.seed,
            "role": str(Role.UNTRAINED)}


def ensure_victim(
    role: Role | str,
    recipe: Any,
    data: Sequence[str] | None,
    seed: int | None,
    out: str | Path,
    *,
    train_name: str = "",
    init_from: str | Path | None = None,
    targets: Sequence[float] | None = None,
    extra_provenance: dict[str, Any] | None = None,
    progress: bool = False,
) -> Built:
    """Build, or reuse when `out` already holds it, one model of `role` from `recipe` on `data`.

    Args:
        role: victim, reference, untrained or shadow (`molleak.rundir.Role`).
        recipe: a `molleak.pretrain.trainer.PretrainConfig`.
        data: the training SMILES (None for `untrained`).
        seed: the seed to train with (None: the recipe's). The attacker's shadow must be given a
            seed of its own: it never knows the victim's.
        out: the checkpoint to write.
        init_from: a checkpoint to start from (a fine-tune); its sha256 is part of the reuse rule.
        targets: per-molecule targets for supervised recipes (the regression fine-tune).
        extra_provenance: recorded in the checkpoint (e.g. `reference_of`).
    """
    from molleak.pretrain.trainer import built_with, pretrain

    role = Role(role)
    out = Path(out)
    recipe = recipe if seed is None else replace(recipe, seed=int(seed))
    old = _provenance(out)
    if role is Role.UNTRAINED:
        import torch

        from molleak.models.checkpoint import save_checkpoint

        prov = _untrained_provenance(recipe)
        if old is not None and {k: old.get(k) for k in prov} == prov:
            return Built(out, True, old)
        from molleak.pretrain.trainer import build_strategy

        torch.manual_seed(recipe.seed)  # the trainer seeds the same way before building the strategy
        # the strategy decides the encoder (GROVER and chemprop bring their own); it is built
        # first, so these are the trained victim's initial weights
        encoder = build_strategy(recipe).encoder
        out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out, encoder, {**prov, **(extra_provenance or {})})
        return Built(out, False, prov)
    if data is None:
        raise MolleakError(f"a {role} model needs training data")
    train_sha = _train_sha(data, targets)
    base_sha = sha256_file(init_from) if init_from is not None else None
    if (old is not None and built_with(old, recipe) and old.get("train_sha256") == train_sha
            and old.get("base_checkpoint_sha256") == base_sha):
        log.info("reusing %s (%s: same recipe, same data)", out, role)
        return Built(out, True, old)
    init_encoder = None
    extra = {"role": str(role), **(extra_provenance or {})}
    if init_from is not None:
        from molleak.models.checkpoint import load_encoder

        init_encoder, _ = load_encoder(init_from)
        extra.update(base_checkpoint=str(init_from), base_checkpoint_sha256=base_sha)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a fine-tune starts afresh each time: a resume file cannot tell which base it started from
    prov = pretrain(list(data), recipe, out, train_name=train_name, progress=progress, init_encoder=init_encoder,
                    targets=targets, resume=init_from is None, extra_provenance=extra)
    return Built(out, False, prov)


def recipe_of(victim_path: str | Path, what: str = "a reference victim",
              fix: str = "train the victim with this molleak's `molleak pretrain`, or pass --reference") -> Any:
    """The PretrainConfig a molleak victim checkpoint was trained with (to train `what` from it).

    Raises:
        MolleakError: the checkpoint carries no training config (e.g. an imported state_dict), or it
            was trained by another recipe version than this molleak's.
    """
    from molleak.pretrain.trainer import recipe_from_provenance

    prov = _provenance(Path(victim_path))
    if prov is None:
        raise MolleakError(f"victim checkpoint not found or unreadable: {victim_path}")
    return recipe_from_provenance(prov, f"victim {victim_path}", what, fix)
