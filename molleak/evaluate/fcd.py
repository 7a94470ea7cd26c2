"""Frechet ChemNet Distance with canonicalised inputs and cached ChemNet activations.

Uses the `fcd` package (ChemNet weights ship in its wheel). Both sides are canonicalised (and
invalid SMILES dropped) before anything else, so two spellings of one set give the same distance;
activations are cached by canonical SMILES, so repeated references cost nothing.
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


def chemnet_activations(smiles: Sequence[str]) -> np.ndarray:
    """ChemNet penultimate activations [n, 512] of canonical SMILES (cached per molecule)."""
    import fcd

    todo = [s for s in dict.fromkeys(smiles) if s not in _ACTIVATIONS]
    if todo:
        acts = fcd.get_predictions(_chemnet(), todo, device="cpu")
        _ACTIVATIONS.update(zip(todo, acts, strict=True))
    return np.stack([_ACTIVATIONS[s] for s in smiles]) if smiles else np.zeros((0, 512), dtype=np.float32)


def fcd_score(a: Sequence[str], b: Sequence[str]) -> float:
    """FCD between two molecule sets (canonicalised and de-duplicated first).

    Raises:
        MolleakError: a side has fewer than two valid molecules (no covariance).
    """
    from fcd import calculate_frechet_distance

    ca, cb = canonical_set(a), canonical_set(b)
    if len(ca) < 2 or len(cb) < 2:
        raise MolleakError(f"FCD needs at least two valid molecules per side, got {len(ca)} and {len(cb)}")
    xa, xb = chemnet_activations(ca).astype(np.float64), chemnet_activations(cb).astype(np.float64)
    value = calculate_frechet_distance(mu1=xa.mean(0), sigma1=np.cov(xa.T), mu2=xb.mean(0), sigma2=np.cov(xb.T))
    return float(max(value, 0.0))
