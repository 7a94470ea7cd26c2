"""Frechet ChemNet Distance with canonicalised inputs and cached ChemNet activations.

Uses the `fcd` package (ChemNet weights ship in its wheel). Both sides are canonicalised (and
invalid SMILES dropped) before anything else, so two spellings of one set give the same distance;
activations are cached by canonical SMILES in memory and on disk (`<cache dir>/chemnet/`, shared by
plan workers and later runs), so repeated references cost nothing. ChemNet pads every SMILES to the
same length, so a molecule's activations do not depend (beyond float rounding) on its batch.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np

from molleak.chem import canonical_smiles
from molleak.errors import MolleakError

log = logging.getLogger(__name__)

_ACTIVATIONS: dict[str, np.ndarray] = {}


@functools.lru_cache(maxsize=1)
def _chemnet():
    import fcd

    return fcd.load_ref_model()


def canonical_set(smiles: Sequence[str]) -> list[str]:
    """Unique canonical SMILES of the valid inputs, in first-seen order."""
    return list(dict.fromkeys(c for s in smiles if (c := canonical_smiles(s)) is not None))


def _disk_cache():
    """ChemNet activations on disk, one file per `fcd` release (its weights ship in the wheel)."""
    from importlib.metadata import version

    from molleak.oracle.bank import default_cache_dir
    from molleak.sqlite_cache import SqliteCache

    return SqliteCache(default_cache_dir() / "chemnet" / f"fcd-{version('fcd')}.sqlite", ("activations BLOB",),
                       "ChemNet activation cache")


def chemnet_activations(smiles: Sequence[str]) -> np.ndarray:
    """ChemNet penultimate activations [n, 512] of canonical SMILES (cached per molecule)."""
    import fcd

    from molleak.runs import torch_threads

    todo = [s for s in dict.fromkeys(smiles) if s not in _ACTIVATIONS]
    if todo:
        disk = _disk_cache()
        for s, (blob,) in disk.get(todo).items():
            act = np.frombuffer(blob, dtype=np.float32)
            if act.shape == (512,):
                _ACTIVATIONS[s] = act
        todo = [s for s in todo if s not in _ACTIVATIONS]
    if todo:
        with torch_threads(1):  # small batches: a second thread only spins (6x slower on a busy machine)
            acts = fcd.get_predictions(_chemnet(), todo, device="cpu")
        new = dict(zip(todo, acts.astype(np.float32), strict=True))
        _ACTIVATIONS.update(new)
        disk.put({s: (a.tobytes(),) for s, a in new.items()})
    return np.stack([_ACTIVATIONS[s] for s in smiles]) if smiles else np.zeros((0, 512), dtype=np.float32)


def fcd_score(a: Sequence[str], b: Sequence[str]) -> float:
    """FCD between two molecule sets (canonicalised and de-duplicated first).

    Raises:
        MolleakError: a side has fewer than two valid molecules (no covariance).
    """
    ca, cb = canonical_set(a), canonical_set(b)
    if len(ca) < 2 or len(cb) < 2:
        raise MolleakError(f"FCD needs at least two valid molecules per side, got {len(ca)} and {len(cb)}")
    xa, xb = chemnet_activations(ca).astype(np.float64), chemnet_activations(cb).astype(np.float64)
    return frechet_distance(xa.mean(0), np.cov(xa.T), xb.mean(0), np.cov(xb.T))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), via symmetric eigendecompositions.

    tr((S1 S2)^1/2) equals the sum of the square roots of the eigenvalues of S1^1/2 S2 S1^1/2
    (symmetric PSD), which `eigh` gets in a fraction of a second where the general `sqrtm` the
    `fcd` package uses takes tens of seconds at 512 dimensions on a busy 2-core machine.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # 512x512: BLAS threads only spin on a shared machine (15x slower)
        w, v = np.linalg.eigh(sigma1)
        root1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
        inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_sqrt = float(np.sqrt(np.clip(inner, 0.0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)
