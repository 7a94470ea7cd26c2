"""Which membership statistic has power? Every statistic on the same canary victims.

For each strategy: a victim pre-trained on the first `--private` molecules of `private.smi` plus
`--canaries` holdout molecules repeated `--repeats` times, and its reference victim (same recipe
and seed) on as many `reference.smi` molecules plus as many decoys (other holdout molecules)
repeated as often. Canaries vs matched non-members (further holdout molecules) are then scored
by every statistic in `molleak.attack.membership.STATISTICS`, raw and calibrated against the
reference victim. Prints a Markdown table (AUC with a 95% stratified-bootstrap interval).

This is how the default statistic was chosen (BENCHMARKS.md, leakage section); the canary grid
(`molleak leakage --canary`) then measures the chosen one on a fresh draw.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/membership_statistics.py --data <standard tier> \\
        --strategies graphcl,attrmask,simgrace --out <dir>
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from molleak.attack.membership import STATISTICS
from molleak.data.smiles_io import read_smiles
from molleak.evaluate.membership import membership_audit
from molleak.models.victim import Victim
from molleak.plans.leakage import plant_canaries, train_victim
from molleak.pretrain.trainer import PretrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path, help="tier directory from `molleak data prepare`")
    ap.add_argument("--out", required=True, type=Path, help="where the victims are written (reused when present)")
    ap.add_argument("--strategies", default="graphcl,attrmask,simgrace")
    ap.add_argument("--private", type=int, default=300)
    ap.add_argument("--canaries", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--emb-dim", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    holdout = read_smiles(args.data / "holdout.smi").smiles
    n = args.canaries
    canaries, nonmembers, decoys = holdout[:n], holdout[n : 2 * n], holdout[2 * n : 3 * n]
    private = read_smiles(args.data / "private.smi").smiles[: args.private]
    reference = read_smiles(args.data / "reference.smi").smiles[: args.private]
    print(f"{args.private} private + {n} canaries x {args.repeats}, {args.epochs} epochs, GIN {args.layers}x"
          f"{args.emb_dim}, seed {args.seed}; {n} canaries vs {n} non-members (holdout)")
    print("| strategy | statistic | victim AUC | reference AUC (null) | calibrated AUC |")
    print("|---|---|---|---|---|")
    for strategy in args.strategies.split(","):
        config = PretrainConfig(strategy=strategy, epochs=args.epochs, batch_size=64, lr=1e-3, seed=args.seed,
                                encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim})
        vpath = train_victim(plant_canaries(private, canaries, args.repeats), config,
                             args.out / f"{strategy}_victim.pt", train_name="private+canaries")
        rpath = train_victim(plant_canaries(reference, decoys, args.repeats), config,
                             args.out / f"{strategy}_reference.pt", train_name="reference+decoys")
        victim, refs = Victim.from_checkpoint(vpath), {"reference": Victim.from_checkpoint(rpath)}
        for statistic in STATISTICS:
            rows = membership_audit(victim, canaries, nonmembers, refs, seed=args.seed, statistic=statistic)["rows"]
            cells = [f"{rows[k]['auc'].value:.3f} [{rows[k]['auc'].lo:.3f}, {rows[k]['auc'].hi:.3f}]"
                     for k in ("victim", "reference", "victim-minus-reference")]
            print(f"| {strategy} | {statistic} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
