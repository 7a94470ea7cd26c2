"""Markdown tables of the leakage experiments (`molleak leakage canary / sweep / table`), from their JSON.

Each function takes what `molleak.plans.leakage` wrote (`canary.json`, `sweep.json`, an audit
directory's `attribution.json` + `leakage.json`) and returns the table's lines; the verbs print them.

- `canary_membership_table`: per (repetitions, epochs) cell and group (canaries, ordinary private
  members), victim / reference / calibrated membership AUC and calibrated TPR at 1% FPR.
- `sweep_table`: per (private-set size, epochs) cell, the same columns.
- `canary_table`: the canaries' calibrated membership AUC and, for canaries drawn from a candidate
  pool, their recovery by the extraction attack (BENCHMARKS.md, canary recovery).
- `attribution_table`: one row pair per audited victim (victim and reference victim ranking the
  same pool against P and P'), then a verdict line per victim (BENCHMARKS.md, leakage attribution).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from molleak.errors import InputFileError

ROWS = ("victim", "reference", "victim-minus-reference")


def _ci(e: dict, sign: bool = False) -> str:
    f = "+.3f" if sign else ".3f"
    return f"{e['value']:{f}} [{e['lo']:{f}}, {e['hi']:{f}}]"


def _auc_cells(rows: dict) -> str:
    return " | ".join(_ci(rows[k]["auc"]) for k in ROWS)


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
             f"seed {res['seed']}{_run_note(load, seconds)}",
             "| r | epochs | group | victim AUC | reference AUC (null) | calibrated AUC | calibrated TPR@1%FPR |",
             "|---|---|---|---|---|---|---|"]
    for c in res["cells"]:
        for group in ("canaries", "private_members"):
            rows = c[group]["rows"]
            tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
            lines.append(f"| {c['repeats']} | {c['epochs']} | {group} | {_auc_cells(rows)} | {tpr['value']:.2f} |")
    return lines


def sweep_table(res: dict[str, Any], *, load: float | None = None, seconds: float | None = None) -> list[str]:
    """The memorisation sweep's table (`sweep.json`): one row per (size, epochs) cell."""
    members = sorted({c["membership"]["n_members"] for c in res["cells"]})
    lines = [f"# sweep: {_gin(res)}, `{res['statistic']}` statistic, {'/'.join(map(str, members))} members vs "
             f"as many holdout, seed {res['seed']}{_run_note(load, seconds)} (cells computed earlier are read "
             "back; `cell s` is when each was made)",
             "| N | epochs | victim AUC | reference AUC (null) | calibrated AUC | calibrated TPR@1%FPR | cell s |",
             "|---|---|---|---|---|---|---|"]
    for c in res["cells"]:
        rows = c["membership"]["rows"]
        tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
        lines.append(f"| {c['size']} | {c['epochs']} | {_auc_cells(rows)} | {tpr['value']:.3f} | "
                     f"{c['seconds']:.0f} |")
    return lines


