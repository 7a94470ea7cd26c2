"""The canary tables of BENCHMARKS.md from `molleak leakage --canary` output (`canary.json`).

Prints, per (repetitions, epochs) cell: the calibrated membership AUC of the canaries and, when the
canaries came from a candidate pool (`--canary-pool`), their recovery by the extraction attack:
the canary-vs-decoy AUC of the attack's score through the victim (trained with the canaries) and
through the reference victim (trained with the decoys), the paired-bootstrap difference, how many
canaries and decoys the victim's ranking puts in its top-50 / top-200, and their mean exposure.

    python scripts/canary_table.py canary_extract_graphcl/canary.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _ci(e: dict, sign: bool = False) -> str:
    f = "+.3f" if sign else ".3f"
    return f"{e['value']:{f}} [{e['lo']:{f}}, {e['hi']:{f}}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("canary_json", help="canary.json written by `molleak leakage --canary`")
    args = ap.parse_args()
    res = json.loads(Path(args.canary_json).read_text())
    cells = sorted(res["cells"], key=lambda c: (c["repeats"], c["epochs"]))
    extraction = all("extraction" in c for c in cells)
    print(f"{res['strategy']} {res['encoder_config']}, {res['n_private']} private + {res['n_canaries']} canaries "
          f"from {res.get('canary_source', 'holdout')}, statistic {res['statistic']}, seed {res['seed']}")
    head = "| r | epochs | membership AUC calibrated |"
    rule = "|---|---|---|"
    if extraction:
        attack = cells[0]["extraction"]["attack"]
        head += (f" {attack}: canary-vs-decoy AUC victim | reference | difference | victim top-50 / top-200: "
                 "canaries (decoys) | mean exposure canaries / decoys |")
        rule += "---|---|---|---|---|"
    print(head + " cell s |")
    print(rule + "---|")
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
        print(row + f" {c['seconds']:.0f} |")
    if extraction:
        e = cells[0]["extraction"]
        print(f"\nPool: {e['pool_molecules']} molecules; {e['n_canaries']} canaries, {e['n_decoys']} decoys; "
              "exposure = log2(pool size / rank), 1.44 expected at random.")


if __name__ == "__main__":
    main()
