"""chemprop's D-MPNN (Yang et al. 2019, chemprop v2) as a molleak encoder, on chemprop's own featuriser.

The encoder is chemprop's `BondMessagePassing` followed by one of chemprop's aggregations and,
when the model has one, the BatchNorm after it: exactly chemprop's `MPNN.fingerprint`, the learned
molecular fingerprint that feeds the prediction head (the layer a chemprop user shares, and what
`chemprop fingerprint` writes). Its parameters keep chemprop's names (`message_passing.W_i.weight`,
`agg.*`, `bn.*`), so the fingerprint part of a chemprop model's state_dict loads unchanged
(`molleak.models.chemprop_files`).

Molecules are featurised by chemprop's `SimpleMoleculeMolGraphFeaturizer` and batched by its
`BatchMolGraph`. Each of chemprop's atom-feature modes (`--multi-hot-atom-featurizer-mode`) is a
featuriser of its own: `chemprop` (v2, chemprop's default), `chemprop_v1`, `chemprop_organic`,
`chemprop_rigr`; an encoder names its mode in its config and uses that featuriser.

chemprop is an optional dependency (`pip install 'molleak[chemprop]'`). It is imported only when a
chemprop encoder is built or a molecule featurised (importing it takes seconds: it loads Lightning),
so registering the encoder and featurisers here costs nothing and needs no chemprop.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from rdkit import Chem
from torch import nn

from molleak.chem import MAX_HEAVY_ATOMS, shorten
from molleak.data.featurize import FEATURIZERS, Featurizer
from molleak.errors import FeaturizationError, MolleakError
from molleak.models.base import ENCODERS, GraphEncoder

#: chemprop's atom-feature modes -> (molleak featuriser name, atom feature width, bond feature width)
ATOM_FEATURES: dict[str, tuple[str, int, int]] = {
    "v2": ("chemprop", 72, 14),
    "v1": ("chemprop_v1", 133, 14),
    "organic": ("chemprop_organic", 44, 14),
    "rigr": ("chemprop_rigr", 52, 2),
}
#: chemprop's aggregations (its `AggregationRegistry` names) -> class name in `chemprop.nn`
AGGREGATIONS = {"mean": "MeanAggregation", "sum": "SumAggregation", "norm": "NormAggregation",
                "attentive": "AttentiveAggregation"}
#: chemprop's `Activation` values
ACTIVATIONS = ("relu", "leakyrelu", "prelu", "tanh", "selu", "elu")
INSTALL_HINT = "install it with `pip install 'molleak[chemprop]'` (chemprop 2.2.4)"


def require_chemprop():
    """The chemprop package (v2), or one MolleakError saying how to install it."""
    try:
        import chemprop
    except ImportError as exc:
        raise MolleakError(f"chemprop victims need the chemprop package, which cannot be imported ({exc}); "
                           f"{INSTALL_HINT}") from None
    if not str(getattr(chemprop, "__version__", "")).startswith("2."):
        raise MolleakError(f"chemprop victims need chemprop 2.x, found {getattr(chemprop, '__version__', '?')}; "
                           f"{INSTALL_HINT}")
    return chemprop


@functools.cache
def chemprop_featurizer(mode: str):
    """chemprop's molecule featuriser for an atom-feature mode (as `chemprop train` builds it)."""
    require_chemprop()
    from chemprop.featurizers import (
        MultiHotAtomFeaturizer,
        MultiHotBondFeaturizer,
        SimpleMoleculeMolGraphFeaturizer,
    )

    if mode == "rigr":
        from chemprop.featurizers.atom import RIGRAtomFeaturizer
        from chemprop.featurizers.bond import RIGRBondFeaturizer

        atom, bond = RIGRAtomFeaturizer(), RIGRBondFeaturizer()
    else:
        atom, bond = getattr(MultiHotAtomFeaturizer, mode)(), MultiHotBondFeaturizer()
    feat = SimpleMoleculeMolGraphFeaturizer(atom_featurizer=atom, bond_featurizer=bond)
    _, d_v, d_e = ATOM_FEATURES[mode]
    if (feat.atom_fdim, feat.bond_fdim) != (d_v, d_e):  # a chemprop release that changed its features
        raise MolleakError(f"chemprop's {mode} featuriser gives {feat.atom_fdim} atom / {feat.bond_fdim} bond "
                           f"features, molleak expects {d_v} / {d_e}; {INSTALL_HINT}")
    return feat


@dataclass
class ChempropGraph:
    """One molecule as chemprop featurises it (`mg`: chemprop's MolGraph), with its SMILES."""

    mg: Any
    smiles: str = ""

    @property
    def num_nodes(self) -> int:
        return int(self.mg.V.shape[0])


@dataclass
class ChempropBatch:
    """chemprop's `BatchMolGraph` of a batch, with the graph count and graph index molleak code reads."""

    bmg: Any
    num_graphs: int

    @property
    def batch(self) -> torch.Tensor:
        return self.bmg.batch

    def to(self, device: str | torch.device) -> ChempropBatch:
        self.bmg.to(device)
        return self


def featurize_chemprop(mol: Chem.Mol, name: str = "", mode: str = "v2") -> ChempropGraph:
    """chemprop's featurisation of an RDKit molecule (FeaturizationError for empty, huge or dummy-atom ones)."""
    label = shorten(name) if name else "<unnamed>"
    if mol.GetNumAtoms() == 0:
        raise FeaturizationError(f"molecule {label} has no atoms")
    if mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        raise FeaturizationError(f"molecule {label} has {mol.GetNumHeavyAtoms()} heavy atoms, over the bound of "
                                 f"{MAX_HEAVY_ATOMS}")
    if any(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):
        raise FeaturizationError(f"molecule {label} still holds a dummy atom '*'; finalise it first")
    return ChempropGraph(chemprop_featurizer(mode)(mol), name)


