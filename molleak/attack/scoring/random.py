"""The random baseline: a seeded uniform score per molecule (what precision@K is in expectation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext


@SCORES.register("random")
class RandomScore(Score):
    """Uniform random scores drawn with the run's seed (run it with several seeds)."""

    name = "random"
    uses_victim = False

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        rng = np.random.default_rng([ctx.seed, 7])
        return ScoreResult(rng.random(len(ctx.smiles)), info={"seed": ctx.seed})
