"""Exhaustive one- and two-step enumeration of a vocabulary's candidate space, over worker processes.

A one-step record is (template t, action (p, i, j)); a two-step record adds a second action at any
open point of the one-step molecule (method.md section 2). Ordinals follow `assemble`:
`p` counts `open_points` of the current molecule, `j` counts `motif_points` of the motif.

Speed: the finalised candidate of a record equals its pieces (template, motifs), each with every
point it does not use capped by `assemble.cap_points`, joined at the used points. So each piece is
capped once per (piece, used points), and a record costs one `Chem.molzip` plus one canonical
SMILES. `verify=True` rebuilds every record the plain way (`apply_actions` then `finalize`) and
counts disagreements; the tests and the benchmark run it.

Records whose pieces cannot be capped are rejected at finalisation and counted, never raised.
"""

from __future__ import annotations

import gzip
import logging
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rdkit import Chem

from molleak.candidates.assemble import apply_actions, as_mol, cap_points, finalize, motif_points, open_points
from molleak.candidates.pool import HEADER, CandidateRecord
from molleak.candidates.vocab import Vocabulary
from molleak.chem import default_workers, rdkit_quiet
from molleak.errors import MolleakError

log = logging.getLogger(__name__)


@dataclass
class EnumerationStats:
    """What an enumeration produced.

    Attributes:
        records: records written (or returned).
        unique: distinct candidate SMILES among all enumerated records.
        rejected: records whose molecule failed finalisation (not written).
        enumerated: records produced before de-duplication (records written + records skipped by
            `first_record_only`).
        mismatches: with `verify`, records whose plain rebuild disagreed with the fast path.
        seconds: wall time.
        cpu_seconds: CPU time of the workers and this process together (a load-independent cost).
    """

    records: int = 0
    unique: int = 0
    rejected: int = 0
    enumerated: int = 0
    mismatches: int = 0
    verified: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    templates: list[int] = field(default_factory=list)
    steps: int = 1
    workers: int = 1

    def summary(self) -> str:
        dup = 1 - self.unique / self.enumerated if self.enumerated else 0.0
        text = (f"{self.enumerated} records ({self.unique} unique molecules, {dup:.0%} duplicates), "
                f"{self.rejected} rejected at finalisation, {self.seconds:.1f} s "
                f"({self.enumerated / max(self.seconds, 1e-9):,.0f} records/s on {self.workers} workers)")
        if self.verified:
            text += f"; verified {self.verified} by plain rebuild, {self.mismatches} mismatches"
        return text


class _Pieces:
    """Capped templates and motifs, built lazily once per (piece, kept points) and shared by records."""

    def __init__(self, vocab: Vocabulary):
        self.templates = [as_mol(s) for s in vocab.templates]
        self.motifs = [as_mol(s) for s in vocab.motifs]
        self.template_pts = [open_points(m) for m in self.templates]
        self.motif_pts = [motif_points(m) for m in self.motifs]
        # Dummy atoms of each motif in atom order: the order they take among a molecule's open points.
        self.motif_atom_order = [open_points(m) for m in self.motifs]
        with rdkit_quiet():
            self.template_final = [finalize(m) for m in self.templates]
            self.motif_final = [finalize(m) for m in self.motifs]
        self._cache: dict[tuple, Chem.Mol | None] = {}

    def capped(self, kind: str, index: int, keep: tuple[tuple[int, int], ...]) -> Chem.Mol | None:
        """Piece `index` with the dummies in `keep` ((atom index, molzip label), ...) open, the rest H."""
        key = (kind, index, keep)
        if key not in self._cache:
            mol = (self.templates if kind == "t" else self.motifs)[index]
            atoms = [a for a, _ in keep]
            # cap_points keeps the kept dummies in relative order: find them again by a property.
            rw = Chem.RWMol(mol)
            for a, lab in keep:
                rw.GetAtomWithIdx(a).SetIntProp("_molleak_keep", lab)
            capped = cap_points(rw.GetMol(), atoms)
            if capped is not None:
                # Label 1 joins by atom map; label 2 by isotope, so the first join ignores it.
                for atom in capped.GetAtoms():
                    lab = atom.GetIntProp("_molleak_keep") if atom.HasProp("_molleak_keep") else 0
                    atom.SetAtomMapNum(1 if lab == 1 else 0)
                    atom.SetIsotope(2 if lab == 2 else 0)
            self._cache[key] = capped
        return self._cache[key]


_BY_ISOTOPE = Chem.MolzipParams()
_BY_ISOTOPE.label = Chem.MolzipLabel.Isotope

_PIECES: _Pieces | None = None  # set in the parent before forking workers


