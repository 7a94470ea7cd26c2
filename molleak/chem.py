"""RDKit helpers used everywhere: parsing, canonical SMILES and quiet logging.

Following datamol, `to_mol` returns None on bad input and the caller decides what to do. It also
returns None for molecules over the size bounds below, which no audit needs and which crash RDKit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rdkit import Chem, RDLogger

#: Most heavy atoms one molecule may have. Drug-like molecules have under 100 and the largest in
#: MOSES/ZINC/ChEMBL-style sets a few hundred; RDKit's recursive SMILES writer overflows the C stack
#: (a segfault, no Python error) near 20,000 chain atoms and canonicalisation grows quadratically
#: (3 s at 10,000 atoms), so anything over this bound is refused before it can crash or stall a run.
MAX_HEAVY_ATOMS = 1_000
#: Most characters one SMILES string may have: ample for MAX_HEAVY_ATOMS atoms written with
#: brackets, bonds and ring closures, and checked before parsing so that a huge line costs nothing.
MAX_SMILES_LENGTH = 20_000


def shorten(smiles: str, width: int = 60) -> str:
    """A SMILES for a one-line message: its repr, cut to about `width` characters."""
    text = smiles if len(smiles) <= width else f"{smiles[: width - 3]}..."
    return repr(text) + (f" ({len(smiles)} characters)" if len(smiles) > width else "")


def size_problem(smiles: str, mol: Chem.Mol | None = None) -> str | None:
    """Why a SMILES (or its parsed molecule) is over the size bounds, or None if it is within them."""
    if len(smiles) > MAX_SMILES_LENGTH:
        return f"is {len(smiles)} characters long, over the bound of {MAX_SMILES_LENGTH}"
    if mol is not None and mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        return f"has {mol.GetNumHeavyAtoms()} heavy atoms, over the bound of {MAX_HEAVY_ATOMS}"
    return None


def parse_bounded(smiles: str) -> Chem.Mol | None:
    """`Chem.MolFromSmiles` that gives None for empty, invalid or oversized input (not silenced)."""
    if not smiles or len(smiles) > MAX_SMILES_LENGTH:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumHeavyAtoms() > MAX_HEAVY_ATOMS:
        return None
    return mol


@contextlib.contextmanager
def rdkit_quiet() -> Iterator[None]:
    """Silence RDKit's C++ logs inside the block only."""
    RDLogger.DisableLog("rdApp.*")
    try:
        yield
    finally:
        RDLogger.EnableLog("rdApp.*")


def to_mol(smiles: str) -> Chem.Mol | None:
    """Parse a SMILES string; None if it is empty, invalid, or over `MAX_SMILES_LENGTH` characters
    or `MAX_HEAVY_ATOMS` heavy atoms."""
    with rdkit_quiet():
        return parse_bounded(smiles)


def canonical_smiles(smiles: str) -> str | None:
    """Canonical isomeric SMILES of a SMILES string, or None if it does not parse (or is oversized)."""
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
            m = parse_bounded(s)
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
