"""The query-only victim: SMILES in, graph embeddings out. Every attack goes through this.

`QueryVictim` holds what every victim shares, written once: parsing and validation of the SMILES,
the cache by canonical SMILES, the query count, the budget and the checks on what the model
returned (shape, dtype, finite). A victim kind supplies only `_compute` (and `dim`): `Victim` here
(an encoder in this process), `molleak.victims.plugin.PluginVictim` (a Python callable) and
`molleak.victims.remote.RemoteVictim` (a served victim over HTTP). `molleak.victims.open.open_victim`
opens any of them from a spec.

Queries are counted per molecule the model actually computes: a repeated molecule (same
canonical SMILES) is answered from the cache and costs nothing, since an attacker keeps the
answers it already has.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch
from rdkit import Chem

from molleak.chem import rdkit_quiet, shorten, size_problem
from molleak.data.featurize import FEATURIZERS
from molleak.errors import FeaturizationError, MolleakError, QueryBudgetExceeded
from molleak.models.base import GraphEncoder

log = logging.getLogger(__name__)


class Query(NamedTuple):
    """One molecule to compute: its canonical SMILES (the cache key), the parsed molecule and the
    SMILES it was first asked as."""

    key: str
    mol: Chem.Mol
    smiles: str


class QueryVictim:
    """A model seen only through `embed`: counted, cached and budgeted here; computed by `_compute`.

    Args:
        name: how reports and errors name this victim.
        provenance: where the model came from (strategy, recipe, training-set hash...).
        batch_size: molecules per `_compute` chunk.
        budget: the most molecules the model may compute (None = unlimited).
        cache: keep embeddings by canonical SMILES.
    """

    #: how errors name this kind of victim ("victim X returned ...")
    kind = "victim"
    #: appended to the error for non-finite embeddings
    nonfinite_hint = ""

    def __init__(self, *, name: str = "victim", provenance: dict[str, Any] | None = None, batch_size: int = 64,
                 budget: int | None = None, cache: bool = True):
        self.name = name
        self.provenance = dict(provenance or {})
        self.batch_size = int(batch_size)
        self.budget = budget
        self.queries = 0
        self._cache: dict[str, np.ndarray] | None = {} if cache else None
        self._dim: int | None = None

    @property
    def dim(self) -> int | None:
        """Embedding width (None until known: a plug-in's is learned from its first answer)."""
        return self._dim

    def identity_sha256(self) -> str:
        """A sha256 that names this model (what a run's reuse hash records for an in-memory victim)."""
        raise NotImplementedError

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def parse(self, smiles: Any) -> Query:
        """One molecule, checked (type, size bounds, parse) and keyed by its canonical SMILES.

        Raises:
            FeaturizationError: not a string, over the size bounds of `molleak.chem`
                (MAX_SMILES_LENGTH characters, MAX_HEAVY_ATOMS heavy atoms), not a valid SMILES, no
                atoms, or a dummy atom left.
        """
        if not isinstance(smiles, str):
            raise FeaturizationError(f"{self.label}: a molecule is a {type(smiles).__name__}, not a SMILES")
        if problem := size_problem(smiles):
            raise FeaturizationError(f"{self.label}: SMILES {shorten(smiles)} {problem}")
        mol = Chem.MolFromSmiles(smiles) if smiles.isascii() else None  # a SMILES is ASCII
        if mol is None:
            raise FeaturizationError(f"{self.label}: invalid SMILES {shorten(smiles)}")
        if problem := size_problem(smiles, mol):  # checked before MolToSmiles, which crashes on huge molecules
            raise FeaturizationError(f"{self.label}: SMILES {shorten(smiles)} {problem}")
        if mol.GetNumAtoms() == 0:
            raise FeaturizationError(f"{self.label}: SMILES {shorten(smiles)} has no atoms")
        if any(atom.GetAtomicNum() == 0 for atom in mol.GetAtoms()):
            raise FeaturizationError(f"{self.label}: SMILES {shorten(smiles)} still holds a dummy atom '*'; "
                                     f"finalise it first")
        return Query(Chem.MolToSmiles(mol), mol, smiles)

    def embed(self, smiles: Sequence[str]) -> np.ndarray:
        """Embeddings [n, d] (float32) of the given molecules, in order.

        Raises:
            FeaturizationError: a SMILES is bad (see `parse`).
            QueryBudgetExceeded: computing the new molecules would exceed the budget.
            MolleakError: the model returned something other than finite float rows of width `dim`.
        """
        with rdkit_quiet():
            queries = [self.parse(s) for s in smiles]
        return self.answer(queries)

    def answer(self, queries: Sequence[Query]) -> np.ndarray:
        """Embeddings of already parsed molecules (`parse`), in order: budget, cache, count, checks."""
        todo: dict[str, Query] = {}
        for q in queries:
            if (self._cache is None or q.key not in self._cache) and q.key not in todo:
                todo[q.key] = q
        if self.budget is not None and self.queries + len(todo) > self.budget:
            raise QueryBudgetExceeded(
                f"{self.label}: {len(todo)} new queries would exceed the budget of {self.budget} "
                f"({self.queries} used)"
            )
        items = list(todo.values())
        table = self._cache if self._cache is not None else {}
        chunks = [items[start : start + self.batch_size] for start in range(0, len(items), self.batch_size)]
        for chunk, (rows, charged) in zip(chunks, self._compute_chunks(chunks), strict=True):
            self.queries += int(charged)  # each chunk kept once paid for
            table.update(zip((q.key for q in chunk), self._checked(rows, len(chunk)), strict=True))
        if not queries:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return np.stack([table[q.key] for q in queries])

    def _checked(self, rows: Any, n: int) -> np.ndarray:
        """What `_compute` returned as float32 [n, dim], or one error naming this victim."""
        if hasattr(rows, "detach"):  # a torch tensor
            rows = rows.detach().cpu().numpy()
        try:
            arr = np.asarray(rows)
        except (TypeError, ValueError) as exc:  # e.g. ragged lists
            raise MolleakError(f"{self.label} returned something that is not an array: {exc}") from None
        if arr.dtype.kind not in "fiu":
            raise MolleakError(f"{self.label} returned an array of {arr.dtype}, not of numbers")
        expected = f"({n}, {self.dim if self.dim is not None else 'd'})"
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1 or self.dim not in (None, arr.shape[1]):
            raise MolleakError(f"{self.label} returned an array of shape {tuple(arr.shape)} for {n} molecules, "
                               f"expected {expected}")
        with np.errstate(over="ignore", invalid="ignore"):  # out of float32's range: caught as non-finite below
            arr = arr.astype(np.float32, copy=False)
        self._dim = arr.shape[1] if self.dim is None else self.dim
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        if bad:
            raise MolleakError(f"{self.label} returned non-finite embeddings for {bad} molecules"
                               + (f": {self.nonfinite_hint}" if self.nonfinite_hint else ""))
        return arr

    def _compute(self, items: list[Query]) -> tuple[Any, int]:
        """Embeddings of `items` (at most `batch_size`; an array [len(items), dim]) and how many
        molecules this call computed, i.e. how many queries to count (a served victim reports what
        its server charged)."""
        raise NotImplementedError

    def _compute_chunks(self, chunks: list[list[Query]]) -> Iterator[tuple[Any, int]]:
        """`_compute` of each chunk, in order (a victim may overlap the work of successive chunks)."""
        for chunk in chunks:
            yield self._compute(chunk)


class Victim(QueryVictim):
    """A pre-trained encoder in this process, seen only through `embed`.

    Args:
        encoder: the graph encoder (put in eval mode here).
        name: how reports name this victim.
        provenance: where the weights came from (strategy, training-set hash, epochs, seed...).
        batch_size: molecules per forward pass (64 was fastest on a 2-core CPU: BENCHMARKS.md).
        budget: the most molecules the model may compute (None = unlimited).
        cache: keep embeddings by canonical SMILES.
    """

    nonfinite_hint = "the model's weights are broken"
    #: featurise the next chunk in a thread during this chunk's forward pass (`_compute_chunks`). Off by
    #: default: RDKit holds the GIL, and on 2 quiet cores the overlap was slower at the default batch of 64
    #: with 1 and 2 torch threads (BENCHMARKS.md, "Query throughput")
    overlap_featurisation = False

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
        super().__init__(name=name, provenance=provenance, batch_size=batch_size, budget=budget, cache=cache)
        self.encoder = encoder.eval()
        self._featurizer = FEATURIZERS.get(encoder.featurizer)

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

    def identity_sha256(self) -> str:
        return self.weights_sha256()

    def _batch(self, items: list[Query]) -> Any:
        """The encoder's input batch for `items`: featurised from the molecules `parse` made."""
        feat = self._featurizer.featurize
        return self._featurizer.collate([feat(q.mol, q.key) for q in items])

    @torch.inference_mode()
    def _forward(self, batch: Any) -> np.ndarray:
        return self.encoder.graph_embeddings(batch).float().numpy()

    def _compute(self, items: list[Query]) -> tuple[np.ndarray, int]:
        return self._forward(self._batch(items)), len(items)

    def _compute_chunks(self, chunks: list[list[Query]]) -> Iterator[tuple[np.ndarray, int]]:
        """Each chunk's embeddings, the next chunk featurised in a thread while this one's forward runs.

        Featurisation is Python holding the GIL; the forward pass spends its time in torch kernels
        that release it, so the two overlap. The graphs stay in this process (a thread, no
        pickling); the results are those of `_compute`, chunk by chunk, in order.
        """
        if len(chunks) < 2 or not self.overlap_featurisation:
            yield from super()._compute_chunks(chunks)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="molleak-featurise") as pool:
            pending = pool.submit(self._batch, chunks[0])
            for k, chunk in enumerate(chunks):
                batch = pending.result()  # re-raises a featurisation error of this chunk here
                if k + 1 < len(chunks):
                    pending = pool.submit(self._batch, chunks[k + 1])
                yield self._forward(batch), len(chunk)
