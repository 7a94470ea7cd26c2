"""What every score provides, and the per-step embedding table the victim-based scores share.

A score ranks the molecules of a candidate pool. It is a class registered in `SCORES` by name,
built from keyword options (`SCORES.get("eq1")(alpha=0.5)`), and called on an `AttackContext`
(see `molleak.attack.run`), which lazily provides the pool, the attacker's weak labels (the pool
labelled against the auxiliary set only) and the victim.

Several pool records may share a molecule (one canonical SMILES reached by different
template/motif decompositions). Record-level scores (eq1, adapter, calibrated) are computed per
record and **a molecule's score is the maximum over its records**; the record reaching it is the
molecule's provenance (and its alpha is reported). Molecule-level scores (random, qed, sa, mlp,
dock, priors) score each unique molecule once.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from molleak.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext
    from molleak.candidates.pool import CandidateRecord
    from molleak.models.victim import Victim

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    """A score over the pool's unique molecules (in `AttackContext.smiles` order).

    Attributes:
        values: one float per molecule, higher = more likely a training (sub)structure; NaN where
            the molecule was not scored (e.g. outside a docking subsample, or docking failed).
        best_record: per molecule, the index of the record that gave its score (record-level
            scores), or None for molecule-level scores.
        alpha: per molecule, the alpha of its best record as text (`;`-joined over steps), or None.
        info: what the score learned or measured (held-out AUC, chosen alpha, failures...).
    """

    values: np.ndarray
    best_record: np.ndarray | None = None
    alpha: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Score:
    """A ranking of the pool's molecules.

    Subclasses register with `@SCORES.register(name)`, take keyword options only (JSON values:
    the CLI passes `--option key=value`), set `uses_victim` (False for victim-free controls, which
    then never load or query it), and implement `__call__(ctx) -> ScoreResult`.
    """

    name: ClassVar[str] = ""
    uses_victim: ClassVar[bool] = True

    def __call__(self, ctx: AttackContext) -> ScoreResult:  # pragma: no cover - abstract
        raise NotImplementedError


SCORES: Registry[type[Score]] = Registry("score")


def load_scores() -> Registry[type[Score]]:
    """Import every module of this package so each score registers itself."""
    import molleak.attack.scoring as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "base":
            importlib.import_module(f"molleak.attack.scoring.{info.name}")
    return SCORES


def build_score(name: str, options: dict[str, Any] | None = None) -> Score:
    """Build a registered score from its name and options, with one clear error on bad options."""
    from molleak.errors import MolleakError

    cls = load_scores().get(name)
    try:
        return cls(**(options or {}))
    except TypeError as exc:
        raise MolleakError(f"bad options for score {name}: {exc}") from None


def molecule_max(record_values: np.ndarray, record_molecule: np.ndarray, n_molecules: int) -> tuple[np.ndarray, np.ndarray]:
    """Per molecule, the max over its records and the record reaching it.

    Args:
        record_values: one score per record.
        record_molecule: per record, the index of its molecule.
        n_molecules: number of unique molecules.

    Returns:
        (values [n_molecules], best_record [n_molecules]); molecules with no record get NaN / -1.
    """
    record_values = np.asarray(record_values, dtype=np.float64)
    order = np.lexsort((-record_values, record_molecule))  # by molecule, best record first
    mol_sorted = record_molecule[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = mol_sorted[1:] != mol_sorted[:-1]
    values = np.full(n_molecules, np.nan)
    best = np.full(n_molecules, -1, dtype=np.int64)
    values[mol_sorted[first]] = record_values[order[first]]
    best[mol_sorted[first]] = order[first]
    return values, best


def heavy_atoms(smiles: list[str]) -> np.ndarray:
    """Heavy-atom count of each SMILES (0 where it does not parse)."""
    from molleak.chem import to_mol

    out = np.zeros(len(smiles), dtype=np.float64)
    for i, s in enumerate(smiles):
        mol = to_mol(s)
        out[i] = mol.GetNumHeavyAtoms() if mol is not None else 0
    return out


@dataclass
class StepTable:
    """Every assembly step of a pool as indices into one table of distinct SMILES.

    Attributes:
        smiles: the distinct before / motif / after SMILES over all steps.
        record: per step, the index of its record.
        before, motif, after: per step, indices into `smiles`.
        n_atoms: heavy atoms per entry of `smiles`.
    """

    smiles: list[str]
    record: np.ndarray
    before: np.ndarray
    motif: np.ndarray
    after: np.ndarray
    n_atoms: np.ndarray

    @classmethod
    def build(cls, records: list[CandidateRecord]) -> StepTable:
        index: dict[str, int] = {}
        rec, bef, mot, aft = [], [], [], []
        for r, record in enumerate(records):
            for step in record.steps:
                rec.append(r)
                bef.append(index.setdefault(step.before, len(index)))
                mot.append(index.setdefault(step.motif, len(index)))
                aft.append(index.setdefault(step.after, len(index)))
        smiles = list(index)
        return cls(smiles, np.asarray(rec, dtype=np.int64), np.asarray(bef, dtype=np.int64),
                   np.asarray(mot, dtype=np.int64), np.asarray(aft, dtype=np.int64), heavy_atoms(smiles))

    def embed(self, victim: Victim) -> np.ndarray:
        """Embeddings of `smiles` through the victim: one batched call, each distinct SMILES once."""
        return victim.embed(self.smiles)

    def alpha_text(self, step_alpha: np.ndarray, n_records: int) -> list[str]:
        """Per record, its steps' alphas as text (`;`-joined for multi-step records)."""
        parts: list[list[str]] = [[] for _ in range(n_records)]
        for r, a in zip(self.record, step_alpha, strict=True):
            parts[r].append(f"{a:.4f}")
        return [";".join(p) for p in parts]


def cosine(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise cosine similarity of two [n, d] arrays."""
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, eps)


def heldout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of n molecules into (train, held-out) boolean masks."""
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    n_held = int(round(n * fraction))
    if n_held:
        held[rng.choice(n, size=n_held, replace=False)] = True
    return ~held, held
