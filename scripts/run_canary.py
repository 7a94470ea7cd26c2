"""Canary positive control: print the membership AUC table over repetition count x epochs.

    .venv/bin/python scripts/run_canary.py --data /tmp/tiny --out /tmp/canary --repeats 1,8,32 --epochs 5,20 --seed 0

Trains two small victims per cell (canary-planted private set, and the reference with decoys),
resumable through the run directory. Figures go into BENCHMARKS.md with the command.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from molleak.cli.leakage import int_list
from molleak.plans.leakage import run_canary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int_list, default=[1, 8, 32])
    ap.add_argument("--epochs", type=int_list, default=[5, 20])
    ap.add_argument("--private-size", type=int, default=500)
    ap.add_argument("--canaries", type=int, default=50)
    ap.add_argument("--strategy", default="attrmask")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--neighbours", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    res = run_canary(args.data, args.out, repeats=args.repeats, epochs=args.epochs, n_private=args.private_size,
                     n_canaries=args.canaries, strategy=args.strategy,
                     encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim},
                     n_neighbours=args.neighbours, seed=args.seed)
    print(f"# canary control: {args.strategy} {args.layers}x{args.emb_dim} GIN, {res['n_private']} private + "
          f"{args.canaries} canaries x r, seed {args.seed}; load {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s")
    print("| r | epochs | group | victim AUC | reference AUC (null) | calibrated AUC | calibrated TPR@1%FPR |")
    print("|---|---|---|---|---|---|---|")
    for c in res["cells"]:
        for group in ("canaries", "private_members"):
            rows = c[group]["rows"]
            cells = [f"{rows[k]['auc']['value']:.3f} [{rows[k]['auc']['lo']:.3f}, {rows[k]['auc']['hi']:.3f}]"
                     for k in ("victim", "reference", "victim-minus-reference")]
            tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
            print(f"| {c['repeats']} | {c['epochs']} | {group} | {' | '.join(cells)} | {tpr['value']:.2f} |")


if __name__ == "__main__":
    main()
