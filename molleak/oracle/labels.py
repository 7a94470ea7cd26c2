"""Membership labels of candidates against a bank: substructure hit, exact hit, bank count.

Definitions (method.md section 3), chirality ignored throughout:

- `substructure`: the candidate is a substructure of at least one bank molecule
  (`HasSubstructMatch`, the paper's definition of "extracted");
- `exact`: the candidate itself is a bank molecule (same canonical SMILES without stereo);
- `count`: how many bank molecules contain the candidate. Counting must confirm every screened
  bank molecule, while the boolean stops at the first match, so counts are optional
  (`counts=False` leaves `count` at -1 and is several times faster on common fragments).

Labels are cached by (bank sha256, candidate canonical SMILES) in memory and on disk
(`<cache dir>/labels/<bank sha256>.v<version>.kv.sqlite`, `molleak.sqlite_cache`); a cached label without a count is recomputed when a
count is asked for.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rdkit import Chem

from molleak.chem import default_workers, parse_bounded, rdkit_quiet
from molleak.errors import InputFileError
from molleak.oracle.bank import Bank, exact_key, pattern_bits
from molleak.runs import write_atomic
from molleak.sqlite_cache import SqliteCache

log = logging.getLogger(__name__)

LABEL_VERSION = 1  # bump when a label's definition changes: old cache entries are ignored
NOT_COUNTED = -1
LABELS_HEADER = "smiles\tsubstructure\texact\tcount"

# (bank sha256) -> {canonical smiles: (substructure, exact, count)}
_MEMORY: dict[str, dict[str, tuple[bool, bool, int]]] = {}


@dataclass
class Labels:
    """Labels of a list of candidates, in the candidates' order.

    Attributes:
        smiles: the candidates as given.
        substructure: bool [n], substructure of at least one bank molecule.
        exact: bool [n], itself a bank molecule.
        count: int64 [n], bank molecules containing it (-1 where not counted).
        valid: bool [n], the candidate parsed (invalid ones are labelled False / 0).
        bank_sha256: the bank's identity.
        seconds: wall time of the labelling call.
        from_cache: how many labels came from a cache.
        stats: labels computed, workers, whether counted, CPU seconds (workers + caller).
    """

    smiles: list[str]
    substructure: np.ndarray
    exact: np.ndarray
    count: np.ndarray
    valid: np.ndarray
    bank_sha256: str
    seconds: float = 0.0
    from_cache: int = 0
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.smiles)

    def summary(self) -> str:
        n = len(self)
        text = (f"{n} candidates: {int(self.substructure.sum())} substructure hits "
                f"({self.substructure.mean() if n else 0:.1%}), {int(self.exact.sum())} exact hits")
        if n and (self.count >= 0).all():
            text += f", median count {int(np.median(self.count))}"
        if (~self.valid).any():
            text += f", {int((~self.valid).sum())} invalid"
        return text + f"; {self.seconds:.1f} s ({self.from_cache} from cache)"

    def to_tsv(self) -> str:
        rows = (f"{s}\t{int(a)}\t{int(b)}\t{int(c)}\n"
                for s, a, b, c in zip(self.smiles, self.substructure, self.exact, self.count, strict=True))
        return LABELS_HEADER + "\n" + "".join(rows)

    def write(self, path: str | os.PathLike) -> None:
        """Atomically write `smiles  substructure  exact  count` (0/1, 0/1, int; -1 = not counted)."""
        write_atomic(path, self.to_tsv())

    @classmethod
    def read(cls, path: str | os.PathLike) -> Labels:
        """Read a labels file written by `write` (the bank identity is not stored in it)."""
        p = Path(path)
        if not p.is_file():
            raise InputFileError(f"labels file not found: {p}")
        try:
            lines = p.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputFileError(f"labels file {p} is not UTF-8 text (a binary file?)") from None
        if not lines or lines[0] != LABELS_HEADER:
            raise InputFileError(f"labels file {p} does not start with the header {LABELS_HEADER!r}")
        smiles, sub, ex, cnt = [], [], [], []
        for lineno, line in enumerate(lines[1:], start=2):
            parts = line.split("\t")
            if len(parts) != 4:
                raise InputFileError(f"labels file {p}, line {lineno}: expected 4 tab-separated fields")
            try:
                sub.append(bool(int(parts[1])))
                ex.append(bool(int(parts[2])))
                cnt.append(int(parts[3]))
            except ValueError:
                raise InputFileError(f"labels file {p}, line {lineno}: non-integer label") from None
            smiles.append(parts[0])
        return cls(smiles, np.array(sub, bool), np.array(ex, bool), np.array(cnt, np.int64),
                   np.ones(len(smiles), bool), bank_sha256="")


# ---------------------------------------------------------------------------------------------
# disk cache


def _disk_cache(cache_dir: Path, bank_sha: str) -> SqliteCache:
    """The labels of one bank on disk: (substructure, exact, count) per candidate canonical SMILES."""
    return SqliteCache(cache_dir / "labels" / f"{bank_sha}.v{LABEL_VERSION}.kv.sqlite",
                       ("substructure INTEGER", "exact INTEGER", "count INTEGER"), "label cache")


# ---------------------------------------------------------------------------------------------
# labelling


_BANK: Bank | None = None  # set in the parent before forking workers


def _label_one(mol: Chem.Mol, canonical: str, bank: Bank, counts: bool) -> tuple[bool, bool, int]:
    exact = bank.has_exact(exact_key(mol, canonical))
    hits = 0
    for k in bank.screen(pattern_bits([mol])[0]).tolist():
        target = bank.mol(k)
        if target is not None and target.HasSubstructMatch(mol):
            hits += 1
            if not counts:
                break
    sub = hits > 0 or exact
    return sub, exact, (hits if counts else NOT_COUNTED)


def _label_chunk(args: tuple[list[str], bool]) -> tuple[list[tuple[str | None, bool, bool, int]], float]:
    smiles, counts = args
    cpu0 = time.process_time()
    bank = _BANK
    assert bank is not None
    out: list[tuple[str | None, bool, bool, int]] = []
    with rdkit_quiet():
        for s in smiles:
            mol = parse_bounded(s)  # None also for molecules over the size bounds (RDKit crashes on huge ones)
            if mol is None:
                out.append((None, False, False, 0))
                continue
            canonical = Chem.MolToSmiles(mol)
            out.append((canonical, *_label_one(mol, canonical, bank, counts)))
    return out, time.process_time() - cpu0


def label(
    candidates: Sequence[str],
    bank: Bank,
    workers: int | None = None,
    *,
    counts: bool = True,
    cache_dir: str | os.PathLike | bool | None = None,
) -> Labels:
    """Label candidates against a bank: substructure, exact, and (optionally) count.

    Args:
        candidates: candidate SMILES (canonical ones hit the cache directly).
        bank: the bank (its index is built or loaded on first use).
        workers: processes (default: the usable cores).
        counts: count every bank molecule containing each candidate. False stops at the first
            match (much faster for common fragments) and leaves `count` at -1.
        cache_dir: label cache directory (None: the bank's, i.e. `$MOLLEAK_CACHE_DIR` or
            `~/.cache/molleak`; False: memory cache only).

    Returns:
        Labels in the order of `candidates`.
    """
    global _BANK
    t0, cpu0 = time.perf_counter(), time.process_time()
    worker_cpu = 0.0
    cands = list(candidates)
    workers = default_workers() if workers is None else max(1, workers)
    from molleak.oracle.bank import resolve_cache_dir

    cdir = bank.cache_dir if cache_dir is None else resolve_cache_dir(cache_dir)
    disk = _disk_cache(cdir, bank.sha256) if cdir is not None else None
    memory = _MEMORY.setdefault(bank.sha256, {})

    def usable(v: tuple[bool, bool, int] | None) -> bool:
        return v is not None and (not counts or v[2] != NOT_COUNTED)

    uniq = list(dict.fromkeys(cands))
    known: dict[str, tuple[bool, bool, int]] = {s: memory[s] for s in uniq if usable(memory.get(s))}
    from_cache = len(known)
    if disk is not None:
        missing = [s for s in uniq if s not in known]
        found = {s: (bool(a), bool(b), int(c)) for s, (a, b, c) in disk.get(missing).items()}
        found = {s: v for s, v in found.items() if usable(v)}
        memory.update(found)
        known.update(found)
        from_cache += len(found)
    todo = [s for s in uniq if s not in known]
    invalid: set[str] = set()
    computed: dict[str, tuple[bool, bool, int]] = {}
    if todo:
        bank.build()
        if len(todo) >= 1000:  # most bank molecules will be confirmed against: decode once, share by fork
            bank.decode_all()
        chunk = max(50, min(2000, len(todo) // (workers * 8) + 1))
        jobs = [(todo[i : i + chunk], counts) for i in range(0, len(todo), chunk)]
        _BANK = bank
        try:
            if workers > 1 and len(jobs) > 1:
                with mp.get_context("fork").Pool(workers) as pool:
                    parts = pool.map(_label_chunk, jobs, chunksize=1)
            else:
                parts = [_label_chunk(j) for j in jobs]
        finally:
            _BANK = None
        worker_cpu = sum(cpu for _, cpu in parts) if workers > 1 and len(jobs) > 1 else 0.0
        for (chunk_smiles, _), (part, _) in zip(jobs, parts, strict=True):
            for s, (canon, sub, ex, cnt) in zip(chunk_smiles, part, strict=True):
                if canon is None:
                    invalid.add(s)
                    known[s] = (False, False, 0)
                    continue
                known[s] = computed[canon] = (sub, ex, cnt)
        memory.update(computed)
        if disk is not None:
            disk.put(computed)
    if invalid:
        log.warning("%d candidate SMILES do not parse; labelled as no hit (first: %r)",
                    len(invalid), next(iter(invalid)))
    n = len(cands)
    sub = np.fromiter((known[s][0] for s in cands), dtype=bool, count=n)
    ex = np.fromiter((known[s][1] for s in cands), dtype=bool, count=n)
    cnt = np.fromiter((known[s][2] for s in cands), dtype=np.int64, count=n)
    valid = np.fromiter((s not in invalid for s in cands), dtype=bool, count=n)
    return Labels(cands, sub, ex, cnt, valid, bank.sha256, seconds=time.perf_counter() - t0,
                  from_cache=from_cache,
                  stats={"computed": len(todo), "workers": workers, "counts": counts,
                         "cpu_seconds": worker_cpu + time.process_time() - cpu0})


def clear_memory_cache() -> None:
    """Forget in-memory labels (e.g. between benchmark runs)."""
    _MEMORY.clear()