def _one_step_unit(t: int) -> tuple[list[str], int, int, int]:
    """All one-step records of template `t`: (lines, rejected, verified, mismatches)."""
    pieces = _PIECES
    assert pieces is not None
    lines: list[str] = []
    rejected = 0
    before = pieces.template_final[t]
    for p, tp in enumerate(pieces.template_pts[t]):
        tpiece = pieces.capped("t", t, ((tp, 1),))
        for i, mpts in enumerate(pieces.motif_pts):
            for j, mp_ in enumerate(mpts):
                mpiece = pieces.capped("m", i, ((mp_, 1),))
                if tpiece is None or mpiece is None or before is None or pieces.motif_final[i] is None:
                    rejected += 1
                    continue
                smi = Chem.MolToSmiles(Chem.molzip(tpiece, mpiece))
                lines.append(f"{smi}\t{t}\t{p},{i},{j}\t{before}|{pieces.motif_final[i]}|{smi}")
    return lines, rejected, 0, 0


def _two_step_unit(unit: tuple[int, int, int, int]) -> tuple[list[str], int, int, int]:
    """All two-step records whose first action is (p1, i1, j1) on template t."""
    t, p1, i1, j1 = unit
    pieces = _PIECES
    assert pieces is not None
    tpts = pieces.template_pts[t]
    tp1, mp1 = tpts[p1], pieces.motif_pts[i1][j1]
    # Open points of the one-step molecule: the template's other dummies, then motif i1's other
    # dummies, each in atom order (what `attach` produces).
    rest_t = [a for a in tpts if a != tp1]
    rest_m = [a for a in pieces.motif_atom_order[i1] if a != mp1]
    n_open = len(rest_t) + len(rest_m)
    n_slots = sum(len(m) for m in pieces.motif_pts)
    before, m1_final = pieces.template_final[t], pieces.motif_final[i1]
    t_one = pieces.capped("t", t, ((tp1, 1),))
    m_one = pieces.capped("m", i1, ((mp1, 1),))
    if before is None or m1_final is None or t_one is None or m_one is None:
        return [], n_open * n_slots, 0, 0
    s1 = Chem.MolToSmiles(Chem.molzip(t_one, m_one))
    step1 = f"{before}|{m1_final}|{s1}"
    lines: list[str] = []
    rejected = 0
    for p2 in range(n_open):
        # The one-step molecule with point p2 left open under molzip label 2.
        if p2 < len(rest_t):
            t_two = pieces.capped("t", t, ((tp1, 1), (rest_t[p2], 2)))
            left = None if t_two is None else Chem.molzip(t_two, m_one)
        else:
            m_two = pieces.capped("m", i1, ((mp1, 1), (rest_m[p2 - len(rest_t)], 2)))
            left = None if m_two is None else Chem.molzip(t_one, m_two)
        for i2, mpts in enumerate(pieces.motif_pts):
            m2_final = pieces.motif_final[i2]
            for j2, mp2 in enumerate(mpts):
                m_piece = pieces.capped("m", i2, ((mp2, 2),))
                if left is None or m_piece is None or m2_final is None:
                    rejected += 1
                    continue
                smi = Chem.MolToSmiles(Chem.molzip(left, m_piece, _BY_ISOTOPE))
                lines.append(f"{smi}\t{t}\t{p1},{i1},{j1};{p2},{i2},{j2}\t{step1};{s1}|{m2_final}|{smi}")
    return lines, rejected, 0, 0


def _verify_lines(lines: list[str], templates: list[str], motifs: list[str]) -> tuple[int, int]:
    """(records checked, mismatches): rebuild each record with apply_actions + finalize."""
    bad = 0
    for line in lines:
        rec = CandidateRecord.from_line(line)
        plain = finalize(apply_actions(templates[rec.template], rec.actions, motifs))
        if plain != rec.smiles:
            bad += 1
            log.warning("fast and plain assembly disagree for %s %s: %s vs %s",
                        rec.template, rec.actions, rec.smiles, plain)
    return len(lines), bad


_VOCAB_SMILES: tuple[list[str], list[str]] | None = None


def _run_unit(args: tuple[int, object, bool]) -> tuple[list[str], int, int, int, float]:
    steps, unit, verify = args
    cpu0 = time.process_time()
    with rdkit_quiet():
        lines, rejected, _, _ = _one_step_unit(unit) if steps == 1 else _two_step_unit(unit)  # type: ignore[arg-type]
        checked = bad = 0
        if verify:
            assert _VOCAB_SMILES is not None
            checked, bad = _verify_lines(lines, *_VOCAB_SMILES)
    return lines, rejected, checked, bad, time.process_time() - cpu0


def _units(vocab: Vocabulary, steps: int, templates: Sequence[int]) -> list:
    if steps == 1:
        return list(templates)
    pieces = _PIECES
    assert pieces is not None
    return [(t, p1, i1, j1) for t in templates for p1 in range(len(pieces.template_pts[t]))
            for i1, mpts in enumerate(pieces.motif_pts) for j1 in range(len(mpts))]


