"""What the report reads: run directories, bench tables and attribution files under one folder.

Every run file is read through the run contract (`molleak.rundir`): the role of a run is its
`config.json`'s `role`, never a guess from a path or a name. Reading is tolerant: a file that is
missing or unreadable becomes a note on its run (or on the folder), so the report renders what
exists and says what does not; only a folder with nothing to report is an error.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from molleak import rundir
from molleak.errors import InputFileError, MolleakError
from molleak.rundir import KINDS, ROLE_LABELS, Role

# attribution.json: `molleak leakage --victim-run` or the audit (molleak.plans); leakage.json,
# canary.json, sweep.json: `molleak leakage` (molleak.plans.leakage)
ATTRIBUTION_FILES = ("attribution.json", "leakage.json", "canary.json", "sweep.json")
# defences.json: `molleak defences` (molleak.plans.defences.RESULTS_FILE)
DEFENCES_FILE = "defences.json"
METADATA_FILE = rundir.METADATA_FILE
# the bench aggregator's outputs (molleak.plans.bench.aggregate)
TABLE_JSON, TABLE_MD = "table.json", "table.md"
MAX_WALK_DEPTH = 6

T = TypeVar("T")


@dataclass
class RunData:
    """One run directory as the report sees it (every file but config.json optional)."""

    path: Path
    name: str
    config: rundir.RunConfig
    extract: rundir.ExtractSummary | None = None
    results: rundir.Results | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    cell: rundir.BenchCell | None = None
    attribution: dict[str, Any] = field(default_factory=dict)
    topk: rundir.ScoreTable | None = None
    smiles: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    alpha: list[str] = field(default_factory=list)
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> whole-pool flags (aligned with smiles)
    label_by_smiles: dict[str, dict[str, bool]] = field(default_factory=dict)
    labels_source: str = ""
    curve: rundir.Curve | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def role(self) -> Role:
        return self.config.role

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def is_control(self) -> bool:
        return self.role != Role.VICTIM

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def k(self) -> int:
        for source in (self.results, self.extract):
            if source is not None and isinstance(source.k, int):
                return source.k
        return self.config.k

    @property
    def victim(self) -> str:
        """A short name of the victim ("none" for a victim-free run). A bench cell names the audited
        victim also for its controls, so they are drawn beside the victim they control for."""
        if self.cell is not None and self.cell.victim:
            return self.cell.victim
        info = self.extract.victim if self.extract is not None else None
        if info and info.get("name"):
            return str(info["name"])
        if self.config.victim_ref is not None and self.config.victim_ref.name:
            return self.config.victim_ref.name
        return Path(self.config.victim).stem if self.config.victim else "none"

    @property
    def pool_sha(self) -> str | None:
        pool = self.extract.pool if self.extract is not None else None
        return pool.get("sha256") if pool else None

    @property
    def evaluated(self) -> bool:
        return self.results is not None

    @property
    def label(self) -> str:
        return f"{self.method}, {self.steps}-step"

    @property
    def ks(self) -> list[int]:
        """The K of the substructure precisions in results.json."""
        prefix = rundir.precision_key(KINDS[0], 0)[:-1]
        keys = (self.results.model_extra or {}) if self.results is not None else {}
        return sorted(int(key[len(prefix):]) for key in keys
                      if key.startswith(prefix) and key[len(prefix):].isdigit())

    def metric(self, key: str) -> float | None:
        """A metric of results.json as a number (None when absent or not evaluated)."""
        return None if self.results is None else self.results.estimate(key).value


@dataclass
class AuditData:
    """All runs, bench tables and attribution files found under the report's folder."""

    root: Path
    runs: list[RunData]
    tables: list[tuple[str, dict[str, Any] | None, str]]  # (relative dir, table.json or None, table.md text)
    attribution_files: list[tuple[str, dict[str, Any]]]  # (relative path, content)
    notes: list[str]
    private: dict[str, Any] | None = None
    defences: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (relative path, defences.json)


def _try(read: Callable[[], T], problems: list[str], what: str) -> T | None:
    """`read()`, or None with a note when the file is unreadable (a missing file is no problem)."""
    try:
        return read()
    except InputFileError as exc:
        problems.append(f"{what} unreadable ({exc}); ignored")
        return None


def _optional(path: Path, read: Callable[[], T], problems: list[str]) -> T | None:
    return _try(read, problems, path.name) if path.is_file() else None


