"""The attack's context: everything a score or method may use, each part built lazily and timed.

Attacker code: it holds the auxiliary set, the candidate pool and the victim (query access
only); it never reads a training set.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molleak.attack.scoring.base import StepTable
from molleak.errors import MolleakError

if TYPE_CHECKING:  # pragma: no cover
    from molleak.candidates.pool import CandidateRecord
    from molleak.models.victim import QueryVictim

log = logging.getLogger(__name__)


class AttackContext:
    """Everything a score or method may use, each part built lazily on first use and timed.

    Args:
        aux_smiles: the attacker's auxiliary molecules (canonical).
        seed: the run's seed.
        records: the candidate pool, if already built.
        pool_path: a pool file to read when `records` is None.
        vocab: a `Vocabulary` to enumerate from when neither records nor pool_path is given.
        steps: assembly steps for enumeration.
        templates: template indices to enumerate (None: all).
        victim: a loaded victim, or
        victim_path: a victim spec to open on first use (with `budget`): a checkpoint path,
            `http://host:port` (a served victim) or `module:callable` (`molleak.victims.open`).
        work_dir: where scores may keep artefacts (shadow encoder, docking cache).
        workers: worker processes for enumeration and labelling.
    """

    def __init__(self, *, aux_smiles: list[str], seed: int, records: list[CandidateRecord] | None = None,
                 pool_path: str | Path | None = None, vocab: Any = None, steps: int = 1,
                 templates: list[int] | None = None, victim: QueryVictim | None = None, victim_path: str | None = None,
                 budget: int | None = None, work_dir: str | Path | None = None, workers: int | None = None):
        self.aux_smiles = list(aux_smiles)
        self.seed = int(seed)
        self.pool_path = pool_path
        self.vocab, self.steps, self.templates, self.workers = vocab, steps, templates, workers
        self.victim_path, self.budget = victim_path, budget
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.timings: dict[str, float] = {}
        self._records = records
        self._victim = victim
        self._smiles: list[str] | None = None
        self._record_molecule: np.ndarray | None = None
        self._aux_labels: Any = None
        self._step_table: StepTable | None = None
        self._step_emb: dict[int, np.ndarray] = {}

    def for_victim(self, victim: QueryVictim) -> AttackContext:
        """A context for another victim over the same pool and aux set, sharing what is already built
        and does not depend on the victim (records, unique molecules, weak labels, step table)."""
        other = AttackContext(aux_smiles=self.aux_smiles, seed=self.seed, records=self._records,
                              pool_path=self.pool_path, vocab=self.vocab, steps=self.steps, templates=self.templates,
                              victim=victim, budget=self.budget, work_dir=self.work_dir, workers=self.workers)
        other._smiles, other._record_molecule = self._smiles, self._record_molecule
        other._aux_labels, other._step_table = self._aux_labels, self._step_table
        return other

    def _timed(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    @property
    def records(self) -> list[CandidateRecord]:
        """The candidate pool (read or enumerated on first use)."""
        if self._records is None:
            t0 = time.perf_counter()
            if self.pool_path is not None:
                from molleak.candidates.pool import read_pool

                self._records = read_pool(self.pool_path)
            elif self.vocab is not None:
                from molleak.candidates.enumerate import enumerate_pool

                self._records = list(enumerate_pool(self.vocab, self.steps, templates=self.templates,
                                                    workers=self.workers))
            else:
                raise MolleakError("no candidate pool: give a pool file or a vocabulary")
            if not self._records:
                raise MolleakError("the candidate pool is empty (no template/motif combination assembled)")
            self._timed("pool", t0)
        return self._records

    @property
    def smiles(self) -> list[str]:
        """The pool's unique molecules, in first-seen order."""
        if self._smiles is None:
            from molleak.candidates.pool import unique_smiles

            self._smiles = unique_smiles(self.records)
        return self._smiles

    @property
    def record_molecule(self) -> np.ndarray:
        """Per record, the index of its molecule in `smiles`."""
        if self._record_molecule is None:
            index = {s: i for i, s in enumerate(self.smiles)}
            self._record_molecule = np.array([index[r.smiles] for r in self.records], dtype=np.int64)
        return self._record_molecule

    @property
    def aux_labels(self) -> Any:
        """The attacker's weak labels: the pool's molecules labelled against the aux set (`Labels`)."""
        if self._aux_labels is None:
            from molleak.oracle import Bank, label

            smiles = self.smiles
            t0 = time.perf_counter()
            self._aux_labels = label(smiles, Bank(self.aux_smiles, name="aux set"), workers=self.workers)
            self._timed("label_aux", t0)
            log.info("aux weak labels: %d of %d pool molecules are substructures of an aux molecule",
                     int(np.sum(self._aux_labels.substructure)), len(smiles))
        return self._aux_labels

    @property
    def victim(self) -> QueryVictim:
        """The victim (opened on first use, with the run's query budget)."""
        if self._victim is None:
            if self.victim_path is None:
                raise MolleakError("this method needs a victim: pass --victim")
            from molleak.victims.open import open_victim

            self._victim = open_victim(self.victim_path, budget=self.budget)
        return self._victim

    @property
    def queries(self) -> int:
        """Molecules the victim has computed so far (0 if it was never loaded)."""
        return 0 if self._victim is None else int(self._victim.queries)

    @property
    def step_table(self) -> StepTable:
        if self._step_table is None:
            self._step_table = StepTable.build(self.records)
        return self._step_table

    def step_embeddings(self, victim: QueryVictim | None = None) -> np.ndarray:
        """Embeddings of `step_table.smiles` through `victim` (default: the victim), computed once."""
        victim = self.victim if victim is None else victim
        if id(victim) not in self._step_emb:
            t0 = time.perf_counter()
            self._step_emb[id(victim)] = self.step_table.embed(victim)
            self._timed("embed", t0)
        return self._step_emb[id(victim)]

    def molecule_embeddings(self) -> np.ndarray:
        """The victim's embeddings of the pool's unique molecules (one batched call)."""
        t0 = time.perf_counter()
        out = self.victim.embed(self.smiles)
        self._timed("embed", t0)
        return out

    def provenance(self, record_index: int) -> str:
        """How a record was built: `template=T;core=<finalised template>;actions=p,i,j|p,i,j`."""
        r = self.records[record_index]
        acts = "|".join(f"{p},{i},{j}" for p, i, j in r.actions)
        core = r.steps[0].before if r.steps else r.smiles
        return f"template={r.template};core={core};actions={acts}"
