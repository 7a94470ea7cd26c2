"""`molleak report DIR`: one self-contained HTML audit report of whatever runs DIR holds.

DIR may be one run directory (from `molleak extract`, evaluated or not), a benchmark directory
(cells that are run directories, plus `table.json` / `table.md`), or any folder holding such
directories (a demo output). The report renders the subset that exists and says in words what is
missing; it never fails because a later pipeline step has not run.

Sections (stable ids, `SECTION_IDS`): `summary` (headline table: each method's precision@K with
the base rate beside it and the controls wherever present, and the leakage verdict in words),
`tables` (every run with intervals; benchmark tables), `attribution` (P vs P' metrics, the
private-only test, membership), `precision` (precision@K curves per victim), `alpha` (the learned
alpha distribution per victim, the paper's Fig. 3), `roc` (ROC curves on a log FPR axis),
`learning-curve` (the policy's), `molecules` (the top extracted molecules, hits marked) and
`provenance` (configs, versions, seeds, hosts).

Ground truth comes only from files the evaluation step wrote (`results.json`, a per-molecule
labels file); the private set is read only when the caller passes it explicitly (`private=`), and
the report then says so. Figures are inline SVG (matplotlib), molecules inline SVG (RDKit), CSS
inline: the file opens without a network.
"""

from __future__ import annotations

import csv
import gzip
import html
import json
import logging
import math
import re
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from molleak.errors import InputFileError, MolleakError
from molleak.runs import run_metadata, write_atomic

log = logging.getLogger(__name__)

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary and verdict"),
    ("tables", "Tables"),
    ("attribution", "Leakage attribution"),
    ("precision", "precision@K per victim"),
    ("alpha", "Learned alpha per victim"),
    ("roc", "ROC curves (log FPR)"),
    ("learning-curve", "Policy learning curve"),
    ("molecules", "Top extracted molecules"),
    ("provenance", "Provenance"),
)
SECTION_IDS = tuple(sid for sid, _ in SECTIONS)

RUN_MARKERS = ("extract.json", "scores.tsv", "topk.tsv", "results.json")
LABEL_FILES = ("labels.tsv", "labels.tsv.gz", "topk_labels.tsv")
# curve.tsv is molleak.attack.search.method.CURVE_FILE (not imported: that module loads torch)
CURVE_FILES = ("curve.tsv", "learning_curve.tsv", "learning_curve.csv", "learning_curve.json")
# attribution.json: an attribution report; leakage/canary/sweep.json: `molleak leakage` (molleak.plans.leakage)
ATTRIBUTION_FILES = ("attribution.json", "leakage.json", "canary.json", "sweep.json")
TABLE_FILES = ("table.json", "table.md")
KINDS = ("substructure", "exact")
# molleak.plans.bench: each cell's bench_cell.json names its victim and role; skipped.json why it did not run
BENCH_CELL_FILE, BENCH_SKIPPED_FILE = "bench_cell.json", "skipped.json"
BENCH_ROLES = {"victim": "victim", "reference": "reference victim", "untrained": "random-init victim"}
VICTIM_FREE_METHODS = {"random", "qed", "sa", "dock"}
MAX_WALK_DEPTH = 6
MAX_FIGURES = 16


# ----------------------------------------------------------------------------------------------
# Reading run directories
# ----------------------------------------------------------------------------------------------


@dataclass
class RunData:
    """Everything the report reads from one run directory (each file optional)."""

    path: Path
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    extract: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    attribution: dict[str, Any] = field(default_factory=dict)
    cell: dict[str, Any] = field(default_factory=dict)
    topk: list[dict[str, str]] = field(default_factory=list)
    smiles: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    alpha: list[str] = field(default_factory=list)
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    label_by_smiles: dict[str, dict[str, bool]] = field(default_factory=dict)
    labels_source: str = ""
    curve: tuple[list[str], list[list[float]]] | None = None
    curve_file: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return str(self.extract.get("method") or self.config.get("method") or self.results.get("method") or "?")

    @property
    def steps(self) -> int | None:
        steps = self.config.get("steps")
        return int(steps) if isinstance(steps, int) else None

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def k(self) -> int:
        for source in (self.results, self.extract, self.config):
            if isinstance(source.get("k"), int):
                return int(source["k"])
        return 200

    @property
    def victim(self) -> str:
        """A short name of the victim the run attacked ("none" for victim-free runs).

        A benchmark cell names the audited victim also for its control roles (its reference and
        untrained victims), so controls are drawn beside the victim they control for.
        """
        if self.cell:
            return str(self.cell.get("victim") or "none")
        info = self.extract.get("victim")
        if isinstance(info, dict) and info.get("name"):
            return str(info["name"])
        path = self.config.get("victim")
        if path:
            return Path(str(path)).stem
        return "none"

    @property
    def role(self) -> str:
        """What the run is in the audit: the victim, or one of the controls beside it."""
        explicit = self.config.get("role") or self.extract.get("role")
        if self.cell and self.cell.get("victim"):
            explicit = BENCH_ROLES.get(str(self.cell.get("role", "victim")), str(self.cell.get("role")))
        if explicit:
            return str(explicit)
        method = self.method
        if method.startswith("prior"):
            return "victim-free prior"
        if self.victim == "none":
            return "victim-free baseline" if method in VICTIM_FREE_METHODS or self.extract else "no victim"
        info = self.extract.get("victim") if isinstance(self.extract.get("victim"), dict) else {}
        hint = " ".join(str(x) for x in (self.victim, self.config.get("victim"), info.get("strategy"))).lower()
        if re.search(r"random[-_ ]?init|untrained|\brandom\b|\binit\b", hint):
            return "random-init victim"
        if "reference" in hint or re.search(r"(^|[-_/])ref([-_.]|$)", hint):
            return "reference victim"
        return "victim"

    @property
    def is_control(self) -> bool:
        return self.role != "victim"

    @property
    def pool_sha(self) -> str | None:
        pool = self.extract.get("pool")
        return pool.get("sha256") if isinstance(pool, dict) else None

    @property
    def evaluated(self) -> bool:
        return bool(self.results)

    @property
    def label(self) -> str:
        steps = f", {self.steps}-step" if self.steps else ""
        return f"{self.method}{steps}"


