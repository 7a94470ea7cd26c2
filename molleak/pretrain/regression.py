"""The fine-tuned regression victim (the paper's Table 8 setting): a pre-trained encoder fine-tuned on logBB.

The victim is the fine-tuned encoder; the attack sees its pooled penultimate embedding (the mean
of the last GIN layer, which feeds the linear regression head, as in pretrain-gnns fine-tuning).
The fine-tuning set is B3DB's measured logBB regression set, read from the installed `qc-b3db`
wheel. For evaluation, such a victim's training set is its pre-training set plus this set.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from molleak.chem import canonical_smiles, rdkit_quiet
from molleak.data.featurize import FEATURIZERS
from molleak.data.sources import _dist_file
from molleak.errors import InputFileError
from molleak.models.base import GraphEncoder
from molleak.pretrain.base import STRATEGIES, PretrainStrategy

B3DB_REGRESSION = "B3DB/B3DB_regression.tsv"


def load_b3db_logbb() -> tuple[list[str], list[float]]:
    """B3DB's logBB regression set: canonical SMILES and logBB, invalid and repeated molecules dropped."""
    path = _dist_file("qc-b3db", B3DB_REGRESSION, "install qc-b3db (a molleak dependency)")
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")), delimiter="\t")
    smiles, targets, seen = [], [], set()
    with rdkit_quiet():
        for row in rows:
            try:
                y = float(row["logBB"])
            except (KeyError, TypeError, ValueError):
                continue
            can = canonical_smiles(row.get("SMILES") or "")
            if can is None or "*" in can or can in seen:
                continue
            seen.add(can)
            smiles.append(can)
            targets.append(y)
    if not smiles:
        raise InputFileError(f"{path}: no usable SMILES/logBB rows")
    return smiles, targets


@STRATEGIES.register("regression")
class RegressionFinetune(PretrainStrategy):
    """Supervised fine-tuning: mean-pooled embedding -> linear head, mean squared error.

    Trained through the same trainer with `targets` (one per SMILES) and `init_encoder` (the
    pre-trained encoder to start from). The head is saved in the checkpoint's `extra_state`.
    """

    name = "regression"
    needs_targets = True

    def __init__(self, encoder: GraphEncoder):
        super().__init__(encoder)
        self.head = nn.Linear(encoder.emb_dim, 1)

    def collate(self, items: list[tuple[Any, float]]):
        graphs = [g for g, _ in items]
        y = torch.tensor([t for _, t in items], dtype=torch.float32)
        return FEATURIZERS.get(self.encoder.featurizer).collate(graphs), y

    def predict(self, batch) -> torch.Tensor:
        return self.head(self.encoder.graph_embeddings(batch)).squeeze(-1)

    def loss(self, batch) -> torch.Tensor:
        graphs, y = batch
        return F.mse_loss(self.predict(graphs), y)

    def loss_per_graph(self, batch) -> torch.Tensor:
        graphs, y = batch
        return (self.predict(graphs) - y).pow(2)

    def extra_state(self) -> dict[str, Any]:
        head = {k: v.detach().cpu() for k, v in self.head.state_dict().items()}
        return {"regression_head": head, "strategy_state": {f"head.{k}": v for k, v in head.items()}}
