"""Membership-guided extraction (ours, beyond the paper): rank candidates by how "member-like" the
victim finds each whole molecule.

The paper's score asks "does this candidate look like the aux set through the victim's eyes?",
which a model that never saw the private set answers as well (BENCHMARKS.md, attribution). This score
asks the membership question instead, per candidate, with the statistic of
`molleak.attack.membership` (default `norm`: contrastive training grows the embedding norm of
what it saw often) calibrated by a shadow encoder that never saw the private set:

    score(x) = statistic(victim, x) - statistic(shadow, x)

The shadow is the attacker's own: the victim's published recipe pre-trained on the aux set (as for
the `calibrated` score), or any checkpoint passed as `shadow=PATH`. No aux labels are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.errors import MolleakError

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext


@SCORES.register("membership")
class MembershipScore(Score):
    """Calibrated membership statistic of each candidate molecule (one batched query per model).

    Args:
        statistic: a name from `molleak.attack.membership.STATISTICS`.
        shadow: a checkpoint to calibrate with (default: pre-train the victim's recipe on the aux set).
        epochs: the default shadow's epochs (default: the victim's).
        n_neighbours: one-edit neighbours per molecule, for statistics that need them.
    """

    name = "membership"

    def __init__(self, statistic: str = "norm", shadow: str | None = None, epochs: int | None = None,
                 n_neighbours: int = 8):
        from molleak.attack.membership import statistic_fn

        statistic_fn(statistic)  # unknown name: one clear error before any work
        self.statistic, self.shadow, self.epochs, self.n_neighbours = statistic, shadow, epochs, int(n_neighbours)

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        from molleak.attack.membership import membership_scores
        from molleak.attack.scoring.calibrated import train_shadow
        from molleak.models.victim import Victim

        if self.shadow is not None:
            shadow_path = Path(self.shadow)
            if not shadow_path.is_file():
                raise MolleakError(f"membership: shadow checkpoint {shadow_path} not found")
        else:
            if ctx.work_dir is None:
                raise MolleakError("membership: no run directory to keep the shadow encoder in; "
                                   "pass --option shadow=PATH")
            shadow_path = train_shadow(ctx.aux_smiles, ctx.victim.provenance, Path(ctx.work_dir) / "shadow.pt",
                                       ctx.seed, self.epochs)
        shadow = Victim.from_checkpoint(shadow_path, name="shadow")
        values = membership_scores(ctx.victim, ctx.smiles, shadow, n_neighbours=self.n_neighbours, seed=ctx.seed,
                                   statistic=self.statistic)
        info = {"statistic": self.statistic, "shadow": str(shadow_path), "shadow_queries": shadow.queries}
        return ScoreResult(values, None, None, info)
