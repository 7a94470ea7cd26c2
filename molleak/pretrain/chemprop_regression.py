"""The chemprop victim: a chemprop D-MPNN regression model trained on a property of each training molecule.

The network is chemprop's (`molleak.models.chemprop_mpnn`: BondMessagePassing + aggregation, then
chemprop's `RegressionFFN` head), trained with mean squared error on standardised targets as
`chemprop train` does (targets are scaled by the training set's mean and standard deviation). The
loop is molleak's trainer, not Lightning's, so seeds, resume and provenance work as for every victim.

Targets: an RDKit property of each training molecule (`TARGETS`; Crippen logP by default), computed
by the strategy itself. Why not B3DB's measured logBB, as the GIN regression victim: an audit trains
the victim on a tier's private set and its reference victim on the disjoint reference set, evaluates
against the private set and mines the attacker's vocabulary from the aux set, all from one MOSES
split. B3DB's 1,058 logBB molecules have no such split and come from another distribution; a
property computed on MOSES gives victim and reference the same labelling rule on disjoint sets of
one distribution, at every tier size, and needs no target files (`molleak pretrain`, the zoo, the
audit and the attacker's shadow all train it from SMILES alone). logP is the default because
lipophilicity is the main physico-chemical driver of logBB and a standard chemprop benchmark target.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch
import torch.nn.functional as F
from rdkit import Chem

from molleak.chem import rdkit_quiet
from molleak.errors import MolleakError
from molleak.models.base import GraphEncoder
from molleak.models.chemprop_mpnn import ChempropBatch, ChempropEncoder, ChempropGraph, collate_chemprop
from molleak.pretrain.base import STRATEGIES, PretrainStrategy

#: target name -> (what it is, RDKit module, function of a molecule); imported when used
TARGETS = {
    "logp": ("Crippen logP", "rdkit.Chem.Crippen", "MolLogP"),
    "tpsa": ("topological polar surface area", "rdkit.Chem.rdMolDescriptors", "CalcTPSA"),
    "mr": ("Crippen molar refractivity", "rdkit.Chem.Crippen", "MolMR"),
    "qed": ("QED drug-likeness", "rdkit.Chem.QED", "qed"),
    "molwt": ("average molecular weight", "rdkit.Chem.Descriptors", "MolWt"),
}


@STRATEGIES.register("chemprop")
class ChempropRegression(PretrainStrategy):
    """chemprop D-MPNN + `RegressionFFN` on an RDKit property (MSE on standardised targets).

    Args:
        target: one of `TARGETS`.
        ffn_hidden: width of the head's hidden layer (chemprop's `--ffn-hidden-dim`).
        ffn_layers: hidden layers of the head (chemprop's `--ffn-num-layers`).
        dropout: dropout in the head.
    """

    name = "chemprop"
    encoder_name = "chemprop"

    def __init__(self, encoder: GraphEncoder, target: str = "logp", ffn_hidden: int = 300, ffn_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__(encoder, target=target, ffn_hidden=ffn_hidden, ffn_layers=ffn_layers, dropout=dropout)
        if not isinstance(encoder, ChempropEncoder):
            raise MolleakError(f"strategy chemprop trains a chemprop encoder, not a {type(encoder).__name__}")
        if target not in TARGETS:
            raise MolleakError(f"strategy chemprop: unknown target {target!r}; choose from {', '.join(TARGETS)}")
        for key, value in (("ffn_hidden", ffn_hidden), ("ffn_layers", ffn_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
                raise MolleakError(f"strategy chemprop: {key} must be a positive integer, got {value!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise MolleakError(f"strategy chemprop: dropout must be a number in [0, 1), got {dropout!r}")
        from chemprop.nn import RegressionFFN

        self.target = target
        _, module, function = TARGETS[target]
        self._target_fn = getattr(importlib.import_module(module), function)
        self.predictor = RegressionFFN(n_tasks=1, input_dim=encoder.emb_dim, hidden_dim=ffn_hidden,
                                       n_layers=ffn_layers, dropout=dropout)
        # the training set's target mean and standard deviation (NaN until the first epoch fixes them);
        # a buffer, so the resume file and the saved head carry it
        self.register_buffer("target_scale", torch.full((2,), float("nan"), dtype=torch.float64))
        self._sum = self._sumsq = 0.0
        self._n = 0

    def target_value(self, smiles: str) -> float:
        """The raw (unstandardised) target of one molecule."""
        with rdkit_quiet():
            mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise MolleakError(f"strategy chemprop: cannot compute {self.target} of invalid SMILES {smiles!r}")
        value = float(self._target_fn(mol))
        if not math.isfinite(value):
            raise MolleakError(f"strategy chemprop: {self.target} of {smiles} is {value}")
        return value

    def prepare(self, graph: ChempropGraph) -> tuple[ChempropGraph, float]:
        value = self.target_value(graph.smiles)
        self._sum += value
        self._sumsq += value * value
        self._n += 1
        return graph, value

    def _fix_scale(self) -> None:
        """Fix the target mean and sd from the molecules prepared so far (once; a resumed run loads them)."""
        if bool(torch.isfinite(self.target_scale).all()):
            return
        if self._n == 0:
            raise MolleakError("strategy chemprop: no training molecules were prepared")
        mean = self._sum / self._n
        sd = math.sqrt(max(self._sumsq / self._n - mean * mean, 0.0))
        self.target_scale.copy_(torch.tensor([mean, sd if sd > 1e-12 else 1.0], dtype=torch.float64))

    def begin_epoch(self, epoch: int, epochs: int) -> None:
        self._fix_scale()

    def collate(self, items: list[tuple[ChempropGraph, float]]) -> tuple[ChempropBatch, torch.Tensor]:
        self._fix_scale()
        mean, sd = self.target_scale.tolist()
        y = torch.tensor([(value - mean) / sd for _, value in items], dtype=torch.float32)
        return collate_chemprop([g for g, _ in items]), y

    def predict(self, batch: ChempropBatch) -> torch.Tensor:
        """Standardised predictions [num_graphs] (chemprop's head on the fingerprint)."""
        return self.predictor.train_step(self.encoder.graph_embeddings(batch)).squeeze(-1)

    def loss(self, batch) -> torch.Tensor:
        graphs, y = batch
        return F.mse_loss(self.predict(graphs), y)

    def loss_per_graph(self, batch) -> torch.Tensor:
        graphs, y = batch
        return (self.predict(graphs) - y).pow(2)

    def extra_state(self) -> dict[str, Any]:
        state = super().extra_state() or {}
        head = {k: v.detach().cpu() for k, v in self.predictor.state_dict().items()}
        return {**state, "chemprop_head": {"predictor": head, "target": self.target,
                                           "target_mean_sd": self.target_scale.tolist()}}
