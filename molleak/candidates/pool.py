"""The candidate pool: every (template, actions) record, its finalised molecule and its steps.

One record per way of building a molecule; several records may share a molecule (the same
canonical SMILES reached by different template/motif decompositions). Scores are computed per
record and a molecule's score is the maximum over its records; rankings are over unique SMILES.

File format (`.tsv`, optionally `.tsv.gz`), one record per line, with a header:

    smiles  template  actions  steps

- `smiles`: the finalised candidate (every `*` to H, sanitised, canonical);
- `template`: index of the template in the vocabulary;
- `actions`: `p,i,j` per step joined by `;` (attachment point on the current molecule, motif
  index, attachment point on the motif);
- `steps`: per step `before|motif|after`, each finalised SMILES, joined by `;`: the molecule
  before the step, the motif, and the molecule after it (what the Eq. 1 score needs).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from molleak.errors import InputFileError
from molleak.runs import write_atomic

HEADER = "smiles\ttemplate\tactions\tsteps"

#: what reading a truncated, corrupt or binary (gzip) text file raises
_READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, UnicodeDecodeError, OSError)


def _read_problem(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "it is truncated (the compressed stream ends early)"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return f"it is not a valid gzip file ({exc})"
    return f"it cannot be read ({getattr(exc, 'strerror', None) or exc})"


@dataclass(frozen=True)
class Step:
    """One assembly step, as finalised SMILES."""

    before: str
    motif: str
    after: str


@dataclass(frozen=True)
class CandidateRecord:
    smiles: str
    template: int
    actions: tuple[tuple[int, int, int], ...]
    steps: tuple[Step, ...]

    def to_line(self) -> str:
        acts = ";".join(f"{p},{i},{j}" for p, i, j in self.actions)
        steps = ";".join(f"{s.before}|{s.motif}|{s.after}" for s in self.steps)
        return f"{self.smiles}\t{self.template}\t{acts}\t{steps}"

    @classmethod
    def from_line(cls, line: str) -> CandidateRecord:
        """Parse one record; ValueError (or TypeError) if it is malformed."""
        smiles, template, acts, steps = line.rstrip("\n").split("\t")
        actions = tuple(tuple(int(v) for v in a.split(",")) for a in acts.split(";") if a)
        if any(len(a) != 3 for a in actions):
            raise ValueError(f"an action is not p,i,j: {acts!r}")
        step_objs = tuple(Step(*s.split("|")) for s in steps.split(";") if s)
        return cls(smiles, int(template), actions, step_objs)  # type: ignore[arg-type]


def _open_text(path: Path, mode: str):
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_pool(path: str | os.PathLike) -> Iterator[CandidateRecord]:
    """Stream records from a pool file.

    Raises:
        InputFileError: the file is missing, a directory, truncated or corrupt (gzip), not UTF-8
            text, has the wrong header, or holds a malformed record (one line naming file and line).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"candidate pool not found: {p}")
    if not p.is_file():
        raise InputFileError(f"candidate pool {p} is not a file")
    lineno = 1
    try:
        with _open_text(p, "r") as fh:
            header = fh.readline().rstrip("\n")
            if header != HEADER:
                shown = header if len(header) <= 60 else header[:57] + "..."
                raise InputFileError(f"candidate pool {p} has header {shown!r}, expected {HEADER!r}")
            for lineno, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                try:
                    record = CandidateRecord.from_line(line)
                except (ValueError, TypeError) as exc:
                    raise InputFileError(f"candidate pool {p}, line {lineno}: malformed record ({exc})") from None
                yield record
    except _READ_ERRORS as exc:
        raise InputFileError(f"candidate pool {p} is unreadable after line {lineno}: {_read_problem(exc)}") from None


def read_pool(path: str | os.PathLike) -> list[CandidateRecord]:
    records = list(iter_pool(path))
    if not records:
        raise InputFileError(f"candidate pool is empty: {path}")
    return records


def write_pool(path: str | os.PathLike, records: Iterable[CandidateRecord]) -> None:
    """Atomically write a pool file (gzip if the name ends in .gz)."""
    text = HEADER + "\n" + "".join(r.to_line() + "\n" for r in records)
    p = Path(path)
    write_atomic(p, gzip.compress(text.encode(), mtime=0) if p.suffix == ".gz" else text)


def unique_smiles(records: Iterable[CandidateRecord]) -> list[str]:
    """Unique candidate SMILES in first-seen order."""
    return list(dict.fromkeys(r.smiles for r in records))
