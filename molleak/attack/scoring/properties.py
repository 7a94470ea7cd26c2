"""Property baselines on the finalised molecules: QED (higher first) and SA (easier first).

The public code computed both on molecules still holding `*`; ours are computed on the finalised
candidates (no dummy atoms). SA is RDKit's Contrib `sascorer` (1 = easy, 10 = hard); its score
here is -SA so that higher means ranked first, as for every score.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.chem import rdkit_quiet, to_mol

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext


@functools.lru_cache(maxsize=1)
def _sascorer():
    from rdkit.Chem import RDConfig  # noqa: F401  (keeps the Contrib path importable)
    from rdkit.Contrib.SA_Score import sascorer

    return sascorer


def molecule_values(smiles: list[str], fn) -> np.ndarray:
    """`fn(mol)` for each SMILES (NaN where it does not parse)."""
    out = np.full(len(smiles), np.nan)
    with rdkit_quiet():
        for i, s in enumerate(smiles):
            mol = to_mol(s)
            if mol is not None:
                out[i] = fn(mol)
    return out


def qed_values(smiles: list[str]) -> np.ndarray:
    """QED of each SMILES (NaN where it does not parse)."""
    from rdkit.Chem import QED

    return molecule_values(smiles, QED.qed)


def sa_values(smiles: list[str]) -> np.ndarray:
    """Synthetic accessibility (Ertl & Schuffenhauer) of each SMILES (NaN where it does not parse)."""
    return molecule_values(smiles, _sascorer().calculateScore)


@SCORES.register("qed")
class QedScore(Score):
    """Rank by drug-likeness (QED), highest first."""

    name = "qed"
    uses_victim = False

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        return ScoreResult(qed_values(ctx.smiles))


@SCORES.register("sa")
class SaScore(Score):
    """Rank by synthetic accessibility, easiest (lowest SA) first; the score is -SA."""

    name = "sa"
    uses_victim = False

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        return ScoreResult(-sa_values(ctx.smiles))
