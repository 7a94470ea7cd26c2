"""`molleak probe`: linear probes on frozen victim embeddings, pre-trained vs the same encoder at random init.

    molleak probe --zoo ZOO_DIR --data TIER_DIR [--targets logp,bbb] [--n-train all,100] [--json OUT.json]
    molleak probe --victims A.pth B.pt ... [--data TIER_DIR] --targets bbb,freesolv,solubility

Prints two Markdown tables (molleak.evaluate.probe): per victim and probe, the trained score against
the random-initialisation draws, then the probes won with the splits won; between them, the
multiplicity (chance wins, Holm-corrected tests).
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path

from molleak.cli.common import positive_int, seed_int
from molleak.errors import MolleakError


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    from molleak.data.properties import PROPERTY_SETS
    from molleak.evaluate.probe import RDKIT_TARGETS

    p = sub.add_parser(
        "probe", help="linear probes on frozen victim embeddings vs random initialisation",
        description="For every victim <name>.pt in a zoo directory (or every --victims checkpoint) and the same "
                    "encoder at random initialisation: ridge / logistic probes of RDKit targets on the tier's holdout molecules and "
                    "of measured properties (B3DB BBB class, FreeSolv, solubility), by 5-fold CV on all molecules "
                    "(`all`) or trained on N labelled molecules over random splits. A victim wins a probe when it "
                    "beats every random-init draw.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--zoo", help="directory with <strategy>.pt victims (`molleak zoo`)")
    src.add_argument("--victims", nargs="+", metavar="CHECKPOINT",
                     help="victim checkpoints to probe instead of a zoo: molleak victims (e.g. from `molleak "
                          "import-victim`) or raw pretrain-gnns state_dicts (GIN, GCN, GraphSAGE, GAT); named by "
                          "file stem")
    p.add_argument("--data", help="tier directory (its holdout.smi is the RDKit-target probe set; needed only for "
                                  "the RDKit targets)")
    p.add_argument("--targets", type=_names, default=["logp", "bbb"],
                   help=f"comma-separated probe targets: measured ({','.join(PROPERTY_SETS)}) and RDKit "
                        f"({','.join(RDKIT_TARGETS)}) (default logp,bbb)")
    p.add_argument("--n-train", default="all",
                   help="comma-separated regimes: `all` (5-fold CV on every molecule) and/or a number of "
                        "labelled molecules the probe trains on (default all)")
    p.add_argument("--n-bbb", type=positive_int, default=2000,
                   help="molecules probed per measured set (B3DB class; FreeSolv and solubility have fewer)")
    p.add_argument("--n-logp", type=positive_int, default=2000, help="holdout molecules probed for the RDKit targets")
    p.add_argument("--repeats", type=positive_int, default=10, help="random splits when --n-train is a number")
    p.add_argument("--random-seeds", type=positive_int, default=3, help="random initialisations per victim (default 3)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the subsets, splits and random inits (default 0)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads")
    p.add_argument("--json", help="also write the scores (every split) to this JSON file")
    p.set_defaults(func=run)


def regimes_of(text: str) -> list[int | None]:
    regimes: list[int | None] = []
    for r in (r.strip() for r in text.split(",") if r.strip()):
        if r == "all":
            regimes.append(None)
            continue
        try:
            n = int(r)
        except ValueError:
            n = 0
        if n < 2:
            raise MolleakError(f"--n-train: expected `all` or numbers of labelled molecules (at least 2), got {r!r}")
        regimes.append(n)
    if not regimes:
        raise MolleakError(f"--n-train: expected `all` or numbers of labelled molecules, got {text!r}")
    return regimes


def run(args: argparse.Namespace) -> int:
    from molleak.evaluate.probe import check_targets, probe_tables, run_probes
    from molleak.runs import torch_threads, write_json_atomic

    regimes = regimes_of(args.n_train)
    check_targets(args.targets)
    with torch_threads(args.threads) if args.threads else nullcontext():
        res = run_probes(args.zoo, args.data, victims=args.victims, targets=args.targets, regimes=regimes,
                         n_measured=args.n_bbb, n_rdkit=args.n_logp, repeats=args.repeats,
                         random_seeds=args.random_seeds, seed=args.seed)
    print("\n".join(probe_tables(res)))
    if args.json:
        write_json_atomic(Path(args.json), res)
    return 0
