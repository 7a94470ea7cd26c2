"""The attacker's sets must not hold the victim's training molecules: the owner's check before an audit or a bench.

An extraction or membership attack given an auxiliary set that already contains the victim's training
molecules measures nothing about leakage (it "recovers" what it was handed, and its vocabulary and
candidate pool are mined from that set). So before any attack runs, the owner's side compares each
attacker file (the aux set, from which the candidates' vocabulary is mined) with the victim's
**training union**: every training set its checkpoint's provenance records (`training_sets`, e.g. a
fine-tuned victim's pre-training and fine-tuning sets, or else `train_file`), each found as recorded,
in the given search directories or beside the checkpoint, and checked against its recorded sha256.
Molecules are compared as canonical SMILES. Any shared molecule is refused with one `MolleakError`
naming the attacker's file, the victim's file(s) and the counts.

Reading is fast for files a tier wrote (listed with their sha256 in the `manifest.json` beside
them: already canonical); other files are canonicalised.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from molleak.errors import MolleakError

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _written_by_a_tier(path: Path) -> bool:
    """Whether the `manifest.json` beside `path` lists it with this content (a tier's canonical file)."""
    manifest = path.parent / "manifest.json"
    try:
        entry = json.loads(manifest.read_text())["files"][path.name]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(entry, dict) and entry.get("sha256") == _sha256(path)


@functools.lru_cache(maxsize=32)
def _canonical(path_text: str, stamp: tuple[int, int]) -> frozenset[str]:
    from molleak.chem import canonicalize_many
    from molleak.data.smiles_io import read_smiles

    path = Path(path_text)
    raw = read_smiles(path, what="SMILES file", canonicalize=False).smiles
    if _written_by_a_tier(path):
        return frozenset(raw)
    return frozenset(s for s in canonicalize_many(raw) if s is not None)


def canonical_molecules(path: str | Path) -> frozenset[str]:
    """The canonical SMILES of a SMILES file (cached while the file is unchanged)."""
    path = Path(path)
    st = path.stat()
    return _canonical(str(path.resolve()), (st.st_mtime_ns, st.st_size))


def _recorded_sets(prov: dict[str, Any]) -> list[dict[str, Any]]:
    sets = [s for s in prov.get("training_sets") or [] if isinstance(s, dict) and s.get("file")]
    if sets:
        return sets
    if prov.get("train_file"):
        return [{"role": "training", "file": prov["train_file"], "sha256": prov.get("train_sha256")}]
    return []


def training_files(victim_path: str | Path, search_dirs: Sequence[str | Path] = ()) -> list[Path] | None:
    """The files of a victim's training union, verified against their recorded sha256.

    Returns None when there is no checkpoint file (a served or plug-in victim) or its provenance
    records no training file that can be found (an imported model, a training list never written as a
    file): the union is unknown and nothing can be checked.

    Raises:
        MolleakError: a recorded file is found but no longer holds the set the victim was trained on.
    """
    from molleak.data.smiles_io import read_smiles
    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.runs import sha256_lines

    victim_path = Path(victim_path)
    if not victim_path.is_file():  # a served or plug-in victim: no checkpoint, no recorded training set
        return None
    prov = read_checkpoint_file(victim_path).get("provenance", {}) or {}
    found: list[Path] = []
    for entry in _recorded_sets(prov):
        recorded = Path(str(entry["file"]))
        candidates = [recorded, *(Path(d) / recorded.name for d in search_dirs), victim_path.parent / recorded.name]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            log.info("victim %s: its %s set %s is not found; it is left out of the overlap check",
                     victim_path, entry.get("role", "training"), recorded)
            continue
        sha = entry.get("sha256")
        if sha:
            lines = read_smiles(path, what=f"training set of {victim_path.name}", canonicalize=False).smiles
            if sha256_lines(lines) != sha and sha256_lines(path.read_text(encoding="utf-8").splitlines()) != sha:
                raise MolleakError(f"victim {victim_path}: {path} no longer matches the {entry.get('role', 'training')} "
                                   f"set it was trained on (sha256 differs)")
        found.append(path)
    return found or None


def check_attacker_sets(victim_path: str | Path, attacker_files: Iterable[str | Path],
                        search_dirs: Sequence[str | Path] = ()) -> None:
    """Refuse attacker files that share a molecule with the victim's training union.

    Raises:
        MolleakError: one line naming the attacker's file, the victim and its training file(s) with
            the number of shared canonical molecules in each.
    """
    files = training_files(victim_path, search_dirs)
    if files is None:
        log.info("victim %s records no training file: the attacker's sets are not checked against it", victim_path)
        return
    union = {f: canonical_molecules(f) for f in files}
    for attacker in map(Path, attacker_files):
        mine = canonical_molecules(attacker)
        shared = {f: len(mine & molecules) for f, molecules in union.items()}
        total = len(mine & frozenset().union(*union.values()))
        if total:
            where = ", ".join(f"{n} in {f}" for f, n in shared.items() if n)
            raise MolleakError(
                f"attacker's set {attacker} shares {total} of its {len(mine)} molecules with the training union of "
                f"victim {victim_path} ({where}): an attacker given the victim's training molecules measures no "
                f"leakage; remove them from {attacker.name} (a bench that prepares its own tier does) or use "
                f"another aux set")


def check_attacker_pairs(pairs: Iterable[tuple[str | Path, str | Path]], search_dirs: Sequence[str | Path] = ()) -> None:
    """`check_attacker_sets` for each (victim checkpoint, attacker file) pair whose victim exists."""
    for victim, attacker in sorted({(str(v), str(a)) for v, a in pairs}):
        if Path(victim).is_file():
            check_attacker_sets(victim, [attacker], search_dirs)
