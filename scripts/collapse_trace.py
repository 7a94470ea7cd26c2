"""Trace a pre-training run step by step: the batch loss and the embedding spread every few steps.

The trainer checks for a collapsed embedding once, at the end; this shows when a recipe collapses
and whether a change prevents it. It runs the strategy's own loss with the trainer's optimiser
(Adam, batch 256 by default) on the first `--n` molecules of a SMILES file, one torch thread, and
prints `step loss spread` (spread: `molleak.pretrain.trainer.embedding_spread` of the eval-mode
embeddings of the first 256 molecules; collapsed below 1e-4).

    python scripts/collapse_trace.py --smiles std/data/private.smi --n 10000 --strategy edgepred \
        --steps 450 --hparams '{"scaled": false}'
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from molleak.data.smiles_io import read_smiles
from molleak.pretrain.trainer import (
    COLLAPSE_SAMPLE,
    PretrainConfig,
    build_strategy,
    encoder_spread,
    featurize_all,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smiles", required=True)
    ap.add_argument("--n", type=int, default=10_000, help="training molecules (the file's first n)")
    ap.add_argument("--strategy", required=True)
    ap.add_argument("--hparams", default="{}", help="strategy hyperparameters as JSON")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=10, help="print every this many steps")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = PretrainConfig(strategy=args.strategy, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            hparams=json.loads(args.hparams))
    torch.manual_seed(args.seed)
    strategy = build_strategy(config)
    raw = featurize_all(read_smiles(args.smiles).smiles[: args.n], strategy.encoder.featurizer)
    sample = raw[:COLLAPSE_SAMPLE]
    graphs = [strategy.prepare(g) for g in raw]
    optimizer = torch.optim.Adam([p for p in strategy.parameters() if p.requires_grad], lr=args.lr)
    rng = np.random.default_rng(args.seed)
    print(f"{args.strategy} {config.hparams} on {len(graphs)} molecules, batch {args.batch_size}, lr {args.lr}, "
          f"seed {args.seed}\nstep loss spread")
    step = 0
    while step < args.steps:
        order = rng.permutation(len(graphs))
        for start in range(0, len(order) - 1, args.batch_size):
            strategy.train()
            loss = strategy.loss(strategy.collate([graphs[i] for i in order[start : start + args.batch_size]]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.every == 0 or step == 1:
                strategy.eval()
                print(f"{step} {loss.item():.4f} {encoder_spread(strategy.encoder, sample):.3g}", flush=True)
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
