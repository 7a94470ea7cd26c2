"""Aggregate a bench directory's cells into `table.json` and `table.md`: the mean over seeds with its spread.

For every row of every suite in `plan.json` and every column (`attack`, `reference`, `untrained`,
`prior`), each metric of `METRICS` is collected from the column's cells (one per seed, from their
`results.json`) and summarised by `summarize`: the mean, the range [min, max] and n, and, from
`MIN_SEEDS_FOR_INTERVAL` (5) seeds on, a 95% interval: the 2.5% and 97.5% quantiles of the means
of `n_boot` resamples (with replacement) of the per-seed values, drawn with
`numpy.random.default_rng(seed)`. Below 5 seeds a bootstrap "interval" is only the spread of a
handful of values (over 2 seeds it is their min and max), so none is given: the tables print the
range labelled with n, e.g. `0.81 (range 0.78-0.84, n=2)` (`molleak.rundir.format_estimate`).

`table.md` shows, per table and per K, every precision next to its base rate and its control
columns, so no number stands alone; runtime tables (table3) show score and total seconds.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molleak import rundir
from molleak.errors import MolleakError
from molleak.runs import write_atomic, write_json_atomic

log = logging.getLogger(__name__)

K_LIST = rundir.K_LIST
KINDS = rundir.KINDS
COLUMNS = ("attack", "reference", "untrained", "prior")
COLUMN_TITLES = {"attack": "", "reference": "ref. victim", "untrained": "untrained", "prior": "prior_fp"}
#: seeds from which an interval over seeds is given (below: the range [min, max] labelled with n)
MIN_SEEDS_FOR_INTERVAL = 5
#: metrics summarised per column (FCD and the reference-bank precision are added per run's K below)
METRICS = (
    *(rundir.precision_key(kind, k) for kind in KINDS for k in K_LIST),
    *(rundir.base_rate_key(kind) for kind in KINDS),
    rundir.auc_key(KINDS[0]), rundir.auc_key(KINDS[1]), rundir.tpr_key("1%"), rundir.N_SCORED, rundir.QUERIES,
    rundir.SECONDS_SCORE, rundir.SECONDS_TOTAL,
)


def bootstrap_ci(values: Sequence[float], *, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean.

    Draws `rng.integers(0, n, size=(n_boot, n))` with `rng = numpy.random.default_rng(seed)`,
    takes each resample's mean and returns their `(1-level)/2` and `(1+level)/2` quantiles
    (numpy's default linear interpolation).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return (float(lo), float(hi))


def summarize(values: Sequence[float | None], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean, range and n of the finite values (None/NaN are left out and counted), and a 95%
    bootstrap interval (`ci95`) only from `MIN_SEEDS_FOR_INTERVAL` values on (None below)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    out: dict[str, Any] = {"n": len(finite), "missing": len(values) - len(finite), "values": finite}
    if finite:
        ci = (list(bootstrap_ci(finite, n_boot=n_boot, seed=seed)) if len(finite) >= MIN_SEEDS_FOR_INTERVAL
              else None)
        out.update(mean=float(np.mean(finite)), range=[min(finite), max(finite)], ci95=ci)
    else:
        out.update(mean=None, range=None, ci95=None)
    return out


def _metric(results: dict[str, Any], name: str) -> Any:
    """A metric of results.json; `banks.reference.X` reads a nested bank metric."""
    if name.startswith("banks."):
        _, bank, key = name.split(".", 2)
        return results.get("banks", {}).get(bank, {}).get(key)
    return results.get(name)


def _column_metrics(results: list[dict[str, Any]]) -> list[str]:
    names = list(METRICS)
    ks = sorted({int(r.get("k", 0)) for r in results if r.get("k")})
    for k in ks:
        names += [f"fcd_random@{k}", f"fcd_core@{k}"]
    if any("reference" in r.get("banks", {}) for r in results):
        names += [f"banks.reference.precision_{kind}@{k}" for kind in KINDS for k in K_LIST]
        names += [f"banks.reference.base_rate_{kind}" for kind in KINDS]
    return names


def summarize_column(cells_dir: Path, cell_ids: list[str], *, n_boot: int, seed: int) -> dict[str, Any]:
    """Every metric of one column over its cells (seeds), with what is missing and why."""
    results, skipped, pending = [], {}, []
    for cid in cell_ids:
        path = cells_dir / cid / rundir.RESULTS_FILE
        if path.is_file():
            results.append(rundir.read_json(path, "results"))
        elif (cells_dir / cid / rundir.SKIPPED_FILE).is_file():
            skipped[cid] = rundir.read_json(cells_dir / cid / rundir.SKIPPED_FILE, "skipped cell").get("reason", "")
        else:
            pending.append(cid)
    out: dict[str, Any] = {"cells": cell_ids, "done": len(results), "skipped": skipped, "pending": pending,
                           "metrics": {}}
    if results:
        out["metrics"] = {m: summarize([_metric(r, m) for r in results], n_boot=n_boot, seed=seed)
                          for m in _column_metrics(results)}
    return out


def aggregate(bench_dir: str | Path, *, n_boot: int = 1000, seed: int = 0, write: bool = True) -> dict[str, Any]:
    """Summarise every suite of `plan.json`; writes `table.json` and `table.md` into the bench directory.

    Args:
        bench_dir: a bench directory (`molleak.plans.bench.runner.run_bench`).
        n_boot: bootstrap resamples.
        seed: the bootstrap generator's seed (the same for every summary).
        write: write the two files.
    """
    bench = Path(bench_dir)
    plan_path = bench / "plan.json"
    if not plan_path.is_file():
        raise MolleakError(f"{bench} holds no plan.json (is it a bench directory? run `molleak bench` first)")
    plan = json.loads(plan_path.read_text())
    tables: dict[str, Any] = {}
    for suite, rows in plan.get("suites", {}).items():
        out_rows = []
        for row in rows:
            columns = {c: summarize_column(bench / "cells", col["cells"], n_boot=n_boot, seed=seed)
                       for c, col in row["columns"].items()}
            out_rows.append({"key": row["key"], "columns": columns})
        tables[suite] = {"rows": out_rows}
    result = {"bench_dir": str(bench), "n_boot": n_boot, "bootstrap_seed": seed, "level": 0.95,
              "min_seeds_for_interval": MIN_SEEDS_FOR_INTERVAL, "tables": tables}
    if write:
        write_json_atomic(bench / "table.json", result)
        write_atomic(bench / "table.md", render_markdown(result))
    return result


def fmt(summary: dict[str, Any] | None, digits: int = 2) -> str:
    """`mean [lo, hi] (n=N)` from 5 seeds on, `mean (range min-max, n=N)` below, `mean (n=1)` for one
    seed; `n/a` when nothing was measured."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    ci = summary.get("ci95") if summary["n"] >= MIN_SEEDS_FOR_INTERVAL else None
    spread = {"mean": summary["mean"], "ci95": ci, "range": summary.get("range") if summary["n"] > 1 else None}
    return rundir.format_estimate(spread, digits=digits, n=summary["n"])


