"""Seconds per full-batch step of the adapter fit on a candidate pool (random embeddings).

The fit's cost depends on the pool's shape (records, steps, distinct SMILES, distinct steps), not on
the victim, so random embeddings of the victim's width stand in for the victim's. Prints the shape
and the seconds per step (with the held-out evaluation each step does).

    OMP_NUM_THREADS=1 python scripts/bench_adapter.py --pool std_t237/pools/aux-s2.tsv.gz --steps 10
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from molleak.attack.scoring.adapter import fit_adapter
from molleak.attack.scoring.base import StepTable
from molleak.candidates.pool import read_pool, unique_smiles
from molleak.runs import torch_threads


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="a candidate pool file")
    ap.add_argument("--steps", type=int, default=10, help="optimiser steps timed")
    ap.add_argument("--dim", type=int, default=300, help="embedding width")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    records = read_pool(args.pool)
    table = StepTable.build(records)
    index = {s: i for i, s in enumerate(unique_smiles(records))}
    record_molecule = np.array([index[r.smiles] for r in records])
    triples = len(np.unique(np.stack([table.before, table.motif, table.after], axis=1), axis=0))
    rng = np.random.default_rng(args.seed)
    emb = rng.normal(size=(len(table.smiles), args.dim)).astype(np.float32)
    labels = rng.random(len(index)) < 0.3
    with torch_threads(1):
        t0 = time.perf_counter()
        fit_adapter(table, emb, record_molecule, labels, args.seed, steps=args.steps, patience=args.steps + 1)
        seconds = time.perf_counter() - t0
    print(f"pool {args.pool}: {len(records)} records, {len(index)} molecules, {len(table.record)} steps, "
          f"{len(table.smiles)} distinct SMILES, {triples} distinct steps")
    print(f"adapter fit: {seconds / args.steps:.2f} s per step ({args.steps} steps, width {args.dim}, "
          f"held-out evaluation each step; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
