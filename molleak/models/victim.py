"""The query-only victim: SMILES in, graph embeddings out. Every attack goes through this.

Queries are counted per molecule the model actually computes: a repeated molecule (same
canonical SMILES) is answered from the cache and costs nothing, since an attacker keeps the
answers it already has.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from rdkit import Chem

from molleak.chem import rdkit_quiet, shorten, size_problem
from molleak.data.featurize import FEATURIZERS
from molleak.errors import FeaturizationError, MolleakError, QueryBudgetExceeded
from molleak.models.base import GraphEncoder

log = logging.getLogger(__name__)


class Victim:
    """A pre-trained encoder seen only through `embed`.

    Args:
        encoder: the graph encoder (put in eval mode here).
        name: how reports name this victim.
        provenance: where the weights came from (strategy, training-set hash, epochs, seed...).
        batch_size: molecules per forward pass (64 was fastest on a 2-core CPU: BENCHMARKS.md).
        budget: the most molecules the model may compute (None = unlimited).
        cache: keep embeddings by canonical SMILES.
    """

    def __init__(
        self,
        encoder: GraphEncoder,
        *,
        name: str = "victim",
        provenance: dict[str, Any] | None = None,
        batch_size: int = 64,
        budget: int | None = None,
        cache: bool = True,
    ):
        self.encoder = encoder.eval()
        self.name = name
        self.provenance = dict(provenance or {})
        self.batch_size = batch_size
        self.budget = budget
        self.queries = 0
        self._featurizer = FEATURIZERS.get(encoder.featurizer)
        self._cache: dict[str, np.ndarray] | None = {} if cache else None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **kwargs: Any) -> Victim:
        """Load a victim from a molleak checkpoint or a raw pretrain-gnns state_dict."""
        from molleak.models.checkpoint import load_encoder

        encoder, provenance = load_encoder(path)
        kwargs.setdefault("name", os.path.splitext(os.path.basename(str(path)))[0])
        return cls(encoder, provenance=provenance, **kwargs)

    @property
    def dim(self) -> int:
        return int(self.encoder.emb_dim)

    def weights_sha256(self) -> str:
        """sha256 of the encoder's parameters and buffers (names, shapes, bytes): the model's identity."""
        import hashlib

        h = hashlib.sha256()
        for key, tensor in sorted(self.encoder.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        return h.hexdigest()

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def embed(self, smiles: Sequence[str]) -> np.ndarray:
        """Embeddings [n, d] (float32) of the given molecules, in order.

        Raises:
            FeaturizationError: a SMILES does not parse, holds a dummy atom, or is over the size
                bounds of `molleak.chem` (MAX_SMILES_LENGTH characters, MAX_HEAVY_ATOMS heavy atoms).
            QueryBudgetExceeded: computing the new molecules would exceed the budget.
            MolleakError: the encoder returned NaN/inf embeddings (its weights are broken).
        """
        smiles = list(smiles)
        keys: list[str] = []
        todo: dict[str, Chem.Mol] = {}
        with rdkit_quiet():
            for s in smiles:
                if not isinstance(s, str):
                    raise FeaturizationError(f"victim {self.name}: a molecule is a {type(s).__name__}, not a SMILES")
                if problem := size_problem(s):
                    raise FeaturizationError(f"victim {self.name}: SMILES {shorten(s)} {problem}")
                mol = Chem.MolFromSmiles(s)
                if mol is None:
                    raise FeaturizationError(f"victim {self.name}: invalid SMILES {shorten(s)}")
                if problem := size_problem(s, mol):  # checked before MolToSmiles, which crashes on huge molecules
                    raise FeaturizationError(f"victim {self.name}: SMILES {shorten(s)} {problem}")
                key = Chem.MolToSmiles(mol)
                keys.append(key)
                if (self._cache is None or key not in self._cache) and key not in todo:
                    todo[key] = mol
        if self.budget is not None and self.queries + len(todo) > self.budget:
            raise QueryBudgetExceeded(
                f"victim {self.name}: {len(todo)} new queries would exceed the budget of {self.budget} "
                f"({self.queries} used)"
            )
        computed = self._compute(list(todo.items()))
        self.queries += len(todo)
        broken = [k for k, row in computed.items() if not np.isfinite(row).all()]
        if broken:
            raise MolleakError(
                f"victim {self.name} returned non-finite embeddings for {len(broken)} molecules: "
                f"the model's weights are broken"
            )
        if self._cache is not None:
            self._cache.update(computed)
            table = self._cache
        else:
            table = computed
        if not smiles:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([table[k] for k in keys]).astype(np.float32, copy=False)

    @torch.inference_mode()
    def _compute(self, items: list[tuple[str, Chem.Mol]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        feat, coll = self._featurizer.featurize, self._featurizer.collate
        for start in range(0, len(items), self.batch_size):
            chunk = items[start : start + self.batch_size]
            graphs = [feat(mol, key) for key, mol in chunk]
            emb = self.encoder.graph_embeddings(coll(graphs)).float().numpy()
            for (key, _), row in zip(chunk, emb, strict=True):
                out[key] = row
        return out