def collate_chemprop(graphs: list[ChempropGraph]) -> ChempropBatch:
    from chemprop.data import BatchMolGraph

    return ChempropBatch(BatchMolGraph([g.mg for g in graphs]), len(graphs))


for _mode, (_name, _, _) in ATOM_FEATURES.items():
    if _name not in FEATURIZERS:
        FEATURIZERS.register(_name)(Featurizer(functools.partial(featurize_chemprop, mode=_mode), collate_chemprop))


def _positive_int(name: str, value: Any, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"{name} must be an integer from 1 to {high}, got {value!r}")


def parameter_count(config: dict[str, Any]) -> int:
    """Parameters of a chemprop encoder config, in closed form (tests check it against built ones)."""
    d_h = config.get("d_h", 300)
    _, d_v, d_e = ATOM_FEATURES[config.get("atom_features", "v2")]
    bias = d_h if config.get("bias", False) else 0
    count = (d_v + d_e) * d_h + bias + d_h * d_h + bias + (d_v + d_h) * d_h + d_h  # W_i, W_h, W_o (W_o has a bias)
    count += 1 if config.get("activation", "relu") == "prelu" else 0  # PReLU's one weight
    count += d_h + 1 if config.get("aggregation", "mean") == "attentive" else 0  # the attention's Linear(d_h, 1)
    return count + (2 * d_h if config.get("batch_norm", False) else 0)


def check_config(config: dict[str, Any]) -> None:
    """Refuse, before anything is allocated, a chemprop encoder config that is malformed or absurdly large."""
    from molleak.models.checkpoint import MAX_ENCODER_DEPTH, MAX_ENCODER_PARAMETERS

    _positive_int("d_h", config.get("d_h", 300), 1_000_000)
    _positive_int("depth", config.get("depth", 3), MAX_ENCODER_DEPTH)
    for key, choices in (("activation", ACTIVATIONS), ("aggregation", tuple(AGGREGATIONS)),
                         ("atom_features", tuple(ATOM_FEATURES))):
        if config.get(key, choices[0] if key != "atom_features" else "v2") not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, got {config.get(key)!r}")
    for key in ("bias", "undirected", "batch_norm"):
        if not isinstance(config.get(key, False), bool):
            raise ValueError(f"{key} must be true or false, got {config.get(key)!r}")
    for key, low, high in (("dropout", 0.0, 0.999), ("norm", 1e-6, 1e12)):
        value = config.get(key, 0.0 if key == "dropout" else 100.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ValueError(f"{key} must be a number from {low} to {high}, got {value!r}")
    if (count := parameter_count(config)) > MAX_ENCODER_PARAMETERS:
        raise ValueError(f"the config implies {count:.3g} parameters, over the bound of {MAX_ENCODER_PARAMETERS:.0e}")


@ENCODERS.register("chemprop")
class ChempropEncoder(GraphEncoder):
    """chemprop's BondMessagePassing + aggregation (+ BatchNorm): the `MPNN.fingerprint` of a chemprop model.

    Args (chemprop's names and defaults):
        d_h: hidden width, also the fingerprint's width.
        depth: message-passing steps.
        bias: biases in W_i and W_h.
        undirected: average each bond's two directed messages.
        activation: one of `ACTIVATIONS`.
        aggregation: one of `AGGREGATIONS` (mean, chemprop's default; norm divides the sum by `norm`).
        norm: the norm aggregation's divisor.
        batch_norm: a BatchNorm after the aggregation (chemprop's `--batch-norm`).
        atom_features: chemprop's atom-feature mode (`ATOM_FEATURES`); decides the featuriser.
        dropout: dropout in message passing (training only).
    """

    featurizer = "chemprop"

    def __init__(self, d_h: int = 300, depth: int = 3, bias: bool = False, undirected: bool = False,
                 activation: str = "relu", aggregation: str = "mean", norm: float = 100.0, batch_norm: bool = False,
                 atom_features: str = "v2", dropout: float = 0.0):
        super().__init__()
        self._config = {"d_h": d_h, "depth": depth, "bias": bias, "undirected": undirected, "activation": activation,
                        "aggregation": aggregation, "norm": float(norm) if isinstance(norm, int | float) else norm,
                        "batch_norm": batch_norm, "atom_features": atom_features,
                        "dropout": float(dropout) if isinstance(dropout, int | float) else dropout}
        check_config(self._config)
        require_chemprop()
        from chemprop import nn as cnn

        self.featurizer, d_v, d_e = ATOM_FEATURES[atom_features]
        self.emb_dim = d_h
        self.message_passing = cnn.BondMessagePassing(d_v=d_v, d_e=d_e, d_h=d_h, bias=bias, depth=depth,
                                                      dropout=dropout, activation=activation, undirected=undirected)
        agg_cls = getattr(cnn, AGGREGATIONS[aggregation])
        if aggregation == "norm":
            self.agg = agg_cls(norm=norm)
        elif aggregation == "attentive":
            self.agg = agg_cls(output_size=d_h)
        else:
            self.agg = agg_cls()
        self.bn = nn.BatchNorm1d(d_h) if batch_norm else nn.Identity()

    def node_embeddings(self, batch: ChempropBatch) -> torch.Tensor:
        """chemprop's atom-level hidden states after message passing, [atoms, d_h]."""
        return self.message_passing(batch.bmg)

    def graph_embeddings(self, batch: ChempropBatch) -> torch.Tensor:
        """The learned fingerprint [num_graphs, d_h]: chemprop's `MPNN.fingerprint` without extra descriptors."""
        return self.bn(self.agg(self.node_embeddings(batch), batch.bmg.batch))

    def config(self) -> dict[str, Any]:
        return dict(self._config)
