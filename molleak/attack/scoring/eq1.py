"""The untrained, model-independent score (the paper's Eq. 1).

For one step with the molecule before it t, the motif m and the merged molecule g (heavy-atom
counts n_t, n_m, victim embeddings h):

    e(alpha) = alpha * n_t * h(t) + (1 - alpha) * n_m * h(m),   s = cos(e(alpha), h(g)).

With mean pooling, a combination the model saw in training embeds close to the size-weighted mix
of its parts. A multi-step candidate scores the sum over its steps. alpha is given, or swept over
{0, 0.1, 0.5, 0.9, 1} and chosen by ROC-AUC on the attacker's aux weak labels (never private ones).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult, cosine, molecule_max
from molleak.errors import MolleakError
from molleak.ranking import roc_auc

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext

log = logging.getLogger(__name__)

SWEEP = (0.0, 0.1, 0.5, 0.9, 1.0)


def eq1_step_scores(h_t: np.ndarray, h_m: np.ndarray, h_g: np.ndarray, n_t: np.ndarray, n_m: np.ndarray,
                    alpha: float | np.ndarray) -> np.ndarray:
    """Eq. 1 per step: cos(alpha n_t h_t + (1 - alpha) n_m h_m, h_g).

    Args:
        h_t, h_m, h_g: [n, d] embeddings of the molecule before the step, the motif and the result.
        n_t, n_m: [n] heavy-atom counts of the molecule before the step and of the motif.
        alpha: a float, or one per step.
    """
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), n_t.shape)
    mix = (alpha * n_t)[:, None] * h_t + ((1.0 - alpha) * n_m)[:, None] * h_m
    return cosine(mix, h_g)


def record_sums(step_values: np.ndarray, step_record: np.ndarray, n_records: int) -> np.ndarray:
    """Per record, the sum of its steps' values (the multi-step rule)."""
    return np.bincount(step_record, weights=step_values, minlength=n_records)


@SCORES.register("eq1")
class Eq1Score(Score):
    """Eq. 1 with a fixed alpha, or `alpha="sweep"` to choose it by aux-label AUC."""

    name = "eq1"

    def __init__(self, alpha: float | str = "sweep"):
        if alpha != "sweep":
            try:
                alpha = float(alpha)
            except (TypeError, ValueError):
                raise MolleakError(f"eq1: alpha must be a number or 'sweep', got {alpha!r}") from None
        self.alpha = alpha

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        table, emb = ctx.step_table, ctx.step_embeddings()
        h_t, h_m, h_g = emb[table.before], emb[table.motif], emb[table.after]
        n_t, n_m = table.n_atoms[table.before], table.n_atoms[table.motif]
        n_rec, n_mol = len(ctx.records), len(ctx.smiles)

        def molecule_scores(alpha: float) -> tuple[np.ndarray, np.ndarray]:
            steps = eq1_step_scores(h_t, h_m, h_g, n_t, n_m, alpha)
            return molecule_max(record_sums(steps, table.record, n_rec), ctx.record_molecule, n_mol)

        info: dict = {}
        if self.alpha == "sweep":
            aucs = {a: roc_auc(ctx.aux_labels.substructure, molecule_scores(a)[0]) for a in SWEEP}
            info["aux_auc_per_alpha"] = {str(a): v for a, v in aucs.items()}
            finite = {a: v for a, v in aucs.items() if np.isfinite(v)}
            alpha = max(finite, key=finite.get) if finite else 0.5
            log.info("eq1: alpha %.1f chosen by aux-label AUC %s", alpha, info["aux_auc_per_alpha"])
        else:
            alpha = float(self.alpha)
        info["alpha"] = alpha
        values, best = molecule_max(record_sums(eq1_step_scores(h_t, h_m, h_g, n_t, n_m, alpha), table.record, n_rec),
                                    ctx.record_molecule, n_mol)
        alpha_rec = table.alpha_text(np.full(len(table.record), alpha), n_rec)
        return ScoreResult(values, best, [alpha_rec[b] for b in best], info)
