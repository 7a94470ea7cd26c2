"""`molleak evaluate`: score an extraction run against the private set (the only verb that reads it)."""

from __future__ import annotations

import argparse

from molleak.cli.common import positive_int
from molleak.errors import MolleakError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate an extraction run against the private set",
        description="Label a run's scored molecules against the private set and write RUN_DIR/results.json: "
                    "precision@K (substructure and exact, with base rates and 95%% intervals), FCD, AUC, TPR@FPR.",
    )
    p.add_argument("run_dir", help="an extraction run directory (from `molleak extract`)")
    p.add_argument("--private", required=True, help="the victim's private training set (SMILES file)")
    p.add_argument("--bank", action="append", metavar="NAME=FILE",
                   help="an extra bank to report the same metrics against (e.g. reference=reference.smi)")
    p.add_argument("--k", type=positive_int, action="append", help="K of precision@K, repeatable (default: 50 100 200)")
    p.add_argument("--no-fcd", action="store_true", help="skip the FCD metrics")
    p.add_argument("--fcd-seeds", type=positive_int, default=5, help="private subsamples FCD is averaged over")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.evaluate.evaluate import evaluate_run
    from molleak.evaluate.metrics import K_LIST

    banks = {}
    for item in args.bank or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise MolleakError(f"--bank expects NAME=FILE, got {item!r}")
        banks[name] = path
    res = evaluate_run(args.run_dir, args.private, extra_banks=banks, k_list=tuple(args.k or K_LIST),
                       fcd=not args.no_fcd, fcd_seeds=args.fcd_seeds)
    ks = tuple(args.k or K_LIST)

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"

    parts = [f"P_sub@{k} {pct(res.get(f'precision_substructure@{k}'))}" for k in ks]
    parts += [f"P_exact@{ks[-1]} {pct(res.get(f'precision_exact@{ks[-1]}'))}",
              f"base rate {pct(res.get('base_rate_substructure'))} / {pct(res.get('base_rate_exact'))}",
              f"AUC {res['auc']:.3f}" if res.get("auc") is not None else "AUC n/a"]
    print(f"{res.get('method')}: " + ", ".join(parts) + f"; wrote {args.run_dir}/results.json")
    return 0
