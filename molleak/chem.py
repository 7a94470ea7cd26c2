"""RDKit helpers used everywhere: parsing, canonical SMILES and quiet logging.

Following datamol, `to_mol` returns None on bad input and the caller decides what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rdkit import Chem, RDLogger


@contextlib.contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence RDKit's C++ logs inside the block only."""
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")


def to_mol(smiles: str) -> Chem.Mol | None:
    """Parse a SMILES string; None if it is empty or invalid."""
    if not smiles:
        return None
    with rdkit_quiet():
        return Chem.MolFromSmiles(smiles)


def canonical_smiles(smiles: str) -> str | None:
    """Canonical isomeric SMILES of a SMILES string, or None if it does not parse."""
    mol = to_mol(smiles)
    if mol is None:
        return None
    return Chem.MolToSmiles(mol)


def mol_to_smiles(mol: Chem.Mol) -> str:
    """Canonical isomeric SMILES of a molecule."""
    return Chem.MolToSmiles(mol)


def _canon_chunk(chunk: list[str]) -> list[str | None]:
    with rdkit_quiet():
        out = []
        for s in chunk:
            m = Chem.MolFromSmiles(s) if s else None
            out.append(Chem.MolToSmiles(m) if m is not None else None)
        return out


def default_workers() -> int:
    """Worker processes for RDKit-heavy work: the cores this process may use."""
    import os

    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def canonicalize_many(smiles: list[str], workers: int | None = None, chunk: int = 2000) -> list[str | None]:
    """Canonical SMILES of many strings (None where invalid), in order, over worker processes."""
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(smiles) < 4 * chunk:
        return _canon_chunk(smiles)
    import multiprocessing as mp

    chunks = [smiles[i : i + chunk] for i in range(0, len(smiles), chunk)]
    with mp.get_context("fork").Pool(workers) as pool:
        parts = pool.map(_canon_chunk, chunks)
    return [s for part in parts for s in part]
