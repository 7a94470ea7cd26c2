"""The calibrated score (ours, beyond the paper): the victim's adapter score minus a shadow's.

The attacker pre-trains its own shadow encoder on the auxiliary set with the victim's published
recipe (strategy, architecture and optimiser read from the victim checkpoint's provenance), then
trains the same adapter (section 4, same seed and held-out split) on the victim's and on the
shadow's embeddings. A candidate ranks high when the victim favours it more than a model that never
saw the private set does: the reference-model idea of LiRA applied to extraction.

    score(x) = z(victim adapter score(x)) - z(shadow adapter score(x))

where z standardises over the pool (the two adapters' scales differ) and each adapter score is the
max over the molecule's records. The victim-free fingerprint prior (`prior_fp`) then either breaks
ties (`prior="tiebreak"`, default), multiplies the calibrated score (`prior="factor"`:
sigmoid(score) * prior), or is ignored (`prior="none"`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molleak.attack.scoring.adapter import fit_adapter
from molleak.attack.scoring.base import SCORES, Score, ScoreResult, molecule_max
from molleak.errors import MolleakError

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext

log = logging.getLogger(__name__)

PRIOR_MODES = ("tiebreak", "factor", "none")


def shadow_seed(attack_seed: int) -> int:
    """The shadow's training seed, drawn from the attack's seed alone.

    The attacker never knows the victim's seed or initial weights, so the shadow must not start
    from them: a seed equal to the attack seed would, for every run whose attack seed happened to
    equal the victim's (seed 0 for both, the default), give the shadow the victim's exact initial
    weights. A derived seed coincides with the victim's only by chance.
    """
    return int(np.random.default_rng([int(attack_seed), 0x5AD0]).integers(1, 2**31 - 1))


def shadow_config(provenance: dict[str, Any], seed: int, epochs: int | None = None):
    """The victim's published recipe from its provenance, with the attacker's own seed (and epochs)."""
    from dataclasses import replace

    from molleak.pretrain.trainer import recipe_from_provenance

    config = recipe_from_provenance(provenance, "calibrated: the victim", "a calibration shadow",
                                    "pass a shadow encoder you trained with --option shadow=PATH")
    try:
        return replace(config, seed=shadow_seed(seed), epochs=config.epochs if epochs is None else int(epochs))
    except MolleakError as exc:  # e.g. epochs < 1
        raise MolleakError(f"calibrated: {exc}") from None


def train_shadow(aux_smiles: list[str], provenance: dict[str, Any], out: Path, seed: int,
                 epochs: int | None = None) -> Path:
    """Pre-train (or reuse, by `ensure_victim`'s rule) the attacker's shadow encoder on the aux set."""
    from molleak.victims.build import ensure_victim

    config = shadow_config(provenance, seed, epochs)
    log.info("calibrated: a %s shadow encoder on %d aux molecules for %d epochs (built or reused)",
             config.strategy, len(aux_smiles), config.epochs)
    return ensure_victim("shadow", config, aux_smiles, None, out, train_name="aux (shadow)").path


def zscore(x: np.ndarray) -> np.ndarray:
    sd = np.nanstd(x)
    return (x - np.nanmean(x)) / (sd if sd > 0 else 1.0)


@SCORES.register("calibrated")
class CalibratedScore(Score):
    """Victim adapter score minus shadow adapter score, with the fingerprint prior."""

    name = "calibrated"

    def __init__(self, shadow: str | None = None, epochs: int | None = None, prior: str = "tiebreak",
                 out_dim: int = 100, steps: int = 200, heldout: float = 0.2, patience: int = 50):
        if prior not in PRIOR_MODES:
            raise MolleakError(f"calibrated: prior must be one of {', '.join(PRIOR_MODES)}, got {prior!r}")
        self.shadow, self.epochs, self.prior = shadow, epochs, prior
        self.fit_kwargs = {"out_dim": int(out_dim), "steps": int(steps), "heldout": float(heldout),
                           "patience": int(patience)}

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        from molleak.attack.scoring.priors import prior_fp_values
        from molleak.models.victim import Victim

        if self.shadow is not None:
            shadow_path = Path(self.shadow)
        else:
            if ctx.work_dir is None:
                raise MolleakError("calibrated: no run directory to keep the shadow encoder in; pass --option shadow=PATH")
            shadow_path = train_shadow(ctx.aux_smiles, ctx.victim.provenance, Path(ctx.work_dir) / "shadow.pt",
                                       ctx.seed, self.epochs)
        shadow = Victim.from_checkpoint(shadow_path, name="shadow")
        labels, n_mol = ctx.aux_labels.substructure, len(ctx.smiles)
        fit_v = fit_adapter(ctx.step_table, ctx.step_embeddings(), ctx.record_molecule, labels, ctx.seed,
                            **self.fit_kwargs)
        fit_s = fit_adapter(ctx.step_table, ctx.step_embeddings(shadow), ctx.record_molecule, labels, ctx.seed,
                            **self.fit_kwargs)
        victim_mol, best = molecule_max(fit_v.record_values, ctx.record_molecule, n_mol)
        shadow_mol, _ = molecule_max(fit_s.record_values, ctx.record_molecule, n_mol)
        values = zscore(victim_mol) - zscore(shadow_mol)
        if self.prior != "none":
            prior = prior_fp_values(ctx)
            if self.prior == "factor":
                values = prior / (1.0 + np.exp(-values))
            else:  # a tie-break only: the prior moves no molecule past a distinct calibrated score
                spread = np.diff(np.unique(values))
                eps = 0.5 * spread.min() if len(spread) else 1.0
                values = values + eps * prior
        alpha_rec = ctx.step_table.alpha_text(fit_v.step_alpha, len(ctx.records))
        info = {"shadow": str(shadow_path), "shadow_queries": shadow.queries, "prior": self.prior,
                "victim_adapter": fit_v.info, "shadow_adapter": fit_s.info}
        return ScoreResult(values, best, [alpha_rec[b] for b in best], info)