def load_run(path: Path, root: Path, *, name: str | None = None) -> RunData:
    """Read one run directory (config.json must be readable; any other file may be missing or bad)."""
    config = rundir.read_config(path)
    run = RunData(path=path, name=name or ("." if path == root else str(path.relative_to(root))), config=config)
    p = run.problems
    run.extract = _optional(path / rundir.EXTRACT_FILE, lambda: rundir.read_extract(path), p)
    run.results = _optional(path / rundir.RESULTS_FILE, lambda: rundir.read_results(path), p)
    run.metadata = _optional(path / METADATA_FILE, lambda: rundir.read_json(path / METADATA_FILE, "metadata"), p) or {}
    run.cell = _optional(path / rundir.BENCH_CELL_FILE, lambda: rundir.read_bench_cell(path), p)
    attribution = run.results.value("attribution") if run.results is not None else None
    run.attribution = attribution if isinstance(attribution, dict) else {}
    scores = _optional(path / rundir.SCORES_FILE, lambda: rundir.read_scores_table(path), p)
    if scores is not None:
        run.smiles, run.alpha = scores.smiles, scores.alpha
        run.scores = np.array(scores.scores, dtype=np.float64)
    run.topk = _optional(path / rundir.TOPK_FILE, lambda: rundir.read_topk(path), p)
    labels = _optional(path / rundir.LABELS_FILE, lambda: rundir.read_labels(path), p)
    if labels is not None:
        for i, smi in enumerate(labels.smiles):
            run.label_by_smiles[smi] = {kind: flags[i] for kind, flags in labels.hits.items()}
        run.labels_source = f"{rundir.LABELS_FILE} (written by the evaluation)"
        labels_over_pool(run)
    run.curve = _optional(path / rundir.CURVE_FILE, lambda: rundir.read_curve(path), p)
    return run


def labels_over_pool(run: RunData) -> None:
    """Whole-pool label arrays (aligned with scores.tsv) when every scored molecule has a label."""
    if not run.smiles or not run.label_by_smiles:
        return
    for kind in KINDS:
        values = [run.label_by_smiles.get(s, {}).get(kind) for s in run.smiles]
        if all(v is not None for v in values):
            run.labels[kind] = np.array(values, dtype=bool)


def _walk(root: Path, depth: int = 0) -> Iterable[Path]:
    yield root
    if depth >= MAX_WALK_DEPTH:
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _walk(child, depth + 1)


def _rel(d: Path, root: Path) -> str:
    return "." if d == root else str(d.relative_to(root))


def discover(root: str | os.PathLike) -> AuditData:
    """Every run directory, bench table and attribution file under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"report: directory not found: {root}")
    notes: list[str] = []
    runs: list[RunData] = []
    tables: list[tuple[str, dict[str, Any] | None, str]] = []
    attribution: list[tuple[str, dict[str, Any]]] = []
    defences: list[tuple[str, dict[str, Any]]] = []
    for d in _walk(root):
        rel = _rel(d, root)
        if rundir.is_run_dir(d):
            run = _try(lambda d=d: load_run(d, root), notes, f"{rel}/{rundir.CONFIG_FILE}")
            if run is not None:
                runs.append(run)
        elif (d / rundir.SKIPPED_FILE).is_file():
            notes.append(f"{rel}: cell skipped: {_try(lambda d=d: rundir.read_skipped(d), notes, rundir.SKIPPED_FILE)}")
        elif any((d / f).is_file() for f in (rundir.EXTRACT_FILE, rundir.SCORES_FILE, rundir.RESULTS_FILE)):
            notes.append(f"{rel}: run files without both {rundir.CONFIG_FILE} and {rundir.EXTRACT_FILE}; left out")
        if (d / TABLE_JSON).is_file() or (d / TABLE_MD).is_file():
            parsed = _optional(d / TABLE_JSON, lambda d=d: rundir.read_json(d / TABLE_JSON, "bench table"), notes)
            md = (d / TABLE_MD).read_text(encoding="utf-8", errors="replace") if (d / TABLE_MD).is_file() else ""
            tables.append((rel, parsed, md))
        if (d / DEFENCES_FILE).is_file():
            obj = _optional(d / DEFENCES_FILE, lambda d=d: rundir.read_json(d / DEFENCES_FILE, "defence curve"), notes)
            if obj:
                defences.append((f"{rel}/{DEFENCES_FILE}", obj))
        for fname in ATTRIBUTION_FILES:
            obj = _optional(d / fname, lambda d=d, f=fname: rundir.read_json(d / f, "attribution file"), notes)
            if obj:
                attribution.append((f"{rel}/{fname}", obj))
    if not runs and not tables and not attribution and not defences:
        raise MolleakError(f"report: {root} holds no run directory ({rundir.CONFIG_FILE} and {rundir.EXTRACT_FILE}), "
                           f"no benchmark table and no attribution file")
    return AuditData(root=root, runs=runs, tables=tables, attribution_files=attribution, notes=notes,
                     defences=defences)


def load_named_runs(runs: Mapping[str, str | os.PathLike]) -> list[RunData]:
    """Runs given by name -> directory (the audit's own list), read like `discover` reads them."""
    return [load_run(Path(path), Path(path), name=name) for name, path in runs.items()]


def label_with_private(data: AuditData, private_path: str | os.PathLike) -> None:
    """Label every run's pool against the private set (only when the user passed --private)."""
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.evaluate import bank_labels
    from molleak.runs import sha256_lines

    private = read_smiles(private_path, what="private set")
    sha = sha256_lines(private.smiles)
    data.private = {"path": str(private_path), "n": len(private.smiles), "sha256": sha}
    for run in data.runs:
        smiles = run.smiles or (run.topk.smiles if run.topk is not None else [])
        if not smiles:
            continue
        lab = bank_labels(smiles, private.smiles, sha)
        for i, s in enumerate(smiles):
            run.label_by_smiles[s] = {"substructure": bool(lab.substructure[i]), "exact": bool(lab.exact[i])}
        run.labels_source = f"computed by the report from --private {private_path}"
        labels_over_pool(run)
