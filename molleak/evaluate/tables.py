"""Markdown tables of the leakage experiments (`molleak leakage canary / sweep / table`), from their JSON.

Each function takes what `molleak.plans.leakage` wrote (`canary.json`, `sweep.json`, an audit
directory's `attribution.json` + `leakage.json`) and returns the table's lines; the verbs print them.

- `canary_membership_table`: per (repetitions, epochs) cell and group (canaries, ordinary private
  members), the victim-only membership AUC first, then reference / calibrated AUC and calibrated
  TPR at 1% FPR, each test with its one-sided p and Holm-adjusted p.
- `sweep_table`: per (private-set size, epochs) cell, the same columns.
- `canary_table`: the canaries' victim-only membership AUC and, for canaries drawn from a candidate
  pool, their recovery by the extraction attack (BENCHMARKS.md, canary recovery).
- `attribution_table`: one row pair per audited victim (victim and reference victim ranking the
  same pool against P and P'), then a verdict line per victim (BENCHMARKS.md, leakage attribution).

The grid tables (canary, sweep) mark in bold the Holm-adjusted p of the tests that survive at
alpha 0.05 across the grid's cells (`molleak.evaluate.grid`); a table read from a run made before
p-values were recorded shows `-` there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from molleak.errors import InputFileError
from molleak.evaluate.verdicts import ALPHA, decision, format_p

ROWS = ("victim", "reference", "victim-minus-reference")


def _ci(e: dict, sign: bool = False) -> str:
    f = "+.3f" if sign else ".3f"
    return f"{e['value']:{f}} [{e['lo']:{f}}, {e['hi']:{f}}]"


def _auc_cells(rows: dict) -> str:
    """victim-only AUC | its p / Holm p | reference AUC (null) | calibrated AUC | its p / Holm p."""
    return " | ".join([_ci(rows["victim"]["auc"]), _p(rows["victim"]), _ci(rows["reference"]["auc"]),
                       _ci(rows["victim-minus-reference"]["auc"]), _p(rows["victim-minus-reference"])])


def _p(block: dict) -> str:
    """`p / Holm p` of a test block, the Holm p in bold when it survives at alpha; `-` where not recorded."""
    raw, adj = block.get("p_value"), block.get("p_holm")
    if not isinstance(raw, int | float):
        return "-"
    if not isinstance(adj, int | float):
        return f"{format_p(raw)} / -"
    held = f"**{format_p(adj)}**" if block.get("survives_holm") else format_p(adj)
    return f"{format_p(raw)} / {held}"


def _holm_note(res: dict[str, Any]) -> list[str]:
    holm = res.get("holm")
    if not holm:
        return ["", "(made before p-values were recorded: no Holm correction; rerun to get one)"]
    counts = "; ".join(f"{name}: {h['survivors']} of {h['m']}" for name, h in holm.items())
    return ["", f"p / Holm p: one-sided p (Mann-Whitney for AUCs, paired bootstrap for differences) and the same "
                f"p Holm-adjusted across the grid's cells, per test; bold = survives at alpha {ALPHA}. "
                f"Surviving cells: {counts}."]


def _run_note(load: float | None, seconds: float | None) -> str:
    parts = []
    if load is not None:
        parts.append(f"load {load:.1f}")
    if seconds is not None:
        parts.append(f"{seconds:.0f} s")
    return "; " + "; ".join(parts) if parts else ""


def _gin(res: dict) -> str:
    enc = res.get("encoder_config") or {}
    return f"{res['strategy']} {enc.get('num_layers', '?')}x{enc.get('emb_dim', '?')} GIN"


def canary_membership_table(res: dict[str, Any], *, load: float | None = None,
                            seconds: float | None = None) -> list[str]:
    """The canary grid's membership table (`canary.json`): canaries and ordinary members per cell."""
    lines = [f"# canary control: {_gin(res)}, {res['n_private']} private + {res['n_canaries']} canaries x r, "
             f"seed {res['seed']}{_run_note(load, seconds)}; victim-only test first (canaries vs unplanted "
             "non-members), reference contrast second",
             "| r | epochs | group | victim AUC (victim-only) | p / Holm p | reference AUC (null) | calibrated AUC | "
             "p / Holm p | calibrated TPR@1%FPR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in res["cells"]:
        for group in ("canaries", "private_members"):
            rows = c[group]["rows"]
            tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
            lines.append(f"| {c['repeats']} | {c['epochs']} | {group} | {_auc_cells(rows)} | {tpr['value']:.2f} |")
    return lines + _holm_note(res)


def sweep_table(res: dict[str, Any], *, load: float | None = None, seconds: float | None = None) -> list[str]:
    """The memorisation sweep's table (`sweep.json`): one row per (size, epochs) cell."""
    members = sorted({c["membership"]["n_members"] for c in res["cells"]})
    lines = [f"# sweep: {_gin(res)}, `{res['statistic']}` statistic, {'/'.join(map(str, members))} members vs "
             f"as many holdout, seed {res['seed']}{_run_note(load, seconds)} (cells computed earlier are read "
             "back; `cell s` is when each was made)",
             "| N | epochs | victim AUC (victim-only) | p / Holm p | reference AUC (null) | calibrated AUC | "
             "p / Holm p | calibrated TPR@1%FPR | cell s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in res["cells"]:
        rows = c["membership"]["rows"]
        tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
        lines.append(f"| {c['size']} | {c['epochs']} | {_auc_cells(rows)} | {tpr['value']:.3f} | "
                     f"{c['seconds']:.0f} |")
    return lines + _holm_note(res)


def canary_table(res: dict[str, Any]) -> list[str]:
    """Per (repetitions, epochs): the canaries' victim-only membership AUC and, with a canary pool, their recovery.

    Recovery, victim-only first: the canary-vs-decoy AUC of the attack's score through the victim
    (trained with the canaries; the decoys are unplanted), with its p / Holm p; then the reference
    contrast: the same AUC through the reference victim (which saw neither) and the paired-bootstrap
    difference with its p / Holm p; canaries and decoys in the victim's top-50 / top-200, and their
    mean exposure.
    """
    cells = sorted(res["cells"], key=lambda c: (c["repeats"], c["epochs"]))
    extraction = bool(cells) and all("extraction" in c for c in cells)
    lines = [f"{res['strategy']} {res['encoder_config']}, {res['n_private']} private + {res['n_canaries']} canaries "
             f"from {res.get('canary_source', 'holdout')}, statistic {res['statistic']}, seed {res['seed']}"]
    if res.get("protocol", 1) < 2:
        lines.append("(an older run: its reference victim trained on the decoys, which inflates every difference)")
    head = "| r | epochs | membership AUC victim-only | p / Holm p |"
    rule = "|---|---|---|---|"
    if extraction:
        attack = cells[0]["extraction"]["attack"]
        head += (f" {attack}: canary-vs-decoy AUC victim-only | p / Holm p | reference | difference | p / Holm p | "
                 "victim top-50 / top-200: canaries (decoys) | mean exposure canaries / decoys |")
        rule += "---|---|---|---|---|---|---|"
    lines += [head + " cell s |", rule + "---|"]
    for c in cells:
        victim = c["canaries"]["rows"]["victim"]
        row = f"| {c['repeats']} | {c['epochs']} | {_ci(victim['auc'])} | {_p(victim)} |"
        if extraction:
            e = c["extraction"]
            d = e["canary_vs_decoy"]
            only = e.get("victim_only") or {"auc": d["victim"]}
            can, dec = e["victim"]["canaries"], e["victim"]["decoys"]
            row += (f" {_ci(only['auc'])} | {_p(only)} | {_ci(d['reference'])} | {_ci(d['difference'], sign=True)} | "
                    f"{_p(d)} | {can['in_top50']} / {can['in_top200']} ({dec['in_top50']} / {dec['in_top200']}) | "
                    f"{can['mean_exposure']:.2f} / {dec['mean_exposure']:.2f} |")
        lines.append(row + f" {c['seconds']:.0f} |")
    if extraction:
        e = cells[0]["extraction"]
        lines += ["", f"Pool: {e['pool_molecules']} molecules; {e['n_canaries']} canaries, {e['n_decoys']} decoys; "
                      "exposure = log2(pool size / rank), 1.44 expected at random."]
    return lines + _holm_note(res)


def _precisions(block: dict) -> str:
    p = block["precision_at_k"]
    return " / ".join(f"{p[k]['value']:.2f}" for k in ("50", "100", "200") if k in p)


def attribution_table(dirs: list[str | Path]) -> list[str]:
    """One Markdown table over audit directories (`molleak leakage audit ... --victim-run ... --reference-run`).

    A victim's name is its directory's name after the last underscore (`leak_graphcl` -> graphcl).
    Directories missing `attribution.json` or `leakage.json` get a `not run` row.
    """
    lines = ["| victim | scored by | P_sub@50 / 100 / 200 | AUC vs P | AUC vs P' | private-only AUC | "
             "private-only difference (victim - reference) | membership AUC victim-only | membership AUC calibrated | "
             "membership AUC of the reference (null) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    base = None
    for d in map(Path, dirs):
        name = d.name.rsplit("_", 1)[-1]
        missing = [f for f in ("attribution.json", "leakage.json") if not (d / f).is_file()]
        if missing:
            lines.append(f"| {name} | (not run: {', '.join(missing)} missing) | | | | | | | | |")
            continue
        att = json.loads((d / "attribution.json").read_text())["substructure"]
        mem = json.loads((d / "leakage.json").read_text())["membership"]
        rows = mem["rows"]
        diff = att["private_only"]
        base = att["victim"]["private"]["base_rate"]["value"]
        for role in ("victim", "reference"):
            block = att[role]
            extra = (["", "", "", ""] if role == "reference" else
                     [_ci(diff["difference"], sign=True), _ci(rows["victim"]["auc"]),
                      _ci(rows["victim-minus-reference"]["auc"]), _ci(rows["reference"]["auc"])])
            lines.append(f"| {name} | {'victim' if role == 'victim' else 'reference victim'} | "
                         f"{_precisions(block['private'])} | {_ci(block['private']['auc'])} | "
                         f"{_ci(block['reference']['auc'])} | {_ci(block['private_only_auc'])} | "
                         + " | ".join(extra) + " |")
        victim = rows["victim"]
        lo = victim["auc"].get("lo")
        verdicts.append(f"- {name}: private-only test (difference {_ci(diff['difference'], sign=True)}, "
                        f"{diff['n_private_only']} P-only vs {diff['n_reference_only']} P'-only candidates): "
                        f"{decision(diff.get('p_value'), fallback_detected=bool(diff.get('significant')))}; "
                        f"membership, victim-only ({mem['statistic']}, {mem['n_members']} vs {mem['n_nonmembers']}: "
                        f"AUC {_ci(victim['auc'])}): "
                        f"{decision(victim.get('p_value'), fallback_detected=lo is not None and lo > 0.5)}")
    if base is not None:
        lines += ["", f"Substructure base rate of the pool against P: {base:.3f}.", ""]
    return lines + verdicts


def read_canary_json(path: str | Path) -> dict[str, Any]:
    """`canary.json` from a `molleak leakage canary` directory, or the file itself."""
    path = Path(path)
    file = path / "canary.json" if path.is_dir() else path
    if not file.is_file():
        raise InputFileError(f"{path}: no canary.json (a `molleak leakage canary` output directory or its canary.json)")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{file} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
