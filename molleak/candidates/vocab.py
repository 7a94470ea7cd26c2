"""Vocabularies: ring-system templates and BRICS motifs, mined from the auxiliary set only.

A vocabulary directory holds

- `templates.smi`: one template per line, `SMILES<TAB>frequency`; ring systems (fused and spiro
  rings kept together, with terminal exocyclic double-bonded atoms such as `=O`) with a plain `*`
  on every ring atom that carries a substituent in the aux molecule it was seen in;
- `motifs.smi`: one motif per line, `SMILES<TAB>frequency`; BRICS fragments with their cut points
  labelled `[*:1]`, `[*:2]`, ...;
- `vocab.json`: how it was mined (source file and sha256, parameters, counts, versions).

The frequency is the number of aux molecules that contain the template (that exact substitution
pattern) or the motif. Users can bring their own `templates.smi` / `motifs.smi` in this format (the
frequency column and `vocab.json` are optional). Points must be dummy atoms bonded by one single
bond; motif points without a label are numbered in atom order.

The private set is never read here: `mine_vocabulary` takes the attacker's aux molecules.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdkit import Chem
from rdkit.Chem import BRICS

from molleak.candidates.assemble import as_mol, motif_points, open_points, point_anchor
from molleak.chem import default_workers, rdkit_quiet
from molleak.errors import InputFileError
from molleak.runs import package_versions, sha256_lines, write_atomic, write_json_atomic

log = logging.getLogger(__name__)

TEMPLATES_FILE = "templates.smi"
MOTIFS_FILE = "motifs.smi"
META_FILE = "vocab.json"


@dataclass
class Vocabulary:
    """Templates (SMILES with `*` points) and motifs (SMILES with `[*:n]` points), with frequencies.

    Attributes:
        templates: template SMILES; an action's point ordinal `p` counts this SMILES's dummies
            in atom order.
        motifs: motif SMILES with labelled points; `j` counts points by label.
        template_freq: aux frequency per template (0 when unknown, e.g. user files without one).
        motif_freq: aux frequency per motif.
        meta: how the vocabulary was made (contents of `vocab.json`).
    """

    templates: list[str]
    motifs: list[str]
    template_freq: list[int] = field(default_factory=list)
    motif_freq: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.template_freq:
            self.template_freq = [0] * len(self.templates)
        if not self.motif_freq:
            self.motif_freq = [0] * len(self.motifs)
        if len(self.template_freq) != len(self.templates) or len(self.motif_freq) != len(self.motifs):
            raise ValueError("Vocabulary: one frequency per template and per motif")

    @property
    def frequencies(self) -> dict[str, dict[str, int]]:
        """Frequency by SMILES, for templates and motifs."""
        return {
            "templates": dict(zip(self.templates, self.template_freq, strict=True)),
            "motifs": dict(zip(self.motifs, self.motif_freq, strict=True)),
        }

    def template_points(self, index: int) -> int:
        """Number of attachment points of template `index`."""
        return sum(1 for a in as_mol(self.templates[index]).GetAtoms() if a.GetAtomicNum() == 0)

    def motif_slots(self) -> int:
        """Total attachment points over all motifs (the paper's 181 slots for 91 motifs)."""
        return sum(len(motif_points(m)) for m in self.motifs)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write `templates.smi`, `motifs.smi` and `vocab.json` into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / TEMPLATES_FILE, "".join(f"{s}\t{f}\n" for s, f in zip(self.templates, self.template_freq, strict=True)))
        write_atomic(out / MOTIFS_FILE, "".join(f"{s}\t{f}\n" for s, f in zip(self.motifs, self.motif_freq, strict=True)))
        meta = {**self.meta, "n_templates": len(self.templates), "n_motifs": len(self.motifs),
                "motif_slots": self.motif_slots(),
                "sha256": {"templates": sha256_lines(self.templates), "motifs": sha256_lines(self.motifs)}}
        write_json_atomic(out / META_FILE, meta)
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary directory, checking every template and motif.

        Raises:
            InputFileError: a file is missing or empty, or a line does not parse or has no valid
                attachment point.
        """
        d = Path(directory)
        if not d.is_dir():
            raise InputFileError(f"vocabulary directory not found: {d}")
        templates, tfreq = _read_vocab_file(d / TEMPLATES_FILE, "template")
        motifs, mfreq = _read_vocab_file(d / MOTIFS_FILE, "motif")
        motifs = [_label_motif_points(m) for m in motifs]
        meta: dict[str, Any] = {}
        if (d / META_FILE).is_file():
            import json

            try:
                meta = json.loads((d / META_FILE).read_text())
            except json.JSONDecodeError as exc:
                raise InputFileError(f"{d / META_FILE}: not valid JSON ({exc})") from None
        return cls(templates, motifs, tfreq, mfreq, meta)


def _read_vocab_file(path: Path, kind: str) -> tuple[list[str], list[int]]:
    if not path.is_file():
        raise InputFileError(f"{kind} file not found: {path}")
    smiles: list[str] = []
    freqs: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#") or (lineno == 1 and parts[0].lower() == "smiles"):
                continue
            smi = parts[0]
            mol = as_mol(smi)
            if mol is None:
                raise InputFileError(f"{path}, line {lineno}: {kind} {smi!r} does not parse")
            points = open_points(mol)
            if not points:
                raise InputFileError(f"{path}, line {lineno}: {kind} {smi!r} has no attachment point '*'")
            if any(point_anchor(mol, p) is None for p in points):
                raise InputFileError(
                    f"{path}, line {lineno}: {kind} {smi!r} has a '*' that is not bonded by one single bond")
            try:
                freq = int(parts[1]) if len(parts) > 1 else 0
            except ValueError:
                raise InputFileError(f"{path}, line {lineno}: frequency {parts[1]!r} is not an integer") from None
            smiles.append(smi)
            freqs.append(freq)
    if not smiles:
        raise InputFileError(f"{kind} file holds no {kind}s: {path}")
    return smiles, freqs


def _label_motif_points(smiles: str) -> str:
    """Give unlabelled motif points the next free labels, in atom order (labelled ones unchanged)."""
    mol = as_mol(smiles)
    dummies = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if all(a.GetAtomMapNum() for a in dummies):
        return smiles
    used = {a.GetAtomMapNum() for a in dummies}
    nxt = 1
    for a in dummies:
        if not a.GetAtomMapNum():
            while nxt in used:
                nxt += 1
            a.SetAtomMapNum(nxt)
            used.add(nxt)
    return Chem.MolToSmiles(mol)


# ---------------------------------------------------------------------------------------------
# Mining


def _ring_systems(mol: Chem.Mol) -> list[set[int]]:
    """Atom sets of ring systems: rings sharing at least one atom (fused or spiro) merged."""
    systems: list[set[int]] = []
    for ring in mol.GetRingInfo().AtomRings():
        merged = set(ring)
        rest = []
        for s in systems:
            if s & merged:
                merged |= s
            else:
                rest.append(s)
        systems = [*rest, merged]
    return systems


def _canonical_template(mol: Chem.Mol, system: set[int]) -> str | None:
    """The ring system `system` of `mol` with `*` for each single-bond substituent; None if unusable."""
    keep = set(system)
    cut: list[int] = []
    for idx in system:
        for bond in mol.GetAtomWithIdx(idx).GetBonds():
            other = bond.GetOtherAtomIdx(idx)
            if other in system:
                continue
            if bond.GetBondType() == Chem.BondType.SINGLE:
                cut.append(bond.GetIdx())
            elif bond.GetOtherAtom(mol.GetAtomWithIdx(idx)).GetDegree() == 1:
                keep.add(other)  # terminal =O, =S, =CH2: part of the ring system's chemistry
            else:
                return None  # exocyclic double bond into the rest of the molecule: no single cut
    if not cut:
        return None
    frag = Chem.FragmentOnBonds(mol, cut, addDummies=True, dummyLabels=[(0, 0)] * len(cut))
    mapping: list[tuple[int, ...]] = []
    pieces = Chem.GetMolFrags(frag, asMols=True, sanitizeFrags=False, fragsMolAtomMapping=mapping)
    anchor = next(iter(system))
    m = next(piece for piece, atoms in zip(pieces, mapping, strict=True) if anchor in atoms)
    try:
        Chem.SanitizeMol(m)
    except Exception:  # noqa: BLE001 - RDKit raises several types for bad valence/kekulisation
        return None
    Chem.RemoveStereochemistry(m)
    return Chem.MolToSmiles(m)


def _canonical_motif(frag: Chem.Mol) -> str | None:
    """Canonical motif SMILES with points labelled 1..k in canonical order; None if not a motif."""
    m = Chem.RWMol(frag)
    for a in m.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetIsotope(0)
            a.SetAtomMapNum(0)
    m = m.GetMol()
    try:
        Chem.SanitizeMol(m)
    except Exception:  # noqa: BLE001
        return None
    Chem.RemoveStereochemistry(m)
    canon = Chem.MolFromSmiles(Chem.MolToSmiles(m))
    if canon is None:
        return None
    label = 0
    for a in canon.GetAtoms():  # atoms of a parsed canonical SMILES come in output order
        if a.GetAtomicNum() == 0:
            label += 1
            a.SetAtomMapNum(label)
    return Chem.MolToSmiles(canon)


def _motif_or_reason(frag: Chem.Mol, max_motif_atoms: int) -> tuple[str | None, str | None]:
    """(motif SMILES, None) for a usable BRICS fragment, else (None, why it was skipped or None)."""
    dummies = [a for a in frag.GetAtoms() if a.GetAtomicNum() == 0]
    if not dummies:
        return None, None  # an uncut molecule is not a motif
    if any(a.GetBonds()[0].GetBondType() != Chem.BondType.SINGLE for a in dummies):
        return None, "motif_cut_not_single"  # method.md 10: such cuts cannot be re-made by attach
    if not 1 <= frag.GetNumAtoms() - len(dummies) <= max_motif_atoms:
        return None, "motif_size_out_of_range"
    motif = _canonical_motif(frag)
    return (motif, None) if motif is not None else (None, "motif_unusable")


def _mine_chunk(args: tuple[list[str], int, int, int]) -> tuple[Counter, Counter, Counter]:
    smiles, max_points, max_motif_atoms, min_points = args
    templates: Counter = Counter()
    motifs: Counter = Counter()
    skipped: Counter = Counter()
    motif_cache: dict[str, tuple[str | None, str | None]] = {}
    with rdkit_quiet():
        for smi in smiles:
            mol = Chem.MolFromSmiles(smi)
            if mol is None:
                skipped["invalid"] += 1
                continue
            seen_t: set[str] = set()
            for system in _ring_systems(mol):
                t = _canonical_template(mol, system)
                if t is None:
                    skipped["template_unusable"] += 1
                    continue
                n_points = t.count("*")
                if not min_points <= n_points <= max_points:
                    skipped["template_points_out_of_range"] += 1
                    continue
                seen_t.add(t)
            templates.update(seen_t)
            seen_m: set[str] = set()
            broken = BRICS.BreakBRICSBonds(mol)
            for frag in Chem.GetMolFrags(broken, asMols=True, sanitizeFrags=False):
                raw = Chem.MolToSmiles(frag)
                if raw not in motif_cache:  # the same BRICS fragment recurs across molecules
                    motif_cache[raw] = _motif_or_reason(frag, max_motif_atoms)
                motif, reason = motif_cache[raw]
                if motif is not None:
                    seen_m.add(motif)
                elif reason:
                    skipped[reason] += 1
            motifs.update(seen_m)
    return templates, motifs, skipped


def _top(counter: Counter, n: int) -> list[tuple[str, int]]:
    # Most frequent first; ties broken by SMILES so the same aux set gives the same vocabulary.
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def mine_vocabulary(
    aux_smiles: Sequence[str] | Iterable[str],
    n_templates: int = 84,
    n_motifs: int = 91,
    *,
    min_points: int = 1,
    max_points: int = 4,
    max_motif_atoms: int = 13,
    workers: int | None = None,
    source: str | None = None,
) -> Vocabulary:
    """Mine the most frequent templates and motifs of the auxiliary molecules.

    Args:
        aux_smiles: the attacker's auxiliary SMILES (never the private set).
        n_templates: how many templates to keep (most frequent first).
        n_motifs: how many motifs to keep.
        min_points: fewest attachment points a template may have.
        max_points: most attachment points a template may have.
        max_motif_atoms: most heavy atoms a motif may have (at least 1).
        workers: processes (default: the usable cores).
        source: the aux file name, recorded in the metadata.

    Returns:
        The vocabulary, with frequencies (aux molecules containing each entry) and metadata.
    """
    t0 = time.perf_counter()
    smiles = list(aux_smiles)
    if not smiles:
        raise InputFileError("mine_vocabulary: the auxiliary set is empty")
    workers = default_workers() if workers is None else max(1, workers)
    chunk = max(200, len(smiles) // (workers * 4) + 1)
    jobs = [(smiles[i : i + chunk], max_points, max_motif_atoms, min_points) for i in range(0, len(smiles), chunk)]
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_mine_chunk, jobs)
    else:
        parts = [_mine_chunk(j) for j in jobs]
    templates: Counter = Counter()
    motifs: Counter = Counter()
    skipped: Counter = Counter()
    for t, m, s in parts:
        templates.update(t)
        motifs.update(m)
        skipped.update(s)
    top_t = _top(templates, n_templates)
    top_m = _top(motifs, n_motifs)
    if not top_t or not top_m:
        raise InputFileError(
            f"mine_vocabulary: found {len(templates)} templates and {len(motifs)} motifs in "
            f"{len(smiles)} aux molecules; need at least one of each")
    meta = {
        "mined_from": source,
        "aux_molecules": len(smiles),
        "aux_sha256": sha256_lines(sorted(smiles)),
        "method": {
            "templates": "ring systems (rings sharing an atom merged; terminal exocyclic double-bonded "
                         "atoms kept), '*' per single-bond substituent, stereo removed; frequency = aux "
                         "molecules containing the template",
            "motifs": "RDKit BRICS.BreakBRICSBonds leaf fragments, cut points labelled [*:k] in canonical "
                      "order; fragments with a non-single cut dropped; frequency = aux molecules containing it",
        },
        "parameters": {"n_templates": n_templates, "n_motifs": n_motifs, "min_points": min_points,
                       "max_points": max_points, "max_motif_atoms": max_motif_atoms},
        "distinct_found": {"templates": len(templates), "motifs": len(motifs)},
        "skipped": dict(skipped),
        "seconds": round(time.perf_counter() - t0, 2),
        "versions": package_versions(),
    }
    return Vocabulary(
        templates=[s for s, _ in top_t], motifs=[s for s, _ in top_m],
        template_freq=[f for _, f in top_t], motif_freq=[f for _, f in top_m], meta=meta,
    )
