"""The table sections of the report: every run with its intervals, bench tables, attribution results.

Cells with an interval are written by `molleak.rundir.format_estimate`, the one formatter of a
value with its interval.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from molleak import rundir
from molleak.report.load import AuditData
from molleak.report.markup import esc, missing, scalar, table
from molleak.report.summary import SHADOW_MEMBERSHIP
from molleak.rundir import KINDS, format_estimate


def is_estimate(obj: Any) -> bool:
    """An attribution Estimate `{value, lo, hi}` or a bench summary `{mean, ci95, n}`."""
    if not isinstance(obj, dict):
        return False
    value = obj.get("value", obj.get("mean"))
    return isinstance(value, int | float) and not isinstance(value, bool)


def estimate_text(obj: Any) -> str:
    """An estimate, with the number of seeds when a bench summary gives it."""
    text = format_estimate(obj)
    return text + (f" (n={obj['n']})" if isinstance(obj, dict) and isinstance(obj.get("n"), int) else "")


def _cell(x: Any) -> str:
    if is_estimate(x):
        return esc(estimate_text(x))
    if isinstance(x, dict | list):
        return f"<code>{esc(json.dumps(x, default=str)[:300])}</code>"
    return esc(scalar(x))


def walk_items(obj: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted key, value) of every nested entry, for display; an estimate is one entry."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            yield key, v
            if not is_estimate(v):
                yield from walk_items(v, key)


def _first_with_prefix(results: rundir.Results | None, prefix: str) -> Any:
    extra = (results.model_extra or {}) if results is not None else {}
    return next((v for k, v in extra.items() if k.startswith(prefix) and k[len(prefix):].isdigit()), None)


def runs_table(data: AuditData, ks: list[int]) -> str:
    if not data.runs:
        return missing("No run directories found.")
    header = (["run", "role", "victim", "method", "seed", "K"]
              + [f"P_{kind[:3]}@{k} [95% CI]" for kind in KINDS for k in ks]
              + ["base sub", "base exact", "AUC", "TPR@1%FPR", "TPR@0.1%FPR", "FCD (core)", "FCD (random)",
                 "queries", "s score", "s total"])
    plain = (*(rundir.base_rate_key(kind) for kind in KINDS), rundir.auc_key(KINDS[0]), rundir.tpr_key("1%"),
             rundir.tpr_key("0.1%"))
    rows = []
    for run in data.runs:
        res, ext = run.results, run.extract
        precisions = [format_estimate(res.estimate(rundir.precision_key(kind, k))) if res is not None else "-"
                      for kind in KINDS for k in ks]
        queries = res.value(rundir.QUERIES) if res is not None else None
        if queries is None and ext is not None:
            queries = ext.queries
        rows.append([run.name, run.role_label, run.victim, run.label, str(run.seed), str(run.k), *precisions]
                    + [scalar(run.metric(key)) for key in plain]
                    + [scalar(_first_with_prefix(res, "fcd_core@"), 2), scalar(_first_with_prefix(res, "fcd_random@"), 2),
                       scalar(queries), scalar(ext.seconds_score if ext is not None else None, 1),
                       scalar(ext.seconds_total if ext is not None else None, 1)])
    parts = ["<h3>Runs</h3>", table(header, rows, "runs")]
    unevaluated = [run.name for run in data.runs if not run.evaluated]
    if unevaluated:
        parts.append(missing(f"Not evaluated (no results.json, metrics shown as -): {', '.join(unevaluated)}."))
    return "\n".join(parts)


def _bench_table_html(parsed: Any) -> str | None:
    """A bench table.json as HTML: a list of row objects, or {"rows": [...], "columns": [...]}."""
    rows_obj, columns = None, None
    if isinstance(parsed, list):
        rows_obj = parsed
    elif isinstance(parsed, dict):
        rows_obj = next((parsed[key] for key in ("rows", "table", "cells") if isinstance(parsed.get(key), list)), None)
        if rows_obj is None and parsed and all(isinstance(v, dict) for v in parsed.values()):
            rows_obj = [{"row": k, **v} for k, v in parsed.items()]
        if isinstance(parsed.get("columns"), list):
            columns = [str(c) for c in parsed["columns"]]
    if not rows_obj or not all(isinstance(r, dict) for r in rows_obj):
        return None
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows_obj for k in r))
    return table(columns, [[_cell(r.get(c)) for c in columns] for r in rows_obj], "bench", raw=True)


def _markdown_table_html(text: str) -> str | None:
    """Pipe tables of a table.md as HTML (other lines as paragraphs)."""
    out, block = [], []

    def flush() -> None:
        if len(block) >= 2:
            cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
            body = [r for r in cells[1:] if not all(re.fullmatch(r":?-{2,}:?", c) for c in r)]
            out.append(table(cells[0], body, "bench"))
        block.clear()

    for line in text.splitlines():
        if line.strip().startswith("|"):
            block.append(line)
            continue
        flush()
        stripped = line.strip()
        if stripped.startswith("#"):
            out.append(f"<h4>{esc(stripped.lstrip('#').strip())}</h4>")
        elif stripped:
            out.append(f"<p>{esc(stripped)}</p>")
    flush()
    return "\n".join(out) if out else None


def tables_section(data: AuditData, ks: list[int]) -> str:
    parts = [runs_table(data, ks)]
    if not data.tables:
        parts.append(missing("No benchmark tables (table.json / table.md from `molleak bench`) in this directory."))
    for rel, parsed, md in data.tables:
        where = data.root.resolve().name if rel == "." else rel
        parts.append(f"<h3>Benchmark table: {esc(where)}/{'table.md' if md else 'table.json'}</h3>")
        # table.md is the aggregator's own rendering (base rates and controls beside each number)
        rendered = _markdown_table_html(md) if md else None
        if rendered is None and parsed is not None:
            rendered = _bench_table_html(parsed)
        parts.append(rendered or missing(f"{rel}: table.json / table.md present but in no format this report reads."))
    return "\n".join(parts)


_MEMBERSHIP_HEADER = ["score", "AUC [95% CI]", "TPR@1%FPR", "TPR@0.1%FPR", "members", "non-members"]


def _membership_rows(block: dict[str, Any]) -> list[list[str]]:
    """Rows of a membership audit ({"rows": {score name: membership_metrics}}): AUC and TPR at low FPR."""
    rows = []
    for name, m in block.get("rows", {}).items():
        if not isinstance(m, dict):
            continue
        tprs = m.get("tpr_at_fpr") if isinstance(m.get("tpr_at_fpr"), dict) else {}
        tpr = {float(k): v for k, v in tprs.items() if re.fullmatch(r"[0-9.eE-]+", str(k))}
        rows.append([name, format_estimate(m.get("auc")), format_estimate(tpr.get(0.01)),
                     format_estimate(tpr.get(0.001)), scalar(m.get("n_members")), scalar(m.get("n_nonmembers"))])
    return rows


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
                row[key] = scalar(value)
        header.extend(k for k in row if k not in header)
        rows.append(row)
    return table(header, [[r.get(h, "") for h in header] for r in rows], "attribution")


def attribution_section(data: AuditData) -> str:
    sources = [(r.name, r.attribution) for r in data.runs if r.attribution] + data.attribution_files
    if not sources:
        return missing(
            "No leakage-attribution results (precision and AUC against P and P' labels, the private-only test "
            "and its paired-bootstrap difference, membership AUC/TPR for victim and reference, canaries) "
            "were found (`molleak leakage`, `molleak evaluate` with the reference set).")
    parts = []
    for src, obj in sources:
        parts.append(f"<h3>{esc(src)}</h3>")
        done = set()
        for key, value in obj.items():
            if isinstance(value, dict) and isinstance(value.get("rows"), dict):
                stat = f", statistic <code>{esc(value['statistic'])}</code>" if value.get("statistic") else ""
                parts.append(f"<p><b>{esc(key)}</b> (whole-molecule membership{stat}, members vs non-members)</p>")
                parts.append(table(_MEMBERSHIP_HEADER, _membership_rows(value), "attribution"))
                if isinstance(value.get("verdict"), str):
                    parts.append(f"<p class='note'>{esc(value['verdict'])}</p>")
                done.add(key)
            elif key == "cells" and isinstance(value, list):
                parts.append(_cells_table(value))
                done.add(key)
            elif key == SHADOW_MEMBERSHIP and isinstance(value, dict) and isinstance(value.get("best"), dict):
                parts.append(_shadow_table(value))
        rows = []
        for key, value in walk_items({k: v for k, v in obj.items() if k not in done}):
            if is_estimate(value):
                rows.append([key, estimate_text(value)])
            elif not isinstance(value, dict | list):
                rows.append([key, scalar(value)])
        if rows:
            # every quantity by its key: for the specialist, collapsed so that it does not bury the rest
            parts.append(f"<details class='raw'><summary>All {len(rows)} quantities of {esc(src)} by their keys "
                         f"(raw)</summary>{table(['quantity', 'value [95% CI]'], rows, 'attribution')}</details>")
    return "\n".join(parts)


_SHADOW_HEADER = ["access", "statistic", "attack", "AUC [95% CI]", "TPR@1%FPR", "TPR@0.1%FPR", "p (Holm)", "decision"]


def _p_text(p: Any) -> str:
    return f"{p:.3g}" if isinstance(p, int | float) and not isinstance(p, bool) else "-"


def _shadow_table(block: dict[str, Any]) -> str:
    """The audit's shadow-model membership block: the strongest row per access level and its verdict."""
    rows = []
    for access, r in block["best"].items():
        if not isinstance(r, dict):
            continue
        tpr = r.get("tpr_at_fpr") if isinstance(r.get("tpr_at_fpr"), dict) else {}
        rows.append([access, scalar(r.get("statistic")), scalar(r.get("attack")), format_estimate(r.get("auc")),
                     format_estimate(tpr.get("0.01")), format_estimate(tpr.get("0.001")), _p_text(r.get("p_holm")),
                     "-" if r.get("detected") is None else "detected" if r["detected"] else "not detected"])
    verdict = f"<p class='note'>{esc(block['verdict'])}</p>" if isinstance(block.get("verdict"), str) else ""
    return ("<p><b>Shadow-model membership</b> (LiRA/RMIA; the strongest attack per access level, Holm-adjusted "
            "over all rows)</p>" + table(_SHADOW_HEADER, rows, "attribution") + verdict)