def canary_table(res: dict[str, Any]) -> list[str]:
    """Per (repetitions, epochs): calibrated canary membership AUC and, with a canary pool, their recovery.

    Recovery: the canary-vs-decoy AUC of the attack's score through the victim (trained with the
    canaries) and the reference victim (trained with the decoys), the paired-bootstrap difference,
    canaries and decoys in the victim's top-50 / top-200, and their mean exposure.
    """
    cells = sorted(res["cells"], key=lambda c: (c["repeats"], c["epochs"]))
    extraction = bool(cells) and all("extraction" in c for c in cells)
    lines = [f"{res['strategy']} {res['encoder_config']}, {res['n_private']} private + {res['n_canaries']} canaries "
             f"from {res.get('canary_source', 'holdout')}, statistic {res['statistic']}, seed {res['seed']}"]
    head = "| r | epochs | membership AUC calibrated |"
    rule = "|---|---|---|"
    if extraction:
        attack = cells[0]["extraction"]["attack"]
        head += (f" {attack}: canary-vs-decoy AUC victim | reference | difference | victim top-50 / top-200: "
                 "canaries (decoys) | mean exposure canaries / decoys |")
        rule += "---|---|---|---|---|"
    lines += [head + " cell s |", rule + "---|"]
    for c in cells:
        row = f"| {c['repeats']} | {c['epochs']} | {_ci(c['canaries']['rows']['victim-minus-reference']['auc'])} |"
        if extraction:
            e = c["extraction"]
            d = e["canary_vs_decoy"]
            can, dec = e["victim"]["canaries"], e["victim"]["decoys"]
            row += (f" {_ci(d['victim'])} | {_ci(d['reference'])} | {_ci(d['difference'], sign=True)}"
                    f"{' **significant**' if d['significant'] else ''} | {can['in_top50']} / {can['in_top200']} "
                    f"({dec['in_top50']} / {dec['in_top200']}) | {can['mean_exposure']:.2f} / "
                    f"{dec['mean_exposure']:.2f} |")
        lines.append(row + f" {c['seconds']:.0f} |")
    if extraction:
        e = cells[0]["extraction"]
        lines += ["", f"Pool: {e['pool_molecules']} molecules; {e['n_canaries']} canaries, {e['n_decoys']} decoys; "
                      "exposure = log2(pool size / rank), 1.44 expected at random."]
    return lines


def _precisions(block: dict) -> str:
    p = block["precision_at_k"]
    return " / ".join(f"{p[k]['value']:.2f}" for k in ("50", "100", "200") if k in p)


def attribution_table(dirs: list[str | Path]) -> list[str]:
    """One Markdown table over audit directories (`molleak leakage audit ... --victim-run ... --reference-run`).

    A victim's name is its directory's name after the last underscore (`leak_graphcl` -> graphcl).
    Directories missing `attribution.json` or `leakage.json` get a `not run` row.
    """
    lines = ["| victim | scored by | P_sub@50 / 100 / 200 | AUC vs P | AUC vs P' | private-only AUC | "
             "private-only difference (victim - reference) | membership AUC calibrated | "
             "membership AUC of the reference (null) |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    base = None
    for d in map(Path, dirs):
        name = d.name.rsplit("_", 1)[-1]
        missing = [f for f in ("attribution.json", "leakage.json") if not (d / f).is_file()]
        if missing:
            lines.append(f"| {name} | (not run: {', '.join(missing)} missing) | | | | | | | |")
            continue
        att = json.loads((d / "attribution.json").read_text())["substructure"]
        mem = json.loads((d / "leakage.json").read_text())["membership"]
        rows = mem["rows"]
        diff = att["private_only"]
        base = att["victim"]["private"]["base_rate"]["value"]
        for role in ("victim", "reference"):
            block = att[role]
            extra = (["", "", ""] if role == "reference" else
                     [_ci(diff["difference"], sign=True), _ci(rows["victim-minus-reference"]["auc"]),
                      _ci(rows["reference"]["auc"])])
            lines.append(f"| {name} | {'victim' if role == 'victim' else 'reference victim'} | "
                         f"{_precisions(block['private'])} | {_ci(block['private']['auc'])} | "
                         f"{_ci(block['reference']['auc'])} | {_ci(block['private_only_auc'])} | "
                         + " | ".join(extra) + " |")
        calibrated = rows["victim-minus-reference"]["auc"]
        extraction = "detected" if diff["significant"] else "not detected"
        membership = "detected" if calibrated["lo"] > 0.5 else "not detected"
        verdicts.append(f"- {name}: extraction leakage {extraction} (private-only difference "
                        f"{_ci(diff['difference'], sign=True)}, {diff['n_private_only']} P-only vs "
                        f"{diff['n_reference_only']} P'-only candidates); membership {membership} "
                        f"({mem['statistic']}, {mem['n_members']} vs {mem['n_nonmembers']}: {_ci(calibrated)})")
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
