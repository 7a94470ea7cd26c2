"""The run directory as a typed contract: its file names, metric keys, records and reuse rule.

One owner for the format. Every producer writes through these functions and every consumer
(evaluation, report, aggregation, audit, scripts) reads through them. Torch-free, so the report
can import it without loading torch. (Over 400 lines because every run file's reader lives here,
the report's `labels.tsv`, `curve.tsv` and `bench_cell.json` included: one place per format.)

A run directory holds

- `config.json` (`RunConfig`): the resolved inputs of the run, its `role` (victim, reference,
  untrained, prior, shadow), the victim's id and sha256, the seed, and `inputs_sha256`;
- `metadata.json`: versions, host, command line, time;
- the attack's outputs: `extract.json` (`ExtractSummary`), `scores.tsv`, `topk.tsv`, maybe
  `pool.tsv.gz` and `vocab/`;
- after evaluation, `results.json` (`Results`) and `labels.tsv` (`LabelTable`);
- for the searches, `curve.tsv` (`Curve`); in a bench cell, `bench_cell.json` (`BenchCell`).

**The reuse rule.** A directory is reused (resumed) only when the sha256 of its resolved inputs
(config, victim sha256, data sha256s, the code's recipe versions) equals the new run's. Otherwise
`open_run` refuses with one line naming what differs, or starts afresh (`force=True`, or
`on_conflict="replace"` for a plan's own cells). Nothing is decided by paths or file times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from molleak.errors import InputFileError, MolleakError

log = logging.getLogger(__name__)

# ---- file names (defined once) -------------------------------------------------------------------
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
EXTRACT_FILE = "extract.json"
SCORES_FILE = "scores.tsv"
TOPK_FILE = "topk.tsv"
RESULTS_FILE = "results.json"
LABELS_FILE = "labels.tsv"
POOL_FILE = "pool.tsv.gz"
VOCAB_DIR = "vocab"
CELL_FILE = "cell.json"
SKIPPED_FILE = "skipped.json"
SCORES_HEADER = "smiles\tscore\talpha\tprovenance"
TOPK_HEADER = "rank\tsmiles\tscore\tprovenance"
#: a plan's bookkeeping in a cell directory; a directory holding only these holds no run yet
PLAN_FILES = frozenset({CELL_FILE, SKIPPED_FILE, "bench_cell.json"})
#: files that mark a directory as an extraction run
RUN_MARKERS = (CONFIG_FILE, EXTRACT_FILE, SCORES_FILE)


class RunDirConflict(MolleakError):
    """A directory holds a run made from other inputs."""


# ---- roles ---------------------------------------------------------------------------------------
class Role(StrEnum):
    """What the model a run queried is, relative to the audited victim."""

    VICTIM = "victim"  # the audited model
    REFERENCE = "reference"  # the victim's recipe trained on disjoint data (the leakage control)
    UNTRAINED = "untrained"  # the victim's encoder at its random initialisation
    PRIOR = "prior"  # no model: a victim-free ranking
    SHADOW = "shadow"  # the attacker's own model (independent seed), for calibration


ROLE_LABELS = {Role.VICTIM: "victim", Role.REFERENCE: "reference victim", Role.UNTRAINED: "random-init victim",
               Role.PRIOR: "victim-free", Role.SHADOW: "shadow"}

# ---- metric keys (defined once) ------------------------------------------------------------------
KINDS = ("substructure", "exact")
K_LIST = (50, 100, 200)
FPR_LEVELS = {"1%": 0.01, "0.1%": 0.001}
AUC = "auc"
N_SCORED = "n_scored"
QUERIES = "queries"
SECONDS_TOTAL = "seconds_total"
SECONDS_SCORE = "seconds_score"
CI_SUFFIX = "_ci95"


def precision_key(kind: str, k: int) -> str:
    return f"precision_{kind}@{k}"


def hits_key(kind: str, k: int) -> str:
    return f"hits_{kind}@{k}"


def base_rate_key(kind: str) -> str:
    return f"base_rate_{kind}"


def positives_key(kind: str) -> str:
    return f"positives_{kind}"


def auc_key(kind: str) -> str:
    """The first kind (substructure, the paper's hit) has the unsuffixed key."""
    return AUC if kind == KINDS[0] else f"{AUC}_{kind}"


def tpr_key(level: str, kind: str = KINDS[0]) -> str:
    return f"tpr@{level}fpr" + ("" if kind == KINDS[0] else f"_{kind}")


#: how each interval in `results.json` was made (written beside the numbers)
INTERVAL_METHODS = {
    "precision": "Wilson score 95% interval over the K ranked molecules (binomial; the pool is fixed)",
    "fcd_random": "mean and sd over private subsamples (fcd_seeds)",
}


# ---- records -------------------------------------------------------------------------------------
class _Record(BaseModel):
    # records written by older molleak versions may carry keys this one does not know
    model_config = ConfigDict(extra="allow")


class VictimRef(_Record):
    """The model a run queried: where it was, what it is, and its bytes' sha256."""

    path: str
    sha256: str
    name: str | None = None
    strategy: str | None = None
    recipe_version: int | None = None
    train_sha256: str | None = None  # None: training set unknown (an imported model)


class RunConfig(_Record):
    """`config.json` of an extraction run: every input that decides its numbers."""

    role: Role
    method: str
    options: dict[str, Any] = Field(default_factory=dict)
    aux: str
    aux_sha256: str | None = None
    victim: str | None = None
    victim_ref: VictimRef | None = None
    vocab: str | None = None
    pool: str | None = None
    steps: int = 1
    templates: list[int] | None = None
    k: int = 200
    budget: int | None = None
    seed: int
    workers: int | None = None
    inputs_sha256: str | None = None


class ExtractSummary(_Record):
    """`extract.json`: what the attack did and measured."""

    method: str
    options: dict[str, Any] = Field(default_factory=dict)
    victim: dict[str, Any] | None = None  # VictimRef.model_dump() of the queried model; None for a prior
    pool: dict[str, Any] | None = None  # {"source", "records", "unique", "sha256"} when a pool was ranked
    queries: int = 0
    budget: int | None = None
    seconds_score: float | None = None
    seconds_total: float | None = None
    k: int
    n_scored: int
    n_topk: int | None = None
    inputs_sha256: str | None = None


class Interval(BaseModel):
    low: float | None
    high: float | None
    method: str


class Estimate(BaseModel):
    """A number with its interval and how the interval was made (None where not defined)."""

    value: float | None
    interval: Interval | None = None


class Results(_Record):
    """`results.json`: flat metric keys (`precision_key` etc.) plus the evaluated inputs."""

    method: str | None = None
    k: int | None = None
    inputs_sha256: str | None = None  # the extraction that was evaluated
    private: dict[str, Any] = Field(default_factory=dict)

    def value(self, key: str) -> Any:
        return (self.model_extra or {}).get(key)

    def estimate(self, key: str) -> Estimate:
        """The metric `key` with its interval, when results.json holds one."""
        value = self.value(key)
        if isinstance(value, dict):  # a bank's or an older nested form {"value": ...}
            value = value.get("value")
        ci = self.value(key + CI_SUFFIX)
        interval = None
        if isinstance(ci, list | tuple) and len(ci) == 2:
            method = INTERVAL_METHODS["precision"] if key.startswith("precision_") else "95% interval"
            interval = Interval(low=ci[0], high=ci[1], method=method)
        return Estimate(value=None if value is None else float(value), interval=interval)


def format_estimate(value: Any, interval: Any = None, digits: int = 3, *, n: int | None = None) -> str:
    """The one formatter for a value with its interval: `0.812 [0.75, 0.86]`, `-` when missing.

    A spread that is not an interval (a bench summary over fewer seeds than an interval needs:
    `{"mean", "ci95": None, "range": [min, max]}`) prints as a range, `0.812 (range 0.78-0.84)`.
    `n` (how many values the number summarises) labels it: `0.812 (range 0.78-0.84, n=2)`,
    `0.812 [0.75, 0.86] (n=7)`, `0.812 (n=1)`.
    """
    spread = None
    if isinstance(value, Estimate):
        value, interval = value.value, value.interval
    if isinstance(value, Mapping):
        # {"value", "lo"/"low", "hi"/"high"} from the analyses; {"mean", "ci95"|"range"} from a bench's table.json
        interval = interval or value.get("ci95") or [value.get("lo", value.get("low")),
                                                     value.get("hi", value.get("high"))]
        spread = value.get("range")
        value = value.get("value", value.get("mean"))
    if isinstance(value, bool):  # a flag is not a number (True would print as 1.000)
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    text = f"{float(value):.{digits}f}" if isinstance(value, int | float) else str(value)
    if isinstance(interval, Interval):
        interval = [interval.low, interval.high]
    label = "" if n is None else f"n={n}"
    if isinstance(interval, list | tuple) and len(interval) == 2 and None not in interval:
        lo, hi = (float(x) for x in interval)
        if lo == lo and hi == hi:
            return text + f" [{lo:.{digits}f}, {hi:.{digits}f}]" + (f" ({label})" if label else "")
    if isinstance(spread, list | tuple) and len(spread) == 2 and None not in spread:
        lo, hi = (float(x) for x in spread)
        dash = "-" if lo >= 0 and hi >= 0 else " to "
        return text + f" (range {lo:.{digits}f}{dash}{hi:.{digits}f}" + (f", {label})" if label else ")")
    return text + (f" ({label})" if label else "")


# ---- hashing and the reuse rule ------------------------------------------------------------------
def inputs_sha256(inputs: Mapping[str, Any]) -> str:
    """sha256 of resolved inputs (canonical JSON: sorted keys, no whitespace)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def open_run(
    out: str | os.PathLike,
    inputs: Mapping[str, Any],
    *,
    force: bool = False,
    on_conflict: Literal["refuse", "replace"] = "refuse",
    inputs_file: str = CONFIG_FILE,
) -> tuple[Path, bool]:
    """Claim `out` for a run with these resolved inputs; returns (directory, resumed).

    - `out` absent or empty: created; resumed = False.
    - `out` holds a run whose `inputs_sha256` equals this one's: resumed = True (finished steps
      are reused).
    - `out` holds a run with other inputs: `RunDirConflict` naming the differing inputs, unless
      `force` or `on_conflict="replace"`, which delete that run and start afresh.
    - `out` is a file, unwritable, or a non-empty directory that is not a molleak run: one clear error.

    Nothing is written here; the caller writes its config after validating everything else, so a
    failed run never leaves a config that describes other outputs.
    """
    path = Path(out)
    digest = inputs_sha256(inputs)
    if path.exists() and not path.is_dir():
        raise InputFileError(f"--out {path} exists and is not a directory")
    if path.is_dir() and any(p.name not in PLAN_FILES for p in path.iterdir()):
        marker = path / inputs_file
        old = _read_inputs(marker)
        if old is None:
            raise RunDirConflict(f"--out {path} is not empty and holds no molleak run ({inputs_file} missing or "
                                 f"unreadable); choose an empty or new directory")
        if old.get("inputs_sha256") == digest:
            return path, True
        old_inputs = old.get("inputs") or {}
        diff = _differing(old_inputs, dict(inputs)) if old_inputs else ["(inputs not recorded)"]
        if not (force or on_conflict == "replace"):
            raise RunDirConflict(f"{path} holds a run made from other inputs ({', '.join(diff[:6])} differ); "
                                 f"use another --out, or --force to discard it and start afresh")
        log.warning("%s held a run made from other inputs (%s differ); starting afresh", path, ", ".join(diff[:6]))
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".molleak-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputFileError(f"--out {path} cannot be written: {exc.strerror or exc}") from None
    return path, False


def _read_inputs(marker: Path) -> dict[str, Any] | None:
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def read_json(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or one clear error naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{what} not found: {p}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {p} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{what} {p} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(obj, dict):
        raise InputFileError(f"{what} {p} is not a JSON object")
    return obj


def _model(cls: type[BaseModel], path: Path, what: str) -> Any:
    try:
        return cls.model_validate(read_json(path, what))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputFileError(f"{what} {path}: {loc}: {first['msg']}") from None


def read_config(run_dir: str | os.PathLike) -> RunConfig:
    """`config.json` of an extraction run. Runs made before roles were recorded are read as the
    victim's (a victim was queried) or the prior's (none was)."""
    path = Path(run_dir) / CONFIG_FILE
    raw = read_json(path, "run config")
    if "role" not in raw:
        raw["role"] = Role.VICTIM if raw.get("victim") else Role.PRIOR
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputFileError(f"run config {path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def read_extract(run_dir: str | os.PathLike) -> ExtractSummary:
    return _model(ExtractSummary, Path(run_dir) / EXTRACT_FILE, "extraction summary")


def read_results(run_dir: str | os.PathLike) -> Results:
    return _model(Results, Path(run_dir) / RESULTS_FILE, "results")


def is_run_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and all((p / m).is_file() for m in (CONFIG_FILE, EXTRACT_FILE))


def results_current(run_dir: str | os.PathLike, private_sha256: str | None = None) -> bool:
    """Whether `results.json` evaluates the extraction now in `run_dir` (and, if given, that private set)."""
    p = Path(run_dir)
    if not (p / RESULTS_FILE).is_file() or not (p / EXTRACT_FILE).is_file():
        return False
    try:
        res, ext = read_results(p), read_extract(p)
    except InputFileError:
        return False
    if res.inputs_sha256 is None or res.inputs_sha256 != ext.inputs_sha256:
        return False
    return private_sha256 is None or res.private.get("sha256") == private_sha256


class ScoreTable(BaseModel):
    """`scores.tsv` (every molecule the method scored) or `topk.tsv` (the K best), parsed."""

    smiles: list[str]
    scores: list[float]
    alpha: list[str]
    provenance: list[str]


def _read_tsv(path: Path, header_start: str, columns: tuple[str, ...]) -> list[list[str]]:
    import gzip

    if not path.is_file():
        raise InputFileError(f"{path.name} not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n")
            if not header.startswith(header_start):
                raise InputFileError(f"{path} has header {header!r}, expected {header_start!r}...")
            rows = []
            for lineno, line in enumerate(fh, start=2):
                if not line.strip():
                    continue
                parts = line.rstrip("\n").split("\t")
                if len(parts) < len(columns):
                    raise InputFileError(f"{path}, line {lineno}: malformed line ({len(parts)} of "
                                         f"{len(columns)} columns)")
                rows.append(parts)
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{path} cannot be read: {exc}") from None
    return rows


def _float(text: str, path: Path, i: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputFileError(f"{path}: row {i + 1}: score {text!r} is not a number") from None


def read_scores_table(run_dir: str | os.PathLike) -> ScoreTable:
    """`scores.tsv`: smiles, score (`nan` = not scored), alpha, provenance per molecule."""
    path = Path(run_dir) / SCORES_FILE
    rows = _read_tsv(path, "smiles\tscore", ("smiles", "score"))
    if not rows:
        raise InputFileError(f"{path} holds no molecules")
    return ScoreTable(smiles=[r[0] for r in rows], scores=[_float(r[1], path, i) for i, r in enumerate(rows)],
                      alpha=[r[2] if len(r) > 2 else "" for r in rows],
                      provenance=[r[3] if len(r) > 3 else "" for r in rows])


def read_topk(run_dir: str | os.PathLike) -> ScoreTable:
    """`topk.tsv`: the K best molecules in rank order."""
    path = Path(run_dir) / TOPK_FILE
    rows = _read_tsv(path, "rank\tsmiles", ("rank", "smiles", "score"))
    return ScoreTable(smiles=[r[1] for r in rows], scores=[_float(r[2], path, i) for i, r in enumerate(rows)],
                      alpha=[""] * len(rows), provenance=[r[3] if len(r) > 3 else "" for r in rows])


# ---- evaluation labels, search curves, bench cells ------------------------------------------------
class LabelTable(BaseModel):
    """`labels.tsv` (written by the evaluation): per scored molecule, whether it is a hit of each kind."""

    smiles: list[str]
    hits: dict[str, list[bool]]  # kind (KINDS) -> one flag per molecule


def _flag(text: str, path: Path, lineno: int) -> bool:
    if text not in ("0", "1"):
        raise InputFileError(f"{path}, row {lineno}: label {text!r} is not 0 or 1")
    return text == "1"


def read_labels(run_dir: str | os.PathLike) -> LabelTable:
    """`labels.tsv`: smiles, substructure, exact (0/1) per molecule of `scores.tsv`."""
    path = Path(run_dir) / LABELS_FILE
    rows = _read_tsv(path, "smiles\t" + "\t".join(KINDS), ("smiles", *KINDS))
    return LabelTable(smiles=[r[0] for r in rows],
                      hits={kind: [_flag(r[j], path, i + 2) for i, r in enumerate(rows)]
                            for j, kind in enumerate(KINDS, start=1)})


#: the learning curve of the searches (policy, random search): one row per update
CURVE_FILE = "curve.tsv"


class Curve(BaseModel):
    """`curve.tsv`: named numeric columns, one row per update of the search."""

    columns: list[str]
    rows: list[list[float]]


def read_curve(run_dir: str | os.PathLike) -> Curve:
    """`curve.tsv` of a search run; cells that are not numbers read as NaN (a figure skips them)."""
    path = Path(run_dir) / CURVE_FILE
    if not path.is_file():
        raise InputFileError(f"{CURVE_FILE} not found: {path}")
    try:
        lines = [line.rstrip("\n").split("\t") for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    except UnicodeDecodeError:
        raise InputFileError(f"{path} is not UTF-8 text") from None
    if len(lines) < 2:
        raise InputFileError(f"{path} holds no updates")
    columns = lines[0]
    rows = []
    for lineno, parts in enumerate(lines[1:], start=2):
        if len(parts) != len(columns):
            raise InputFileError(f"{path}, line {lineno}: {len(parts)} cells for {len(columns)} columns")
        rows.append([_number_or_nan(x) for x in parts])
    return Curve(columns=columns, rows=rows)


def _number_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


#: a bench cell's spec, beside its run files (`molleak.plans.bench.runner`)
BENCH_CELL_FILE = "bench_cell.json"


class BenchCell(_Record):
    """`bench_cell.json`: which table cell a run is. `victim` names the audited victim for every
    role, so a control cell says whose control it is."""

    cell: str
    seed: int | None = None
    method: str | None = None
    victim: str | None = None
    role: Role | None = None


def read_bench_cell(run_dir: str | os.PathLike) -> BenchCell:
    return _model(BenchCell, Path(run_dir) / BENCH_CELL_FILE, "bench cell")


def read_skipped(run_dir: str | os.PathLike) -> str:
    """Why a plan's cell did not run (`skipped.json`)."""
    reason = read_json(Path(run_dir) / SKIPPED_FILE, "skipped cell").get("reason")
    return str(reason) if reason else "no reason given"