def _read_json(path: Path, run: RunData | None, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        msg = f"{path.name} unreadable ({exc.__class__.__name__}: {exc}); ignored"
        (run.problems if run is not None else notes).append(msg)
        return {}
    if not isinstance(obj, dict):
        msg = f"{path.name} is not a JSON object; ignored"
        (run.problems if run is not None else notes).append(msg)
        return {}
    return obj


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    with _open_text(path) as fh:
        rows = list(csv.reader(fh, delimiter="," if path.suffix == ".csv" else "\t"))
    if not rows:
        return [], []
    return [h.strip() for h in rows[0]], [r for r in rows[1:] if r]


def _to_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _to_bool(text: str) -> bool | None:
    t = str(text).strip().lower()
    if t in {"1", "true", "yes", "y", "t"}:
        return True
    if t in {"0", "false", "no", "n", "f"}:
        return False
    return None


def _load_scores(run: RunData) -> None:
    path = run.path / "scores.tsv"
    if not path.is_file():
        return
    try:
        header, rows = _read_tsv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        run.problems.append(f"scores.tsv unreadable ({exc}); ignored")
        return
    if header[:2] != ["smiles", "score"]:
        run.problems.append(f"scores.tsv has header {header[:2]}, expected smiles, score; ignored")
        return
    a_col = header.index("alpha") if "alpha" in header else None
    run.smiles = [r[0] for r in rows]
    run.scores = np.array([_to_float(r[1]) if len(r) > 1 else float("nan") for r in rows], dtype=np.float64)
    run.alpha = [r[a_col] if a_col is not None and len(r) > a_col else "" for r in rows]


def _load_topk(run: RunData) -> None:
    path = run.path / "topk.tsv"
    if not path.is_file():
        return
    try:
        header, rows = _read_tsv(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        run.problems.append(f"topk.tsv unreadable ({exc}); ignored")
        return
    if "smiles" not in header:
        run.problems.append("topk.tsv has no smiles column; ignored")
        return
    run.topk = [dict(zip(header, r, strict=False)) for r in rows]
    # labels written into the top-K file by the evaluation step, if any
    if any(k in header for k in KINDS):
        for row in run.topk:
            marks = {k: b for k in KINDS if (b := _to_bool(row.get(k, ""))) is not None}
            if marks:
                run.label_by_smiles.setdefault(row["smiles"], {}).update(marks)
        run.labels_source = run.labels_source or "topk.tsv (written by the evaluation)"


def _load_labels(run: RunData) -> None:
    """Per-molecule labels that the evaluation step wrote (never computed here without `private=`)."""
    for name in LABEL_FILES:
        path = run.path / name
        if not path.is_file():
            continue
        try:
            header, rows = _read_tsv(path)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            run.problems.append(f"{name} unreadable ({exc}); ignored")
            continue
        if "smiles" not in header or not any(k in header for k in KINDS):
            run.problems.append(f"{name} has no smiles / substructure / exact columns; ignored")
            continue
        s_col = header.index("smiles")
        cols = {k: header.index(k) for k in KINDS if k in header}
        for r in rows:
            marks = {k: b for k, c in cols.items() if c < len(r) and (b := _to_bool(r[c])) is not None}
            run.label_by_smiles.setdefault(r[s_col], {}).update(marks)
        run.labels_source = f"{name} (written by the evaluation)"
        break
    _labels_over_pool(run)


def _labels_over_pool(run: RunData) -> None:
    """Whole-pool label arrays (aligned with scores.tsv) when every scored molecule has a label."""
    if not run.smiles or not run.label_by_smiles:
        return
    for kind in KINDS:
        values = [run.label_by_smiles.get(s, {}).get(kind) for s in run.smiles]
        if all(v is not None for v in values):
            run.labels[kind] = np.array(values, dtype=bool)


def _load_curve(run: RunData) -> None:
    for name in CURVE_FILES:
        path = run.path / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".json"):
                obj = json.loads(path.read_text(encoding="utf-8"))
                rows_obj = obj.get("curve", obj) if isinstance(obj, dict) else obj
                if not isinstance(rows_obj, list) or not rows_obj or not isinstance(rows_obj[0], dict):
                    raise ValueError("expected a list of objects")
                header = list(rows_obj[0])
                rows = [[str(r.get(h, "")) for h in header] for r in rows_obj]
            else:
                header, rows = _read_tsv(path)
        except (OSError, UnicodeDecodeError, csv.Error, ValueError, json.JSONDecodeError) as exc:
            run.problems.append(f"{name} unreadable ({exc}); ignored")
            continue
        if header and rows:
            run.curve = (header, [[_to_float(x) for x in r] for r in rows])
            run.curve_file = name
        return


def load_run(path: Path, root: Path) -> RunData:
    """Read one run directory tolerantly: unreadable files become notes, never exceptions."""
    name = "." if path == root else str(path.relative_to(root))
    run = RunData(path=path, name=name)
    run.config = _read_json(path / "config.json", run, run.problems)
    run.metadata = _read_json(path / "metadata.json", run, run.problems)
    run.extract = _read_json(path / "extract.json", run, run.problems)
    run.results = _read_json(path / "results.json", run, run.problems)
    run.cell = _read_json(path / BENCH_CELL_FILE, run, run.problems)
    skipped = _read_json(path / BENCH_SKIPPED_FILE, run, run.problems)
    if skipped:
        run.problems.append(f"benchmark cell skipped: {skipped.get('reason', 'no reason given')}")
    attribution = run.results.get("attribution")
    run.attribution = attribution if isinstance(attribution, dict) else {}
    for fname in ATTRIBUTION_FILES:
        if not run.attribution:
            run.attribution = _read_json(path / fname, run, run.problems)
    _load_scores(run)
    _load_topk(run)
    _load_labels(run)
    _load_curve(run)
    return run


def _is_run_dir(path: Path) -> bool:
    if any((path / m).is_file() for m in (*RUN_MARKERS, BENCH_CELL_FILE)):
        return True
    config = path / "config.json"
    if config.is_file():
        try:
            return "method" in json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
    return False


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


@dataclass
class AuditData:
    """All runs, tables and attribution files found under the report's directory."""

    root: Path
    runs: list[RunData]
    tables: list[tuple[str, Any, str]]  # (relative path, parsed table.json or None, table.md text)
    attribution_files: list[tuple[str, dict[str, Any]]]
    notes: list[str]
    private: dict[str, Any] | None = None


def discover(root: str | Path) -> AuditData:
    """Find every run directory, benchmark table and attribution file under `root`."""
    root = Path(root)
    if not root.is_dir():
        raise InputFileError(f"report: directory not found: {root}")
    notes: list[str] = []
    runs, tables, attribution = [], [], []
    for d in _walk(root):
        if _is_run_dir(d):
            runs.append(load_run(d, root))
        rel = "." if d == root else str(d.relative_to(root))
        if any((d / t).is_file() for t in TABLE_FILES):
            parsed = _read_json(d / "table.json", None, notes) or None
            md = (d / "table.md").read_text(encoding="utf-8", errors="replace") if (d / "table.md").is_file() else ""
            tables.append((rel, parsed, md))
        if not _is_run_dir(d):
            for fname in ATTRIBUTION_FILES:
                obj = _read_json(d / fname, None, notes)
                if obj:
                    attribution.append((f"{rel}/{fname}", obj))
    if not runs and not tables and not attribution:
        raise MolleakError(f"report: {root} holds no run directory (none of {', '.join(RUN_MARKERS)}), "
                           f"no benchmark table and no attribution file")
    return AuditData(root=root, runs=runs, tables=tables, attribution_files=attribution, notes=notes)


def label_with_private(data: AuditData, private_path: str | Path) -> None:
    """Label every run's pool against the private set (only when the user asked for it with --private)."""
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.evaluate import bank_labels
    from molleak.runs import sha256_lines

    private = read_smiles(private_path, what="private set")
    sha = sha256_lines(private.smiles)
    data.private = {"path": str(private_path), "n": len(private.smiles), "sha256": sha}
    for run in data.runs:
        smiles = run.smiles or [r["smiles"] for r in run.topk]
        if not smiles:
            continue
        lab = bank_labels(smiles, private.smiles, sha)
        for i, s in enumerate(smiles):
            run.label_by_smiles[s] = {"substructure": bool(lab.substructure[i]), "exact": bool(lab.exact[i])}
        run.labels_source = f"computed by the report from --private {private_path}"
        _labels_over_pool(run)


# ----------------------------------------------------------------------------------------------
# Formatting helpers
# ----------------------------------------------------------------------------------------------


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "n/a"
        return f"{x:.{digits}f}"
    return str(x)


def _ci(value: Any, interval: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    text = _num(value, digits)
    if isinstance(interval, list | tuple) and len(interval) == 2 and all(isinstance(v, int | float) for v in interval):
        text += f" [{_num(float(interval[0]), digits)}, {_num(float(interval[1]), digits)}]"
    return text


def _estimate(obj: Any, digits: int = 3) -> str | None:
    """`{value, lo, hi}` (attribution Estimates) or `{mean, lo, hi}` / `{mean, ci95}` (bench cells)."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("value", obj.get("mean"))
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    interval = obj.get("ci95") or ([obj["lo"], obj["hi"]] if "lo" in obj and "hi" in obj else None)
    interval = interval if isinstance(interval, list | tuple) and all(
        isinstance(v, int | float) for v in interval) else None
    text = _ci(float(value), interval, digits)
    if isinstance(obj.get("n"), int):
        text += f" (n={obj['n']})"
    return text


def _cell(x: Any) -> str:
    est = _estimate(x)
    if est is not None:
        return _esc(est)
    if isinstance(x, list) and len(x) == 2 and all(isinstance(v, int | float) for v in x):
        return _esc(f"[{_num(float(x[0]))}, {_num(float(x[1]))}]")
    if isinstance(x, dict | list):
        return f"<code>{_esc(json.dumps(x, default=str)[:300])}</code>"
    return _esc(_num(x))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (already HTML)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else _esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _missing(text: str) -> str:
    return f'<p class="missing">{_esc(text)}</p>'


def _ks(run: RunData) -> list[int]:
    ks = sorted({int(m.group(1)) for key in run.results if (m := re.fullmatch(r"precision_substructure@(\d+)", key))})
    return ks


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------


def _group_runs(runs: Sequence[RunData]) -> list[tuple[tuple[str, str, str, Any], list[RunData]]]:
    """Runs that differ only in their seed (same role, victim, method, steps and pool) -> runs.

    Returns [((role, victim, method, steps), runs)]; runs over different pools are separate groups.
    """
    groups: dict[tuple[str, str, str, Any, Any], list[RunData]] = defaultdict(list)
    order = {"victim": 0, "reference victim": 1, "random-init victim": 2, "victim-free prior": 3}
    for run in sorted(runs, key=lambda r: (order.get(r.role, 4), r.victim, r.method, r.steps or 0, r.name)):
        groups[(run.role, run.victim, run.method, run.steps, run.pool_sha)].append(run)
    return [(key[:4], members) for key, members in groups.items()]


def _mean_of(runs: Sequence[RunData], key: str) -> tuple[float | None, list[float] | None, int]:
    vals = [r.results.get(key) for r in runs]
    vals = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if not vals:
        return None, None, 0
    if len(vals) == 1:
        ci = runs[0].results.get(f"{key}_ci95") if len(runs) == 1 else None
        return vals[0], ci, 1
    return float(np.mean(vals)), [float(min(vals)), float(max(vals))], len(vals)


def _fmt_group(runs: Sequence[RunData], key: str) -> str:
    value, interval, n = _mean_of(runs, key)
    if value is None:
        return "n/a"
    text = _ci(value, interval)
    return text + (f" (mean of {n}; range)" if n > 1 else "")


def _headline(data: AuditData) -> str:
    evaluated = [r for r in data.runs if r.evaluated]
    parts = []
    if not data.runs:
        parts.append(_missing("No run directories found: only tables or attribution files (below)."))
    elif not evaluated:
        parts.append(_missing(
            f"None of the {len(data.runs)} run(s) has been evaluated (no results.json): precision, base rates "
            f"and AUC are unknown. Run `molleak evaluate RUN_DIR --private private.smi` on each run."))
    if evaluated:
        ks = sorted({k for r in evaluated for k in _ks(r)}) or [50, 100, 200]
        kmax = ks[-1]
        header = (["role", "victim", "method", "seeds"] + [f"P_sub@{k} [95% CI]" for k in ks]
                  + ["base rate (sub)", f"P_exact@{kmax}", "base rate (exact)", "AUC (sub)",
                     f"P_sub@{kmax} against P' (reference set)", f"victim-free prior P_sub@{kmax} (same pool)",
                     f"P_sub@{kmax} above base rate?"])
        priors: dict[Any, list[float]] = defaultdict(list)
        for r in evaluated:
            value = r.results.get(f"precision_substructure@{kmax}")
            if r.role == "victim-free prior" and isinstance(value, int | float):
                priors[r.pool_sha].append(float(value))
        rows = []
        for (role, victim, _method, _steps), runs in _group_runs(evaluated):
            same_pool = priors.get(runs[0].pool_sha, [])
            prior = "n/a (no prior on this pool)" if not same_pool else _num(max(same_pool))
            base = _mean_of(runs, "base_rate_substructure")[0]
            lo_ci = _mean_of(runs, f"precision_substructure@{kmax}")
            above = "n/a"
            if lo_ci[0] is not None and base is not None:
                lo = lo_ci[1][0] if lo_ci[1] else lo_ci[0]
                above = "yes" if lo > base else "no (interval reaches the base rate)"
            ref = [r.results.get("banks", {}).get("reference", {}).get(f"precision_substructure@{kmax}")
                   for r in runs]
            ref = [float(v) for v in ref if isinstance(v, int | float)]
            rows.append([role, victim, runs[0].label, str(len(runs))]
                        + [_fmt_group(runs, f"precision_substructure@{k}") for k in ks]
                        + [_num(base), _fmt_group(runs, f"precision_exact@{kmax}"),
                           _num(_mean_of(runs, "base_rate_exact")[0]), _fmt_group(runs, "auc"),
                           _num(float(np.mean(ref))) if ref else "n/a (no --bank reference=...)", prior, above])
        parts.append(_table(header, rows, "headline"))
        roles = {r.role for r in evaluated}
        absent = [c for c in ("victim-free prior", "random-init victim", "reference victim") if c not in roles]
        if absent:
            parts.append(_missing(
                "Controls not present in this directory: " + ", ".join(absent) + ". Without them a precision "
                "cannot be attributed to the victim: the base rate and the data distribution alone explain much "
                "of it (method.md section 10)."))
    parts.append("<h3>Leakage verdict</h3>")
    verdicts = _verdicts(data)
    if verdicts:
        parts.append("<ul class='verdict'>" + "".join(f"<li><b>{_esc(src)}</b>: {_esc(v)}</li>"
                                                     for src, v in verdicts) + "</ul>")
    else:
        parts.append(_missing(
            "Leakage was not tested: no attribution results (reference victim, private-only test, membership) "
            "were found. precision@K alone cannot show leakage; it mostly measures how common a fragment is."))
    return "\n".join(parts)


def _verdicts(data: AuditData) -> list[tuple[str, str]]:
    """Every verdict sentence of the attribution results, each once (an audit may store one twice)."""
    out: dict[str, str] = {}
    for src, obj in [(r.name, r.attribution) for r in data.runs if r.attribution] + data.attribution_files:
        for key, value in _walk_items(obj):
            if "verdict" in key.lower() and isinstance(value, str):
                out.setdefault(value, f"{src}: {key}")
    return [(src, verdict) for verdict, src in out.items()]


def _walk_items(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted key, value) of every nested entry; an estimate ({value, lo, hi}) is one entry."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key, v
            if _estimate(v) is None:
                yield from _walk_items(v, key)


def _runs_table(data: AuditData) -> str:
    if not data.runs:
        return _missing("No run directories found.")
    ks = sorted({k for r in data.runs for k in _ks(r)}) or [50, 100, 200]
    header = (["run", "role", "victim", "method", "seed", "K"]
              + [f"P_{kind[:3]}@{k} [95% CI]" for kind in KINDS for k in ks]
              + ["base sub", "base exact", "AUC", "TPR@1%FPR", "TPR@0.1%FPR", "FCD (core)", "FCD (random)",
                 "queries", "s score", "s total"])
    rows = []
    for run in data.runs:
        r = run.results
        fcd_core = next((v for k, v in r.items() if k.startswith("fcd_core@")), None)
        fcd_rand = next((v for k, v in r.items() if re.fullmatch(r"fcd_random@\d+", k)), None)
        rows.append([run.name, run.role, run.victim, run.label, _num(run.seed), _num(run.k)]
                    + [_ci(r.get(f"precision_{kind}@{k}"), r.get(f"precision_{kind}@{k}_ci95"))
                       for kind in KINDS for k in ks]
                    + [_num(r.get("base_rate_substructure")), _num(r.get("base_rate_exact")), _num(r.get("auc")),
                       _num(r.get("tpr@1%fpr")), _num(r.get("tpr@0.1%fpr")), _num(fcd_core, 2), _num(fcd_rand, 2),
                       _num(r.get("queries", run.extract.get("queries"))),
                       _num(r.get("seconds_score", run.extract.get("seconds_score")), 1),
                       _num(r.get("seconds_total", run.extract.get("seconds_total")), 1)])
    parts = ["<h3>Runs</h3>", _table(header, rows, "runs")]
    unevaluated = [run.name for run in data.runs if not run.evaluated]
    if unevaluated:
        parts.append(_missing(f"Not evaluated (no results.json, metrics shown as n/a): {', '.join(unevaluated)}."))
    return "\n".join(parts)


def _bench_table_html(parsed: Any) -> str | None:
    """A benchmark table.json as HTML: a list of row objects, or {"rows": [...], "columns": [...]}."""
    rows_obj, columns = None, None
    if isinstance(parsed, list):
        rows_obj = parsed
    elif isinstance(parsed, dict):
        for key in ("rows", "table", "cells"):
            if isinstance(parsed.get(key), list):
                rows_obj = parsed[key]
                break
        if rows_obj is None and parsed and all(isinstance(v, dict) for v in parsed.values()):
            rows_obj = [{"row": k, **v} for k, v in parsed.items()]
        if isinstance(parsed.get("columns"), list):
            columns = [str(c) for c in parsed["columns"]]
    if not rows_obj or not all(isinstance(r, dict) for r in rows_obj):
        return None
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows_obj for k in r))
    rows = [[_cell(r.get(c)) for c in columns] for r in rows_obj]
    return _table(columns, rows, "bench", raw=True)


def _markdown_table_html(text: str) -> str | None:
    """Pipe tables of a table.md as HTML (other lines as paragraphs)."""
    out, block = [], []

    def flush() -> None:
        if len(block) >= 2:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
            body = [r for r in cells[1:] if not all(re.fullmatch(r":?-{2,}:?", c) for c in r)]
            out.append(_table(cells[0], body, "bench"))
        block.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        text = line.strip()
        if text.startswith("#"):
            out.append(f"<h4>{_esc(text.lstrip('#').strip())}</h4>")
        elif text:
            out.append(f"<p>{_esc(text)}</p>")
    flush()
    return "\n".join(out) if out else None


def _tables(data: AuditData) -> str:
    parts = [_runs_table(data)]
    if not data.tables:
        parts.append(_missing("No benchmark tables (table.json / table.md from `molleak bench`) in this directory."))
    for rel, parsed, md in data.tables:
        where = data.root.resolve().name if rel == "." else rel
        parts.append(f"<h3>Benchmark table: {_esc(where)}/{'table.md' if md else 'table.json'}</h3>")
        # table.md is the aggregator's own rendering (base rates and controls beside each number)
        rendered = _markdown_table_html(md) if md else None
        if rendered is None and parsed is not None:
            rendered = _bench_table_html(parsed)
        parts.append(rendered or _missing(f"{rel}: table.json / table.md present but in no format this report reads."))
    return "\n".join(parts)


def _membership_rows(block: dict[str, Any]) -> list[list[str]]:
    """Rows of a membership audit ({"rows": {score name: membership_metrics}}): AUC and TPR at low FPR."""
    rows = []
    for name, m in block.get("rows", {}).items():
        if not isinstance(m, dict):
            continue
        tprs = m.get("tpr_at_fpr", {}) if isinstance(m.get("tpr_at_fpr"), dict) else {}
        tpr = {float(k): v for k, v in tprs.items() if re.fullmatch(r"[0-9.eE-]+", str(k))}
        rows.append([name, _estimate(m.get("auc")) or "n/a", _estimate(tpr.get(0.01)) or "n/a",
                     _estimate(tpr.get(0.001)) or "n/a", _num(m.get("n_members")), _num(m.get("n_nonmembers"))])
    return rows


_MEMBERSHIP_HEADER = ["score", "AUC [95% CI]", "TPR@1%FPR", "TPR@0.1%FPR", "members", "non-members"]


def _cells_table(cells: list[Any]) -> str:
    """Canary / sweep cells: one row per cell, AUC [CI] of every membership block and score."""
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        row: dict[str, str] = {}
        for key, value in cell.items():
            if isinstance(value, dict) and isinstance(value.get("rows"), dict):
                for r in _membership_rows(value):
                    row[f"{key}: {r[0]} AUC"] = r[1]
                    row[f"{key}: {r[0]} TPR@1%"] = r[2]
            elif not isinstance(value, dict | list):
                row[key] = _num(value)
        header.extend(k for k in row if k not in header)
        rows.append(row)
    return _table(header, [[r.get(h, "") for h in header] for r in rows], "attribution")


def _attribution(data: AuditData) -> str:
    sources = [(f"{r.name}", r.attribution) for r in data.runs if r.attribution] + data.attribution_files
    if not sources:
        return _missing(
            "No leakage-attribution results (precision and AUC against P and P' labels, the private-only test "
            "and its paired-bootstrap difference, membership AUC/TPR for victim and reference, canaries) "
            "were found (`molleak leakage`, `molleak evaluate` with the reference set).")
    parts = []
    for src, obj in sources:
        parts.append(f"<h3>{_esc(src)}</h3>")
        done = set()
        for key, value in obj.items():
            if isinstance(value, dict) and isinstance(value.get("rows"), dict):
                stat = f", statistic <code>{_esc(value['statistic'])}</code>" if value.get("statistic") else ""
                parts.append(f"<p><b>{_esc(key)}</b> (whole-molecule membership{stat}, members vs non-members)</p>")
                parts.append(_table(_MEMBERSHIP_HEADER, _membership_rows(value), "attribution"))
                if isinstance(value.get("verdict"), str):
                    parts.append(f"<p class='note'>{_esc(value['verdict'])}</p>")
                done.add(key)
            elif key == "cells" and isinstance(value, list):
                parts.append(_cells_table(value))
                done.add(key)
        rows = []
        for key, value in _walk_items({k: v for k, v in obj.items() if k not in done}):
            est = _estimate(value)
            if est is not None:
                rows.append([key, est])
            elif not isinstance(value, dict | list):
                rows.append([key, _num(value)])
        if rows:
            parts.append(_table(["quantity", "value [95% CI]"], rows, "attribution"))
    return "\n".join(parts)


# -- figures -------------------------------------------------------------------------------------


def _precision_series(run: RunData, kind: str, label: str):
    """(Series, base rate) of one run: the full curve from whole-pool labels, else the results.json points."""
    from molleak.evaluate.metrics import wilson_interval
    from molleak.evaluate.plots import Series
    from molleak.ranking import rank_order

    if kind in run.labels and run.scores.size and isinstance(run.seed, int):
        order = rank_order(run.scores, run.seed)
        kmax = max([run.k] + _ks(run))
        ranked = run.labels[kind][order][:kmax]
        hits = np.cumsum(ranked)
        ks = np.arange(1, len(ranked) + 1)
        bounds = np.array([wilson_interval(int(h), int(k)) for h, k in zip(hits, ks, strict=True)])
        scored = np.isfinite(run.scores)
        base = float(run.labels[kind][scored].mean()) if scored.any() else None
        return Series(label, ks, hits / ks, bounds[:, 0], bounds[:, 1], control=run.is_control,
                      markers=False), base
    ks = [k for k in _ks(run) if isinstance(run.results.get(f"precision_{kind}@{k}"), int | float)]
    if not ks:
        return None, None
    ys = [run.results[f"precision_{kind}@{k}"] for k in ks]
    cis = [run.results.get(f"precision_{kind}@{k}_ci95") or [float("nan")] * 2 for k in ks]
    base = run.results.get(f"base_rate_{kind}")
    return Series(label, ks, ys, [c[0] for c in cis], [c[1] for c in cis], control=run.is_control), base


def _victim_panels(data: AuditData) -> dict[str, list[RunData]]:
    """victim -> its runs plus the victim-free runs over the same pool (drawn beside it as controls)."""
    victims: dict[str, list[RunData]] = defaultdict(list)
    free = [r for r in data.runs if r.victim == "none"]
    audited = {r.victim for r in data.runs if r.role == "victim" and r.victim != "none"}
    for run in data.runs:
        if run.victim == "none":
            continue
        # with one audited victim, its control victims' runs are drawn beside it rather than apart
        if len(audited) == 1 and run.role in ("reference victim", "random-init victim"):
            victims[next(iter(audited))].append(run)
        else:
            victims[run.victim].append(run)
    for runs in victims.values():
        pools = {r.pool_sha for r in runs}
        runs.extend(r for r in free if r.pool_sha in pools or r.pool_sha is None or None in pools)
    if free and not victims:
        victims["victim-free runs"] = free
    return victims


def _panel_groups(runs: Sequence[RunData]) -> list[tuple[str, list[RunData]]]:
    """The runs of one figure grouped by what they are (role, method, steps), seeds together."""
    out = []
    for (role, _victim, _method, _steps), members in _group_runs(runs):
        label = members[0].label if role == "victim" else f"{members[0].label} [{role}]"
        out.append((label, members))
    return out


def _precision_group_series(runs: Sequence[RunData], kind: str, label: str):
    """One series per group: a single run as it is, several seeds as their mean with a min-max band."""
    from molleak.evaluate.plots import Series

    per = [(s, b) for s, b in (_precision_series(r, kind, label) for r in runs) if s is not None]
    if not per:
        return None, None
    bases = [b for _, b in per if b is not None]
    base = float(np.mean(bases)) if bases else None
    if len(per) == 1:
        return per[0][0], base
    common = set.intersection(*({int(x) for x in s.x} for s, _ in per))
    xs = sorted(common)
    if not xs:
        return per[0][0], base
    ys = np.array([[dict(zip((int(x) for x in s.x), s.y, strict=True))[k] for k in xs] for s, _ in per],
                  dtype=float)
    return Series(f"{label} (mean of {len(per)} seeds, band min-max)", xs, ys.mean(axis=0), ys.min(axis=0),
                  ys.max(axis=0), control=per[0][0].control, markers=per[0][0].markers), base


def _precision(data: AuditData) -> str:
    from molleak.evaluate.plots import precision_figure

    parts, n_fig, dropped = [], 0, 0
    for victim, runs in _victim_panels(data).items():
        groups = _panel_groups(runs)
        # one base-rate line when every run ranks the same pool; otherwise each line names its own
        one_pool = len({r.pool_sha for r in runs}) == 1
        panels = {}
        for kind in KINDS:
            series, bases = [], []
            for label, members in groups:
                s, base = _precision_group_series(members, kind, label)
                if s is None:
                    continue
                series.append(s)
                if base is not None:
                    bases.append(base)
                    if not one_pool:
                        s.label += f" (base rate {base:.3f})"
            if series:
                dropped = max(dropped, len(series) - 10)
                line = float(np.mean(bases)) if bases and one_pool else None
                panels[kind] = (series[:10], line)
        if not panels:
            continue
        if n_fig >= MAX_FIGURES:
            parts.append(_missing(f"More victims than {MAX_FIGURES} figures; the rest are in the tables."))
            break
        parts.append(f"<figure>{precision_figure(panels, f'victim: {victim}')}"
                     f"<figcaption>precision@K of every method on victim {_esc(victim)}; dashed lines are "
                     f"controls, the dotted grey line the pool's base rate; bands are 95% Wilson intervals "
                     f"(one run) or the range over seeds.</figcaption></figure>")
        n_fig += 1
    if not parts:
        return _missing("No evaluated runs: precision@K needs results.json (run `molleak evaluate`).")
    if dropped:
        parts.append(_missing(f"Figures show at most 10 methods each; {dropped} more are only in the tables."))
    if not any(r.labels for r in data.runs):
        parts.append(_missing("Curves are drawn only at the K the evaluation reported: no per-molecule labels were "
                              "written (pass --private to label the pools here)."))
    return "\n".join(parts)


def _parse_alpha(values: Iterable[str]) -> list[float]:
    out = []
    for text in values:
        for part in str(text).split(";"):
            v = _to_float(part) if part.strip() else float("nan")
            if math.isfinite(v):
                out.append(v)
    return out


def _alpha(data: AuditData) -> str:
    """Fig. 3 of the paper: the learned alpha per victim, whole pool against top-K, seeds pooled."""
    from molleak.evaluate.plots import histogram_figure
    from molleak.ranking import rank_order

    parts, n_groups = [], 0
    for (role, victim, _method, _steps), runs in _group_runs(data.runs):
        pool_alpha, top_alpha = [], []
        for run in runs:
            pool_alpha += _parse_alpha(run.alpha)
            if run.alpha and isinstance(run.seed, int) and run.scores.size == len(run.alpha):
                top_alpha += _parse_alpha(run.alpha[i] for i in rank_order(run.scores, run.seed)[: run.k])
        if not pool_alpha:
            continue
        n_groups += 1
        if n_groups > MAX_FIGURES:
            continue
        seeds = f", {len(runs)} seeds pooled" if len(runs) > 1 else ""
        groups = {"whole pool": pool_alpha, f"top-{runs[0].k}": top_alpha}
        value_range = (0.0, 1.0) if min(pool_alpha) >= 0 and max(pool_alpha) <= 1 else None
        fig = histogram_figure(groups, f"victim {victim} [{role}]: {runs[0].label}{seeds}", "learned alpha",
                               value_range=value_range)
        parts.append(f"<figure>{fig}<figcaption>Distribution of alpha (the template/motif mix of the score) "
                     f"for victim {_esc(victim)} ({_esc(role)}), method {_esc(runs[0].method)}: whole pool and "
                     f"top-K.</figcaption></figure>")
    if not parts:
        return _missing("No run recorded alpha values (scores.tsv alpha column): only the adapter and eq1 scores "
                        "have one.")
    if n_groups > MAX_FIGURES:
        parts.append(_missing(f"{n_groups - MAX_FIGURES} more alpha distributions are left out."))
    return "\n".join(parts)


def _roc(data: AuditData) -> str:
    from sklearn.metrics import roc_curve

    from molleak.evaluate.plots import Series, roc_figure

    parts = []
    for victim, runs in _victim_panels(data).items():
        series, min_fpr = [], 1.0
        for label, members in _panel_groups(runs):
            run = next((r for r in members if "substructure" in r.labels), None)
            if run is None:
                continue
            lab = run.labels["substructure"]
            ok = np.isfinite(run.scores)
            if lab[ok].all() or not lab[ok].any():
                continue
            fpr, tpr, _ = roc_curve(lab[ok], run.scores[ok])
            auc = float(np.trapezoid(tpr, fpr))
            min_fpr = min(min_fpr, 1.0 / max(1, int((~lab[ok]).sum())))
            seed = f" (seed {run.seed} of {len(members)})" if len(members) > 1 else ""
            series.append(Series(f"{label}{seed} AUC {auc:.3f}", fpr, tpr, control=run.is_control))
        if series:
            parts.append(f"<figure>{roc_figure(series[:10], f'victim: {victim} (substructure labels)', min_fpr)}"
                         f"<figcaption>ROC of each score over the whole pool, FPR on a log axis from 1/negatives."
                         f"</figcaption></figure>")
        if len(parts) >= MAX_FIGURES:
            break
    if parts:
        return "\n".join(parts)
    points = [(r, r.results.get("auc"), r.results.get("tpr@1%fpr"), r.results.get("tpr@0.1%fpr"))
              for r in data.runs if r.evaluated]
    msg = _missing("ROC curves need per-molecule labels of the pool, which the evaluation did not write "
                   "(pass --private to label the pools here). The summary points from results.json:")
    if not points:
        return _missing("No evaluated runs: ROC curves need results.json and per-molecule labels.")
    rows = [[r.name, r.label, _num(a), _num(t1), _num(t01)] for r, a, t1, t01 in points]
    return msg + _table(["run", "method", "AUC", "TPR@1%FPR", "TPR@0.1%FPR"], rows, "roc-points")


def _learning_curve(data: AuditData) -> str:
    """Per victim, the search curves (`curve.tsv`) of every run that wrote one, against victim queries."""
    from molleak.evaluate.plots import Series, curve_figure

    by_victim: dict[str, list[RunData]] = defaultdict(list)
    for run in data.runs:
        if run.curve is not None:
            by_victim[run.victim].append(run)
    parts = []
    for victim, runs in list(by_victim.items())[:MAX_FIGURES]:
        panels: dict[str, list[Series]] = defaultdict(list)
        x_names = set()
        for run in runs:
            header, rows = run.curve
            arr = np.array(rows, dtype=float).reshape(len(rows), len(header))
            x_name = next((h for h in ("queries", "query", "episodes", "update", "step") if h in header), header[0])
            x_names.add(x_name)
            xi = header.index(x_name)
            label = f"{run.label} seed {run.seed}" if len(runs) > 1 else run.label
            for j, h in enumerate(header):
                finite = arr[np.isfinite(arr[:, j]), j]
                # constant columns (a fixed coefficient, no failures) say nothing per query
                if j != xi and h not in ("update", "episodes", "step") and finite.size and np.ptp(finite) > 0:
                    panels[h].append(Series(label, arr[:, xi], arr[:, j], control=run.method != "policy"))
        if not panels:
            continue
        # the reward first, then the archive: what the policy learns, then what it finds
        order = sorted(panels, key=lambda h: (0 if "reward" in h else 1 if h.endswith("_mean") else 2))
        fig = curve_figure({h: panels[h] for h in order[:4]}, " / ".join(sorted(x_names)), f"victim: {victim}")
        files = ", ".join(f"{r.name}/{r.curve_file}" for r in runs)
        parts.append(f"<figure>{fig}<figcaption>Search curves against victim queries ({_esc(files)}): the "
                     f"policy solid, other searches (random search) dashed.</figcaption></figure>")
    if not parts:
        has_policy = any(r.method == "policy" for r in data.runs)
        return _missing("A policy run is present but wrote no learning-curve file." if has_policy else
                        "No policy run (`molleak extract --method policy`) in this directory: no learning curve.")
    return "\n".join(parts)


def _molecule_svg(smiles: str, width: int = 190, height: int = 150) -> str | None:
    from rdkit.Chem.Draw import rdMolDraw2D

    from molleak.chem import rdkit_quiet, to_mol

    with rdkit_quiet():
        mol = to_mol(smiles)
        if mol is None:
            return None
        drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
        drawer.drawOptions().clearBackground = False
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
        drawer.FinishDrawing()
    text = drawer.GetDrawingText()
    return text[text.index("<svg"):]


def _molecules(data: AuditData, top_n: int, max_runs: int) -> str:
    runs = sorted((r for r in data.runs if r.topk), key=lambda r: (r.is_control, r.name))
    if not runs:
        return _missing("No run has a topk.tsv: nothing was extracted yet.")
    parts = []
    for run in runs[:max_runs]:
        labelled = bool(run.label_by_smiles)
        cards = []
        for row in run.topk[:top_n]:
            s = row.get("smiles", "")
            marks = run.label_by_smiles.get(s, {})
            if not labelled or not marks:
                cls, badge = "unlabelled", "not labelled"
            elif marks.get("exact"):
                cls, badge = "exact", "exact hit"
            elif marks.get("substructure"):
                cls, badge = "substructure", "substructure hit"
            else:
                cls, badge = "miss", "miss"
            svg = _molecule_svg(s) or f"<div class='nodraw'>cannot draw {_esc(s)}</div>"
            cards.append(f"<div class='mol {cls}' title='{_esc(s)}'>{svg}<div class='cap'>#{_esc(row.get('rank', ''))}"
                         f" score {_esc(_num(_to_float(row.get('score', '')), 3))}<br><span class='badge'>"
                         f"{badge}</span><br><code>{_esc(s)}</code></div></div>")
        source = (f"Hits from {run.labels_source}." if labelled else
                  "No per-molecule labels were written for this run, so hits are not marked "
                  "(pass --private to label here).")
        parts.append(f"<h3>{_esc(run.label)} on victim {_esc(run.victim)} [{_esc(run.role)}] ({_esc(run.name)})</h3>"
                     f"<p class='note'>Top {len(cards)} of {len(run.topk)}. {_esc(source)}</p>"
                     f"<div class='grid'>{''.join(cards)}</div>")
    if len(runs) > max_runs:
        parts.append(_missing(f"{len(runs) - max_runs} more run(s) with a top-K are not drawn (see the tables)."))
    return "\n".join(parts)


def _provenance(data: AuditData, command: str | None) -> str:
    meta = run_metadata(command)
    rows = [["report generated", meta["time"]], ["host", meta["host"]], ["platform", meta["platform"]],
            ["command", meta["command"]], ["directory", str(data.root.resolve())]]
    rows += [[f"version {k}", v] for k, v in meta["versions"].items()]
    if data.private:
        rows.append(["private set read by the report",
                     f"{data.private['path']} ({data.private['n']} molecules, sha256 {data.private['sha256'][:16]}...)"])
    else:
        rows.append(["private set read by the report", "no (labels only from the evaluation's files)"])
    parts = ["<h3>This report</h3>", _table(["item", "value"], rows, "prov")]
    if data.notes:
        parts.append("<h3>Problems reading files</h3><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in data.notes)
                     + "</ul>")
    for run in data.runs:
        versions = run.metadata.get("versions", {})
        vtext = ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else ""
        summary = (f"{_esc(run.name)}: {_esc(run.label)}, victim {_esc(run.victim)}, seed {_esc(_num(run.seed))}, "
                   f"host {_esc(run.metadata.get('host', 'n/a'))}, {_esc(run.metadata.get('time', ''))}")
        body = [f"<p><b>versions</b>: {_esc(vtext or 'n/a (no metadata.json)')}</p>",
                f"<p><b>command</b>: <code>{_esc(run.metadata.get('command', 'n/a'))}</code></p>",
                f"<pre>{_esc(json.dumps(run.config, indent=2, default=str))}</pre>"]
        if run.problems:
            body.append("<ul>" + "".join(f"<li class='missing'>{_esc(p)}</li>" for p in run.problems) + "</ul>")
        parts.append(f"<details><summary>{summary}</summary>{''.join(body)}</details>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#222;background:#fff}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:13px;opacity:.9}
nav{position:sticky;top:0;background:#f1f4f8;border-bottom:1px solid #ccd;padding:6px 24px;font-size:13px;z-index:2}
nav a{margin-right:14px;color:#1d3557;text-decoration:none}
main{padding:8px 24px 40px}section{margin:18px 0 28px;border-top:2px solid #e3e8ef;padding-top:6px}
h2{color:#1d3557;font-size:19px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;font-size:12px;margin:6px 0 10px}
th,td{border:1px solid #cfd6df;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f7}tbody tr:nth-child(even){background:#fafbfd}
.missing{color:#8a4b00;background:#fff6e5;border-left:4px solid #f0a030;padding:6px 10px;font-size:13px}
.note{font-size:12px;color:#555}ul.verdict li{margin:4px 0}
figure{margin:10px 0}figcaption{font-size:12px;color:#555}figure svg{max-width:100%;height:auto}
.grid{display:flex;flex-wrap:wrap;gap:8px}
.mol{width:194px;border:3px solid #bbb;border-radius:6px;font-size:11px;overflow:hidden;background:#fff}
.mol.exact{border-color:#2a9d3f}.mol.substructure{border-color:#2b6cb0}.mol.miss{border-color:#c0392b}
.mol.unlabelled{border-style:dashed}.mol .cap{padding:3px 5px;word-break:break-all}
.mol code{font-size:9px;color:#444}.badge{font-weight:bold}
.mol.exact .badge{color:#2a9d3f}.mol.substructure .badge{color:#2b6cb0}.mol.miss .badge{color:#c0392b}
details{margin:4px 0;font-size:13px}pre{background:#f6f8fa;padding:6px;font-size:11px;overflow-x:auto}
"""


@dataclass
class ReportSummary:
    """What `write_report` wrote and what it could not show."""

    path: Path
    runs: int
    evaluated: int
    victims: int
    missing: list[str]

    def __str__(self) -> str:
        return str(self.path)


def _missing_sections(html_sections: dict[str, str]) -> list[str]:
    return [sid for sid, body in html_sections.items() if body.lstrip().startswith('<p class="missing">')]


def build_report(root: str | Path, *, private: str | Path | None = None, top_n: int = 24, max_grid_runs: int = 8,
                 command: str | None = None) -> tuple[str, AuditData, list[str]]:
    """Render the report of `root` as one HTML string; returns (html, the data read, sections with nothing).

    Args:
        root: a run directory, a benchmark directory or a folder of them.
        private: the private set, read only when given (to label pools the evaluation did not label).
        top_n: molecules drawn per run in the grid.
        max_grid_runs: most runs drawn in the grid.
        command: the command line recorded in the provenance section (default: this process's).
    """
    t0 = time.perf_counter()
    data = discover(root)
    if private is not None:
        label_with_private(data, private)
    bodies = {
        "summary": _headline(data),
        "tables": _tables(data),
        "attribution": _attribution(data),
        "precision": _precision(data),
        "alpha": _alpha(data),
        "roc": _roc(data),
        "learning-curve": _learning_curve(data),
        "molecules": _molecules(data, top_n, max_grid_runs),
        "provenance": _provenance(data, command),
    }
    missing = _missing_sections(bodies)
    victims = sorted({r.victim for r in data.runs if r.victim != "none"})
    intro = (f"{len(data.runs)} run(s), {sum(r.evaluated for r in data.runs)} evaluated; victims: "
             f"{', '.join(victims) or 'none'}; {len(data.tables)} benchmark table(s).")
    if data.private:
        intro += f" The private set {data.private['path']} was read by this report to label molecules (--private)."
    nav = "".join(f'<a href="#{sid}">{_esc(title)}</a>' for sid, title in SECTIONS)
    sections = "\n".join(f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{bodies[sid]}\n</section>'
                         for sid, title in SECTIONS)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>molleak audit report: {_esc(data.root.name)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>molleak audit report</h1><p>{_esc(data.root.resolve())}</p><p>{_esc(intro)}</p></header>"
            f"<nav>{nav}</nav><main>\n{sections}\n</main></body></html>\n")
    log.info("report of %s rendered in %.1f s (%d runs; sections with nothing to show: %s)", root,
             time.perf_counter() - t0, len(data.runs), ", ".join(missing) or "none")
    return page, data, missing


def write_report(root: str | Path, out: str | Path | None = None, *, private: str | Path | None = None,
                 top_n: int = 24, max_grid_runs: int = 8, command: str | None = None) -> ReportSummary:
    """Render the report of `root` and write it atomically to `out` (default `root/report.html`)."""
    out_path = Path(out) if out is not None else Path(root) / "report.html"
    if out_path.is_dir():
        raise MolleakError(f"report: --out {out_path} is a directory; give a file name such as report.html")
    page, data, missing = build_report(root, private=private, top_n=top_n, max_grid_runs=max_grid_runs,
                                       command=command if command is not None else " ".join(sys.argv))
    write_atomic(out_path, page)
    return ReportSummary(out_path, len(data.runs), sum(r.evaluated for r in data.runs),
                         len({r.victim for r in data.runs if r.victim != "none"}), missing)


__all__ = ["SECTIONS", "SECTION_IDS", "AuditData", "ReportSummary", "RunData", "build_report", "discover",
           "load_run", "write_report"]