def _check_args(vocab: Vocabulary, steps: int, templates: Sequence[int] | None) -> list[int]:
    if steps not in (1, 2):
        raise MolleakError(f"steps must be 1 or 2, got {steps}")
    if templates is None:
        return list(range(len(vocab.templates)))
    bad = [t for t in templates if not 0 <= t < len(vocab.templates)]
    if bad:
        raise MolleakError(f"template index {bad[0]} out of range: the vocabulary has {len(vocab.templates)} "
                           f"templates (0..{len(vocab.templates) - 1})")
    return list(dict.fromkeys(templates))


def iter_record_lines(
    vocab: Vocabulary,
    steps: int = 1,
    templates: Sequence[int] | None = None,
    workers: int | None = None,
    stats: EnumerationStats | None = None,
    verify: bool = False,
) -> Iterator[str]:
    """Stream pool-file lines (no newline) of every record, in a fixed order, over worker processes.

    Args:
        vocab: the vocabulary.
        steps: 1 (template + one motif) or 2 (a second motif at any open point).
        templates: template indices to enumerate (default: all).
        workers: processes (default: the usable cores; 1 runs in this process).
        stats: filled in as records stream (`records`, `rejected`, `verified`, `mismatches`).
        verify: also rebuild every record the plain way and count disagreements (slow).
    """
    global _PIECES, _VOCAB_SMILES
    tlist = _check_args(vocab, steps, templates)
    workers = default_workers() if workers is None else max(1, workers)
    stats = stats if stats is not None else EnumerationStats()
    stats.templates, stats.steps, stats.workers = tlist, steps, workers
    with rdkit_quiet():
        _PIECES = _Pieces(vocab)
    _VOCAB_SMILES = (list(vocab.templates), list(vocab.motifs))
    jobs = [(steps, u, verify) for u in _units(vocab, steps, tlist)]
    pool = None
    try:
        if workers == 1 or len(jobs) < 2:
            results: Iterator = map(_run_unit, jobs)
        else:
            pool = mp.get_context("fork").Pool(workers)
            results = pool.imap(_run_unit, jobs, chunksize=1 if steps == 1 else 4)
        for lines, rejected, checked, bad, cpu in results:
            if pool is not None:  # in-process units are counted by the caller's own CPU clock
                stats.cpu_seconds += cpu
            stats.rejected += rejected
            stats.verified += checked
            stats.mismatches += bad
            stats.enumerated += len(lines)
            yield from lines
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        if pool is not None:  # stops the workers if the consumer stopped early or failed
            pool.terminate()
        _PIECES = None
        _VOCAB_SMILES = None


def enumerate_pool(
    vocab: Vocabulary,
    steps: int = 1,
    templates: Sequence[int] | None = None,
    workers: int | None = None,
    stats: EnumerationStats | None = None,
    verify: bool = False,
) -> list[CandidateRecord]:
    """Every record of the one- or two-step pool, in memory (use `write_enumeration` for big pools).

    `stats` (if given) receives records, unique, rejected and time.
    """
    stats = stats if stats is not None else EnumerationStats()
    t0, cpu0 = time.perf_counter(), time.process_time()
    records = [CandidateRecord.from_line(line)
               for line in iter_record_lines(vocab, steps, templates, workers, stats, verify)]
    stats.records = len(records)
    stats.unique = len({r.smiles for r in records})
    stats.seconds = time.perf_counter() - t0
    stats.cpu_seconds += time.process_time() - cpu0
    return records


def _open_out(path: str, gz: bool):
    # Level 1: a two-step pool is hundreds of MB of text; speed matters more than the last 20%.
    return gzip.open(path, "wt", encoding="utf-8", compresslevel=1) if gz else open(path, "w", encoding="utf-8")  # noqa: SIM115


def write_enumeration(
    vocab: Vocabulary,
    out: str | os.PathLike,
    steps: int = 1,
    templates: Sequence[int] | None = None,
    workers: int | None = None,
    first_record_only: bool = False,
    verify: bool = False,
) -> EnumerationStats:
    """Enumerate straight to a pool file (gzip when it ends in .gz), de-duplication counted.

    The file is written to a temporary name and moved into place at the end, so a reader never
    sees half a pool. With `first_record_only`, only the first record of each molecule is kept.
    """
    stats = EnumerationStats()
    t0, cpu0 = time.perf_counter(), time.process_time()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    seen: set[str] = set()
    try:
        with _open_out(tmp, gz=path.suffix == ".gz") as fh:
            fh.write(HEADER + "\n")
            buf: list[str] = []
            for line in iter_record_lines(vocab, steps, templates, workers, stats, verify):
                smi = line[: line.index("\t")]
                if smi in seen:
                    if first_record_only:
                        continue
                else:
                    seen.add(smi)
                buf.append(line)
                if len(buf) >= 20000:
                    fh.write("\n".join(buf) + "\n")
                    stats.records += len(buf)
                    buf.clear()
            if buf:
                fh.write("\n".join(buf) + "\n")
                stats.records += len(buf)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    stats.unique = len(seen)
    stats.seconds = time.perf_counter() - t0
    stats.cpu_seconds += time.process_time() - cpu0
    return stats
