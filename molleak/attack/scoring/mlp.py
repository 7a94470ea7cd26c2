"""The MLP baseline: a small classifier on the victim's embeddings of the candidates, trained on the
attacker's aux weak labels (scikit-learn's MLPClassifier with early stopping on a seeded
validation split). The score is its predicted probability of a positive label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.errors import MolleakError

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext


def fit_predict_proba(model, x: np.ndarray, labels: np.ndarray, what: str) -> np.ndarray:
    """Fit a scikit-learn classifier on all rows and return P(positive) for every row."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        raise MolleakError(f"{what}: the aux weak labels are all {'positive' if labels.all() else 'negative'}; "
                           "nothing to learn")
    model.fit(x, labels)
    return model.predict_proba(x)[:, list(model.classes_).index(True)].astype(np.float64)


@SCORES.register("mlp")
class MlpScore(Score):
    """MLP (one hidden layer) on the victim's candidate embeddings."""

    name = "mlp"

    def __init__(self, hidden: int = 64, max_iter: int = 200):
        self.hidden, self.max_iter = int(hidden), int(max_iter)

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = ctx.molecule_embeddings()
        model = make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(self.hidden,), early_stopping=True, validation_fraction=0.2,
            max_iter=self.max_iter, random_state=ctx.seed % (2**32)))
        values = fit_predict_proba(model, x, ctx.aux_labels.substructure, "mlp")
        mlp = model[-1]
        info = {"hidden": self.hidden, "iterations": int(mlp.n_iter_),
                "best_validation_accuracy": float(mlp.best_validation_score_)}
        return ScoreResult(values, info=info)
