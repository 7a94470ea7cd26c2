"""Reading and writing SMILES files.

A `.smi` file holds one molecule per line: the SMILES is the first whitespace-separated token;
anything after it (an id, a score) is ignored. Blank lines and lines starting with `#` are
skipped, as is a first line whose first token is `smiles` (any case), a CSV-style header.
Invalid and duplicate SMILES are counted and reported, never silently dropped.

Canonicalising a set costs about 0.2 ms a molecule, and every cell of a plan reads the same private,
reference and auxiliary sets: what a file canonicalises to is cached on disk by the sha256 of its
bytes and RDKit's version (`<cache dir>/smiles/`), and read back in milliseconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molleak.chem import canonical_smiles
from molleak.errors import InputFileError
from molleak.runs import write_atomic

log = logging.getLogger(__name__)

READ_CACHE_VERSION = 1  # bump when `canonical_smiles` or this reader's rules change: old entries are ignored


@dataclass
class SmilesSet:
    """Unique canonical SMILES read from a file, with what was dropped and why."""

    smiles: list[str]
    path: str
    n_lines: int
    n_invalid: int = 0
    n_duplicate: int = 0
    invalid_examples: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.smiles)

    def summary(self) -> str:
        return (
            f"{self.path}: {len(self.smiles)} unique valid molecules from {self.n_lines} lines "
            f"({self.n_invalid} invalid, {self.n_duplicate} duplicate)"
        )


def _iter_tokens(path: Path, what: str):
    """(line number, first token) of each SMILES line; InputFileError if the file is not UTF-8 text."""
    try:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if b"\x00" in raw:
                    raise InputFileError(f"{what} {path} is not UTF-8 text (NUL byte on line {lineno}): a binary file?")
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputFileError(f"{what} {path} is not UTF-8 text (line {lineno}): a binary file?") from None
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                token = stripped.split()[0]
                if lineno == 1 and token.lower() == "smiles":
                    continue
                yield lineno, token
    except OSError as exc:
        raise InputFileError(f"{what} cannot be read ({exc.strerror or exc}): {path}") from None


def read_smiles(path: str | os.PathLike, *, what: str = "SMILES file", canonicalize: bool = True) -> SmilesSet:
    """Read a SMILES file into unique canonical SMILES, keeping file order.

    Args:
        path: the file to read.
        what: how to name the file in error messages (e.g. "private set").
        canonicalize: canonicalise each SMILES (and so detect invalid ones). Only pass False for
            files molleak wrote itself, which are canonical already.

    Raises:
        InputFileError: the file is missing, not a file, unreadable, not UTF-8 text (a binary file),
            empty, or holds no valid molecule. SMILES over the size bounds of `molleak.chem.to_mol`
            count as invalid.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{what} not found: {p}")
    if not p.is_file():
        raise InputFileError(f"{what} is not a file: {p}")
    if canonicalize and (digest := _sha256_of(p)) is not None:
        data = cached_json(smiles_cache_path(digest), lambda: dataclasses.asdict(_read(p, what, canonicalize)),
                           valid=lambda d: isinstance(d, dict) and set(d) == _SET_FIELDS)
        result = SmilesSet(**{**data, "path": str(p), "invalid_examples": [tuple(x) for x in data["invalid_examples"]]})
    else:
        result = _read(p, what, canonicalize)
    if result.n_invalid:
        shown = ", ".join(f"line {n} '{s}'" for n, s in result.invalid_examples)
        log.warning("%s: %d invalid SMILES skipped (%s)", p, result.n_invalid, shown)
    if result.n_duplicate:
        log.info("%s: %d duplicate SMILES (by canonical form) skipped", p, result.n_duplicate)
    return result


def _read(p: Path, what: str, canonicalize: bool) -> SmilesSet:
    out: list[str] = []
    seen: set[str] = set()
    n_lines = n_invalid = n_dup = 0
    invalid: list[tuple[int, str]] = []
    for lineno, token in _iter_tokens(p, what):
        n_lines += 1
        smi = canonical_smiles(token) if canonicalize else token
        if smi is None:
            n_invalid += 1
            if len(invalid) < 5:
                invalid.append((lineno, token if len(token) <= 80 else token[:77] + "..."))
            continue
        if smi in seen:
            n_dup += 1
            continue
        seen.add(smi)
        out.append(smi)
    if n_lines == 0:
        raise InputFileError(f"{what} is empty (no SMILES lines): {p}")
    if not out:
        raise InputFileError(
            f"{what} holds no valid SMILES: all {n_invalid} lines failed to parse "
            f"(first: line {invalid[0][0]} '{invalid[0][1]}'): {p}"
        )
    return SmilesSet(out, str(p), n_lines, n_invalid, n_dup, invalid)


_SET_FIELDS = {f.name for f in dataclasses.fields(SmilesSet)}


def _sha256_of(p: Path) -> str | None:
    """The sha256 of a file's bytes (None when it cannot be read here: `_read` names the problem)."""
    digest = hashlib.sha256()
    try:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def smiles_cache_path(key: str) -> Path:
    """Where a SMILES computation keyed by `key` (a content sha256) is cached, for this RDKit."""
    from rdkit import rdBase

    from molleak.oracle.bank import default_cache_dir

    return default_cache_dir() / "smiles" / f"{key}.rdkit-{rdBase.rdkitVersion}.v{READ_CACHE_VERSION}.json"


def cached_json(path: Path, compute: Callable[[], Any], valid: Callable[[Any], bool]) -> Any:
    """`compute()` (JSON-able), cached in the file `path`.

    A cache is only a shortcut: a missing file is computed and written (atomically); an unreadable or
    invalid one is a warning and computed afresh; a failed write is a warning.
    """
    try:
        value = json.loads(path.read_text())
        if valid(value):
            return value
        log.warning("ignoring the cache %s: it does not match what it caches", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable cache %s (%s)", path, exc)
    value = compute()
    try:
        write_atomic(path, json.dumps(value))
    except OSError as exc:
        log.warning("could not write the cache %s (%s)", path, exc)
    return value


def write_smiles(path: str | os.PathLike, smiles: list[str]) -> None:
    """Atomically write one SMILES per line."""
    write_atomic(path, "".join(s + "\n" for s in smiles))
