"""Memorisation sweep: print membership AUC over private-set size x epochs for one strategy.

    .venv/bin/python scripts/run_sweep.py --data /tmp/small --out /tmp/sweep --sizes 1000,2000,5000 --epochs 1,5,20 --seed 0

Each cell trains a victim on the first N private molecules and a reference victim on the first
N reference molecules with the same recipe; members are N-sample private molecules, non-members
holdout molecules. Resumable through the run directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from molleak.attack.membership import DEFAULT_STATISTIC, STATISTICS
from molleak.cli.leakage import cell_list, int_list
from molleak.plans.leakage import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sizes", type=int_list, default=[1000, 2000, 5000])
    ap.add_argument("--epochs", type=int_list, default=[1, 5, 20])
    ap.add_argument("--members", type=int, default=200)
    ap.add_argument("--strategy", default="attrmask")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--emb-dim", type=int, default=32)
    ap.add_argument("--cells", type=cell_list, default=None, help="SIZExEPOCHS pairs instead of the grid")
    ap.add_argument("--statistic", choices=list(STATISTICS), default=DEFAULT_STATISTIC)
    ap.add_argument("--neighbours", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    res = run_sweep(args.data, args.out, sizes=args.sizes, epochs=args.epochs, cells=args.cells,
                    strategy=args.strategy, encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim},
                    n_members=args.members, n_neighbours=args.neighbours, seed=args.seed, statistic=args.statistic)
    print(f"# sweep: {args.strategy} {args.layers}x{args.emb_dim} GIN, `{args.statistic}` statistic, {args.members} "
          f"members vs as many holdout, seed {args.seed}; load {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s (cells computed earlier are read back; `cell s` is when each was made)")
    print("| N | epochs | victim AUC | reference AUC (null) | calibrated AUC | calibrated TPR@1%FPR | cell s |")
    print("|---|---|---|---|---|---|---|")
    for c in res["cells"]:
        rows = c["membership"]["rows"]
        cells = [f"{rows[k]['auc']['value']:.3f} [{rows[k]['auc']['lo']:.3f}, {rows[k]['auc']['hi']:.3f}]"
                 for k in ("victim", "reference", "victim-minus-reference")]
        tpr = rows["victim-minus-reference"]["tpr_at_fpr"]["0.01"]
        print(f"| {c['size']} | {c['epochs']} | {' | '.join(cells)} | {tpr['value']:.3f} | {c['seconds']:.0f} |")


if __name__ == "__main__":
    main()