def _cell_text(column: dict[str, Any] | None, metric: str, digits: int = 2) -> str:
    if column is None:
        return "-"
    if not column["done"]:
        return "skipped" if column["skipped"] else "pending"
    return fmt(column["metrics"].get(metric), digits)


def _seeds(row: dict[str, Any]) -> str:
    att = row["columns"].get("attack", {})
    return f"{att.get('done', 0)}/{len(att.get('cells', []))}"


def _precision_table(rows: list[dict[str, Any]], k: int) -> list[str]:
    keys = list(dict.fromkeys(key for r in rows for key in r["key"]))
    head = [*keys, "seeds"]
    for short in ("sub", "exact"):
        head += [f"P_{short}@{k}", f"base {short}"]
        head += [f"P_{short}@{k} {COLUMN_TITLES[c]}" for c in COLUMNS[1:]]
    head += ["ref. bank P_sub@" + str(k), "AUC"]
    if k == 200:
        head += ["FCD rand", "FCD core"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cols = r["columns"]
        att = cols.get("attack")
        cells = [str(r["key"].get(key, "")) for key in keys] + [_seeds(r)]
        for kind in KINDS:
            cells += [_cell_text(att, rundir.precision_key(kind, k)), _cell_text(att, rundir.base_rate_key(kind))]
            cells += [_cell_text(cols.get(c), rundir.precision_key(kind, k)) for c in COLUMNS[1:]]
        cells += [_cell_text(att, f"banks.reference.precision_substructure@{k}"), _cell_text(att, "auc")]
        if k == 200:
            fcd_keys = [m for m in (att or {}).get("metrics", {}) if m.startswith("fcd_")]
            rand = next((m for m in fcd_keys if m.startswith("fcd_random@")), "fcd_random@200")
            core = next((m for m in fcd_keys if m.startswith("fcd_core@")), "fcd_core@200")
            cells += [_cell_text(att, rand), _cell_text(att, core)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _runtime_table(rows: list[dict[str, Any]]) -> list[str]:
    keys = list(dict.fromkeys(key for r in rows for key in r["key"]))
    head = [*keys, "seeds", "molecules scored", "victim queries", "score s", "total s", "P_sub@200", "base sub"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        att = r["columns"].get("attack")
        cells = [str(r["key"].get(key, "")) for key in keys] + [_seeds(r)]
        cells += [_cell_text(att, "n_scored", 0), _cell_text(att, "queries", 0), _cell_text(att, "seconds_score", 1),
                  _cell_text(att, "seconds_total", 1), _cell_text(att, rundir.precision_key("substructure", 200)),
                  _cell_text(att, rundir.base_rate_key("substructure"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _skip_notes(rows: list[dict[str, Any]]) -> list[str]:
    reasons: dict[str, list[str]] = {}
    for r in rows:
        for col in r["columns"].values():
            for cid, why in col["skipped"].items():
                reasons.setdefault(why, []).append(cid)
    return [f"- skipped ({len(ids)} cells, e.g. `{ids[0]}`): {why}" for why, ids in reasons.items()]


def render_markdown(result: dict[str, Any]) -> str:
    """The tables as Markdown: per table, one precision table per K (or the runtime table)."""
    lines = [
        "# Benchmark tables",
        "",
        f"Mean over seeds: with a 95% percentile-bootstrap interval over seeds ({result['n_boot']} resamples, "
        f"seed {result['bootstrap_seed']}) from {MIN_SEEDS_FOR_INTERVAL} seeds on, with the range (min-max) "
        "labelled with n below that (an interval from fewer seeds would only restate their spread). "
        "`base` = the precision a random "
        "ranking of the same molecules has in expectation; `ref. victim` / `untrained` = the same method "
        "through the victim's reference victim (trained on the disjoint reference set) and its untrained "
        "encoder; `prior_fp` = the victim-free fingerprint prior ranking the same pool; `ref. bank` = "
        "precision of this ranking against the reference set P' instead of the private set. FCD at the "
        "run's K (rand: against random private subsamples; core: against private molecules holding a "
        "top-K core).",
        "",
    ]
    for name, table in result["tables"].items():
        rows = table["rows"]
        lines += [f"## {name}", ""]
        if name == "table3":
            lines += _runtime_table(rows) + [""]
        else:
            for k in K_LIST:
                lines += [f"### K = {k}", ""] + _precision_table(rows, k) + [""]
        notes = _skip_notes(rows)
        if notes:
            lines += notes + [""]
    return "\n".join(lines)
