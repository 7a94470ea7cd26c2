"""Victim-free controls (method.md section 10): they never load or query the victim.

- `prior_freq`: how many aux molecules contain the candidate (the oracle's count against the aux
  bank): how common the fragment is in the attacker's own data.
- `prior_fp`: a logistic regression on Morgan fingerprints (radius 2, 2048 bits) trained on the
  same aux weak labels as the victim-based scores; its score is P(positive).

If they rank as well as a victim-based score, that score's success comes from the data
distribution, not from the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.attack.scoring.mlp import fit_predict_proba
from molleak.chem import rdkit_quiet, to_mol

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext


def morgan_matrix(smiles: list[str], radius: int = 2, n_bits: int = 2048) -> np.ndarray:
    """Morgan bit fingerprints [n, n_bits] (uint8); an unparsable SMILES gives a zero row."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    out = np.zeros((len(smiles), n_bits), dtype=np.uint8)
    with rdkit_quiet():
        for i, s in enumerate(smiles):
            mol = to_mol(s)
            if mol is not None:
                out[i] = gen.GetFingerprintAsNumPy(mol)
    return out


@SCORES.register("prior_freq")
class PriorFreqScore(Score):
    """The number of aux molecules containing the candidate."""

    name = "prior_freq"
    uses_victim = False

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        return ScoreResult(np.asarray(ctx.aux_labels.count, dtype=np.float64))


@SCORES.register("prior_fp")
class PriorFpScore(Score):
    """Logistic regression on Morgan fingerprints, trained on the aux weak labels."""

    name = "prior_fp"
    uses_victim = False

    def __init__(self, radius: int = 2, n_bits: int = 2048, c: float = 1.0):
        self.radius, self.n_bits, self.c = int(radius), int(n_bits), float(c)

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        return ScoreResult(prior_fp_values(ctx, self.radius, self.n_bits, self.c),
                           info={"radius": self.radius, "n_bits": self.n_bits, "C": self.c})


def prior_fp_values(ctx: AttackContext, radius: int = 2, n_bits: int = 2048, c: float = 1.0) -> np.ndarray:
    """P(positive) of the fingerprint logistic regression for every pool molecule."""
    from sklearn.linear_model import LogisticRegression

    x = morgan_matrix(ctx.smiles, radius, n_bits)
    model = LogisticRegression(C=c, max_iter=2000, random_state=ctx.seed % (2**32))
    return fit_predict_proba(model, x, ctx.aux_labels.substructure, "prior_fp")
