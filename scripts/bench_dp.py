"""Molecules per second of DP-SGD pre-training against ordinary training, and where the DP step's time goes.

On one SMILES set and one tiny config, times (median of `--reps` passes over the same molecules):
ordinary training (one batched forward and backward of the mean loss per batch), the per-molecule
gradients of molleak.pretrain.dp (micro-batches of one molecule: collate, forward, backward, flatten
and clip, per molecule), and the batched alternative (one forward of the batch, then the Jacobian of
the per-molecule losses by `torch.autograd.grad(..., is_grads_batched=True)`, vmap over the backward).
Then the whole `pretrain(..., dp=...)` and `pretrain(...)` runs end to end, and the noise calibration.

    OMP_NUM_THREADS=1 python scripts/bench_dp.py --smiles tests/fixtures/moses_train_3k.smi --n 100
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from molleak.data.smiles_io import read_smiles
from molleak.pretrain.dp import DPConfig, calibrate_noise, clip, freeze_batchnorm, trainable
from molleak.pretrain.trainer import PretrainConfig, build_strategy, featurize_all, pretrain
from molleak.runs import torch_threads


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smiles", default="tests/fixtures/moses_train_3k.smi")
    ap.add_argument("--n", type=int, default=100, help="molecules")
    ap.add_argument("--strategy", default="attrmask")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--emb-dim", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    smiles = read_smiles(Path(args.smiles)).smiles[: args.n]
    enc = {"num_layers": args.layers, "emb_dim": args.emb_dim}
    config = PretrainConfig(strategy=args.strategy, epochs=args.epochs, batch_size=args.batch_size, lr=1e-2,
                            encoder_config=enc)
    with torch_threads(1):
        torch.manual_seed(0)
        s = build_strategy(config)
        s.train()
        freeze_batchnorm(s)
        items = [s.prepare(g) for g in featurize_all(smiles, s.encoder.featurizer)]
        params = trainable(s)
        batches = [items[i:i + args.batch_size] for i in range(0, len(items), args.batch_size)]
        parts = {"collate": 0.0, "forward": 0.0, "backward": 0.0, "flatten+clip": 0.0}

        def ordinary() -> None:
            for b in batches:
                torch.autograd.grad(s.loss(s.collate(b)), params, allow_unused=True)

        def micro() -> None:
            for item in items:
                t0 = time.perf_counter()
                batch = s.collate([item])
                t1 = time.perf_counter()
                loss = s.loss_per_graph(batch)[0]
                t2 = time.perf_counter()
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                t3 = time.perf_counter()
                clip(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                for g, p in zip(grads, params, strict=True)]), 1.0)
                t4 = time.perf_counter()
                for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    parts[key] += dt

        def vmapped() -> None:
            for b in batches:
                losses = s.loss_per_graph(s.collate(b))
                torch.autograd.grad(losses, params, grad_outputs=torch.eye(len(b)), is_grads_batched=True,
                                    allow_unused=True)

        vmapped()  # warm-up: vmap's first call traces its batching rules
        rates = {name: len(items) / _median_seconds(fn, args.reps)
                 for name, fn in (("ordinary", ordinary), ("micro-batches of one", micro), ("is_grads_batched", vmapped))}
        total = sum(parts.values())
        print(f"{len(items)} molecules, {args.strategy}, GIN {args.layers}x{args.emb_dim}, "
              f"{sum(p.numel() for p in params)} parameters, batch {args.batch_size}")
        for name, rate in rates.items():
            print(f"  gradients, {name}: {rate:,.0f} molecules/s")
        print("  micro-batch time: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in parts.items()))

        t0 = time.perf_counter()
        calibrate_noise(8.0, 1e-3, args.batch_size / len(items), args.epochs * -(-len(items) // args.batch_size))
        print(f"  noise calibration (RDP, epsilon 8): {time.perf_counter() - t0:.1f} s")
        with tempfile.TemporaryDirectory() as tmp:
            for name, dp in (("ordinary", None), ("DP-SGD", DPConfig(epsilon=8.0, delta=1e-3))):
                prov = pretrain(smiles, config, Path(tmp) / "v.pt", progress=False, dp=dp)
                secs = sum(prov["seconds_per_epoch"])
                losses = " -> ".join(f"{x:.2f}" for x in prov["loss_per_epoch"])
                print(f"  pretrain {name}: {args.epochs * len(items) / secs:,.0f} molecules/s over {args.epochs} "
                      f"epochs (training loop only), loss {losses}")


if __name__ == "__main__":
    main()
