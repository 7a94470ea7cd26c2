"""`molleak report DIR`: one self-contained HTML audit report of whatever runs DIR holds.

DIR may be one run directory (from `molleak extract`, evaluated or not), a benchmark directory
(cells that are run directories, plus `table.json` / `table.md`), or any folder holding such
directories (a demo or audit output). The report renders the subset that exists and says in words
what is missing; it never fails because a later pipeline step has not run.

Sections (stable ids, `SECTION_IDS`): `decision` (the first screen, for whoever decides whether
the model may be shared: the verdict with its power, the few numbers behind it, one plot, what to
do next; `molleak.report.decision`), `summary` (the headline table of `AuditSummary`: each
method's precision@K with the base rate and the controls beside it, and every verdict in full),
`tables` (every run with intervals; benchmark tables), `attribution` (P vs P' metrics, the
private-only test, membership), `precision`, `alpha` (the paper's Fig. 3), `roc` (log FPR),
`learning-curve` (the search's `curve.tsv`), `molecules` (the top extracted molecules, hits
marked) and `provenance` (configs, versions, seeds, hosts).

Ground truth comes only from files the evaluation wrote (`results.json`, `labels.tsv`); the
private set is read only when the caller passes it (`private=`), and the report then says so.
Figures and molecules are inline SVG, CSS inline: the file opens without a network.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from molleak import rundir
from molleak.errors import MolleakError
from molleak.report import figures
from molleak.report.decision import decision_section, verdict_label
from molleak.report.defences import defences_section
from molleak.report.load import AuditData, discover, label_with_private
from molleak.report.markup import esc, missing, scalar, table
from molleak.report.summary import AuditSummary, build_summary
from molleak.report.tables import attribution_section, tables_section
from molleak.rundir import KINDS, format_estimate
from molleak.runs import run_metadata, write_atomic

log = logging.getLogger(__name__)

SECTIONS: tuple[tuple[str, str], ...] = (
    ("decision", "Decision summary"),
    ("summary", "Headline table and verdicts"),
    ("tables", "Tables"),
    ("attribution", "Leakage attribution"),
    ("defences", "Defences: privacy against utility"),
    ("precision", "precision@K per victim"),
    ("alpha", "Learned alpha per victim"),
    ("roc", "ROC curves (log FPR)"),
    ("learning-curve", "Policy learning curve"),
    ("molecules", "Top extracted molecules"),
    ("provenance", "Provenance"),
)
SECTION_IDS = tuple(sid for sid, _ in SECTIONS)


def summary_section(summary: AuditSummary) -> str:
    parts = []
    if not summary.runs:
        parts.append(missing("No run directories found: only tables or attribution files (below)."))
    elif not summary.evaluated:
        parts.append(missing(
            f"None of the {summary.runs} run(s) has been evaluated (no results.json): precision, base rates "
            f"and AUC are unknown. Run `molleak evaluate RUN_DIR --private private.smi` on each run."))
    if summary.rows:
        ks, kmax = summary.ks, summary.kmax
        header = (["role", "victim", "method", "seeds"] + [f"P_sub@{k} [95% CI]" for k in ks]
                  + ["base rate (sub)", f"P_exact@{kmax}", "base rate (exact)", "AUC (sub)",
                     f"P_sub@{kmax} against P' (reference set)", f"best victim-free P_sub@{kmax} (same pool)",
                     f"P_sub@{kmax} interval above the base rate (not evidence of leakage by itself)"])

        def est(row, key: str) -> str:
            e = row.precision.get(key) if key.startswith("precision_") else row.auc
            text = format_estimate(e)
            return text + (f" (mean of {row.seeds}; range)" if row.seeds > 1 and e.value is not None else "")

        rows = []
        for row in summary.rows:
            above = ("-" if row.above_base_rate is None else "yes" if row.above_base_rate
                     else "no (interval reaches the base rate)")
            rows.append([row.role_label, row.victim, row.label, str(row.seeds)]
                        + [est(row, rundir.precision_key(KINDS[0], k)) for k in ks]
                        + [scalar(row.base_rate[KINDS[0]]), est(row, rundir.precision_key(KINDS[1], kmax)),
                           scalar(row.base_rate[KINDS[1]]), est(row, "auc"),
                           scalar(row.reference_bank_precision) if row.reference_bank_precision is not None
                           else "n/a (no --bank reference=...)",
                           scalar(row.prior_precision) if row.prior_precision is not None
                           else "n/a (no prior on this pool)", above])
        parts.append(table(header, rows, "headline"))
        if summary.controls_missing:
            parts.append(missing(
                "Controls not present in this directory: " + ", ".join(summary.controls_missing) + ". Without "
                "them a precision cannot be attributed to the victim: the base rate and the data distribution "
                "alone explain much of it (method.md section 10)."))
    parts.append("<h3>Leakage verdicts in full</h3>")
    if summary.verdicts:
        parts.append("<ul class='verdict'>" + "".join(
            f"<li><b>{esc(verdict_label(v))}</b>: {esc(v.text)} <span class='note'>(read from {esc(v.source)})</span></li>"
            for v in summary.verdicts) + "</ul>")
    else:
        parts.append(missing(
            "Leakage was not tested: no attribution results (reference victim, private-only test, membership) "
            "were found. precision@K alone cannot show leakage; it mostly measures how common a fragment is."))
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


def molecules_section(data: AuditData, top_n: int, max_runs: int) -> str:
    runs = sorted((r for r in data.runs if r.topk is not None and r.topk.smiles), key=lambda r: (r.is_control, r.name))
    if not runs:
        return missing("No run has a topk.tsv: nothing was extracted yet.")
    parts = []
    for run in runs[:max_runs]:
        labelled = bool(run.label_by_smiles)
        cards = []
        for rank, (s, score) in enumerate(zip(run.topk.smiles[:top_n], run.topk.scores, strict=False), start=1):
            marks = run.label_by_smiles.get(s, {})
            if not labelled or not marks:
                cls, badge = "unlabelled", "not labelled"
            elif marks.get("exact"):
                cls, badge = "exact", "exact hit"
            elif marks.get("substructure"):
                cls, badge = "substructure", "substructure hit"
            else:
                cls, badge = "miss", "miss"
            svg = _molecule_svg(s) or f"<div class='nodraw'>cannot draw {esc(s)}</div>"
            cards.append(f"<div class='mol {cls}' title='{esc(s)}'>{svg}<div class='cap'>#{rank} score "
                         f"{esc(scalar(score))}<br><span class='badge'>{badge}</span><br><code>{esc(s)}</code>"
                         f"</div></div>")
        source = (f"Hits from {run.labels_source}." if labelled else
                  "No per-molecule labels were written for this run, so hits are not marked "
                  "(pass --private to label here).")
        parts.append(f"<h3>{esc(run.label)} on victim {esc(run.victim)} [{esc(run.role_label)}] ({esc(run.name)})"
                     f"</h3><p class='note'>Top {len(cards)} of {len(run.topk.smiles)}. {esc(source)}</p>"
                     f"<div class='grid'>{''.join(cards)}</div>")
    if len(runs) > max_runs:
        parts.append(missing(f"{len(runs) - max_runs} more run(s) with a top-K are not drawn (see the tables)."))
    return "\n".join(parts)


def provenance_section(data: AuditData, command: str | None) -> str:
    meta = run_metadata(command)
    rows = [["report generated", meta["time"]], ["host", meta["host"]], ["platform", meta["platform"]],
            ["command", meta["command"]], ["directory", str(data.root.resolve())]]
    rows += [[f"version {k}", v] for k, v in meta["versions"].items()]
    if data.private:
        rows.append(["private set read by the report",
                     f"{data.private['path']} ({data.private['n']} molecules, sha256 {data.private['sha256'][:16]}...)"])
    else:
        rows.append(["private set read by the report", "no (labels only from the evaluation's files)"])
    parts = ["<h3>This report</h3>", table(["item", "value"], rows, "prov")]
    if data.notes:
        parts.append("<h3>Problems reading files</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in data.notes)
                     + "</ul>")
    for run in data.runs:
        versions = run.metadata.get("versions", {})
        vtext = ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else ""
        head = (f"{esc(run.name)}: {esc(run.label)}, victim {esc(run.victim)} [{esc(run.role_label)}], "
                f"seed {run.seed}, host {esc(run.metadata.get('host', '-'))}, {esc(run.metadata.get('time', ''))}")
        body = [f"<p><b>versions</b>: {esc(vtext or '- (no metadata.json)')}</p>",
                f"<p><b>command</b>: <code>{esc(run.metadata.get('command', '-'))}</code></p>",
                f"<pre>{esc(json.dumps(run.config.model_dump(mode='json'), indent=2, default=str))}</pre>"]
        if run.problems:
            body.append("<ul>" + "".join(f"<li class='missing'>{esc(p)}</li>" for p in run.problems) + "</ul>")
        parts.append(f"<details><summary>{head}</summary>{''.join(body)}</details>")
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
div.decision{border-left:6px solid #888;background:#f4f4f4;padding:4px 14px;font-size:16px;max-width:70em}
div.decision.detected{border-color:#c0392b;background:#fdecea}
div.decision.not-detected{border-color:#b7950b;background:#fef9e7}
.outcome{font-weight:bold}.outcome.detected{color:#c0392b}.outcome.not-detected{color:#7d6608}
ol.next li{margin:4px 0;font-size:14px;max-width:70em}
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


def build_report(root: str | os.PathLike, *, private: str | os.PathLike | None = None, top_n: int = 24,
                 max_grid_runs: int = 8, command: str | None = None) -> tuple[str, AuditData, list[str]]:
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
    summary = build_summary(data)
    bodies = {
        "decision": decision_section(summary, data),
        "summary": summary_section(summary),
        "tables": tables_section(data, summary.ks),
        "attribution": attribution_section(data),
        "defences": defences_section(data.defences),
        "precision": figures.precision_section(data),
        "alpha": figures.alpha_section(data),
        "roc": figures.roc_section(data),
        "learning-curve": figures.learning_curve_section(data),
        "molecules": molecules_section(data, top_n, max_grid_runs),
        "provenance": provenance_section(data, command),
    }
    empty = [sid for sid, body in bodies.items() if body.lstrip().startswith('<p class="missing">')]
    intro = (f"{summary.runs} run(s), {summary.evaluated} evaluated; victims: {', '.join(summary.victims) or 'none'}; "
             f"{summary.tables} benchmark table(s).")
    if data.private:
        intro += f" The private set {data.private['path']} was read by this report to label molecules (--private)."
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    sections = "\n".join(f'<section id="{sid}"><h2>{esc(title)}</h2>\n{bodies[sid]}\n</section>'
                         for sid, title in SECTIONS)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>molleak audit report: {esc(data.root.name)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>molleak audit report</h1><p>{esc(data.root.resolve())}</p><p>{esc(intro)}</p></header>"
            f"<nav>{nav}</nav><main>\n{sections}\n</main></body></html>\n")
    log.info("report of %s rendered in %.1f s (%d runs; sections with nothing to show: %s)", root,
             time.perf_counter() - t0, len(data.runs), ", ".join(empty) or "none")
    return page, data, empty


def write_report(root: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 private: str | os.PathLike | None = None, top_n: int = 24, max_grid_runs: int = 8,
                 command: str | None = None) -> ReportSummary:
    """Render the report of `root` and write it atomically to `out` (default `root/report.html`)."""
    out_path = Path(out) if out is not None else Path(root) / "report.html"
    if out_path.is_dir():
        raise MolleakError(f"report: --out {out_path} is a directory; give a file name such as report.html")
    page, data, empty = build_report(root, private=private, top_n=top_n, max_grid_runs=max_grid_runs,
                                     command=command if command is not None else " ".join(sys.argv))
    write_atomic(out_path, page)
    return ReportSummary(out_path, len(data.runs), sum(r.evaluated for r in data.runs),
                         len({r.victim for r in data.runs if r.victim != "none"}), empty)
