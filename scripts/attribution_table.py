"""The attribution table of BENCHMARKS.md from `molleak leakage` output directories.

Each directory is one victim's `molleak leakage --victim ... --victim-run ... --reference-run ...`
output (`attribution.json` + `leakage.json`); the victim's name is the directory name after its
last underscore (`leak_graphcl` -> graphcl). Prints one Markdown table: per victim, the victim's
and its reference victim's ranking of the same pool against the private set P and the reference
set P', the private-only test and its paired-bootstrap difference, and whole-molecule membership
(calibrated by the reference victim, and the reference's own AUC as the null); then a line per
victim saying whether leakage was detected.

    python scripts/attribution_table.py std/leak_attrmask std/leak_graphcl ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _ci(e: dict) -> str:
    return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"


def _diff(e: dict) -> str:
    return f"{e['value']:+.3f} [{e['lo']:+.3f}, {e['hi']:+.3f}]"


def _precisions(block: dict) -> str:
    p = block["precision_at_k"]
    return " / ".join(f"{p[k]['value']:.2f}" for k in ("50", "100", "200") if k in p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="`molleak leakage` output directories, one per victim")
    args = ap.parse_args()
    print("| victim | scored by | P_sub@50 / 100 / 200 | AUC vs P | AUC vs P' | private-only AUC | "
          "private-only difference (victim - reference) | membership AUC calibrated | "
          "membership AUC of the reference (null) |")
    print("|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    base = None
    for d in map(Path, args.dirs):
        name = d.name.rsplit("_", 1)[-1]
        missing = [f for f in ("attribution.json", "leakage.json") if not (d / f).is_file()]
        if missing:
            print(f"| {name} | (not run: {', '.join(missing)} missing) | | | | | | | |")
            continue
        att = json.loads((d / "attribution.json").read_text())["substructure"]
        mem = json.loads((d / "leakage.json").read_text())["membership"]
        rows = mem["rows"]
        diff = att["private_only"]
        base = att["victim"]["private"]["base_rate"]["value"]
        for role in ("victim", "reference"):
            block = att[role]
            extra = (["", "", ""] if role == "reference" else
                     [_diff(diff["difference"]), _ci(rows["victim-minus-reference"]["auc"]),
                      _ci(rows["reference"]["auc"])])
            print(f"| {name} | {'victim' if role == 'victim' else 'reference victim'} | "
                  f"{_precisions(block['private'])} | {_ci(block['private']['auc'])} | "
                  f"{_ci(block['reference']['auc'])} | {_ci(block['private_only_auc'])} | " + " | ".join(extra) + " |")
        calibrated = rows["victim-minus-reference"]["auc"]
        extraction = "detected" if diff["significant"] else "not detected"
        membership = "detected" if calibrated["lo"] > 0.5 else "not detected"
        verdicts.append(f"- {name}: extraction leakage {extraction} (private-only difference "
                        f"{_diff(diff['difference'])}, {diff['n_private_only']} P-only vs "
                        f"{diff['n_reference_only']} P'-only candidates); membership {membership} "
                        f"({mem['statistic']}, {mem['n_members']} vs {mem['n_nonmembers']}: {_ci(calibrated)})")
    if base is not None:
        print(f"\nSubstructure base rate of the pool against P: {base:.3f}.\n")
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
