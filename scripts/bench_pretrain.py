"""Pre-training throughput of the 5x300 GIN strategies, previous path and current path in one run.

Usage: python scripts/bench_pretrain.py --threads 1 2 [--n 512] [--epochs 1] [--batch-size 256]
                                        [--strategies attrmask graphcl graphmae]

For each thread count and strategy, the real `molleak.pretrain.trainer.pretrain` loop (5x300 GIN,
seed 0, MOSES train molecules drawn with seed 0) is timed three ways:
- previous: featurisation, collation and GIN layers of `previous_paths.py`, no feature cache;
- current, cold cache: the current code, featurising the set and writing its feature file;
- current, warm cache: the current code reading the set's feature file (a second victim built
  from the same set: a shadow, a reference victim, another seed).
Molecules/s = molecules x epochs / wall seconds of the whole `pretrain` call (featurisation, the
epochs, the collapse check and the checkpoint), after an untimed warm-up of both paths. It also says whether the three give bitwise the same
weights, and how long featurising the set takes each way, and (torch.profiler, one more warm run)
the share of CPU time in matrix products: with those products unchanged, 1 / share bounds what
any other change can gain.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import previous_paths as previous  # noqa: E402

from molleak.data.sources import read_moses  # noqa: E402
from molleak.models.checkpoint import read_checkpoint_file  # noqa: E402
from molleak.pretrain.trainer import PretrainConfig, featurize_all, pretrain  # noqa: E402


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of `fn()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", required=True, help="torch intra-op thread counts to time")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--strategies", nargs="+", default=["attrmask", "graphcl", "graphmae"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    raw = read_moses("train")
    smiles = [raw[i] for i in np.random.default_rng(args.seed).choice(len(raw), args.n, replace=False)]
    del raw  # 1.6M strings on the heap would make every garbage collection pass (and so the timings) slower
    gc.collect()
    work = Path(tempfile.mkdtemp(prefix="bench_pretrain."))
    print(f"{args.n} MOSES train molecules (seed {args.seed}), {args.epochs} epoch(s), batch {args.batch_size}, "
          f"5x300 GIN, seed {args.seed}; torch {torch.__version__}; {os.cpu_count()} CPUs "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); load average at start {os.getloadavg()[0]:.2f}")

    with previous.installed():
        t_prev, _ = timed(lambda: featurize_all(smiles, "pretrain_gnns", cache_dir=False))
    t_cur, _ = timed(lambda: featurize_all(smiles, "pretrain_gnns", cache_dir=False))
    featurize_all(smiles, "pretrain_gnns", cache_dir=work / "warm-features")
    t_read, _ = timed(lambda: featurize_all(smiles, "pretrain_gnns", cache_dir=work / "warm-features"))
    print(f"featurise the set (parse + featurise): previous {args.n / t_prev:,.0f} mol/s, current "
          f"{args.n / t_cur:,.0f} mol/s, read from the feature cache {args.n / t_read:,.0f} mol/s")

    print(f"{'threads':>7s} {'strategy':10s} {'previous':>9s} {'cold cache':>10s} {'warm cache':>10s} {'speed-up':>9s}"
          f"  {'CPU s/1000 mol prev/warm':>24s}  identical weights")
    mol = args.n * args.epochs
    shares: dict[tuple[int, str], float] = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        # warm-up, untimed: lazy imports, PyG's generated `propagate`, the allocator's first blocks
        for strategy in args.strategies:
            config = PretrainConfig(strategy, epochs=1, batch_size=16, seed=args.seed)
            with previous.installed():
                pretrain(smiles[:32], config, work / "warmup.pt", progress=False, resume=False, feature_cache=False)
            pretrain(smiles[:32], config, work / "warmup.pt", progress=False, resume=False, feature_cache=False)
        for strategy in args.strategies:
            config = PretrainConfig(strategy, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
            run = work / f"{strategy}-t{threads}"
            cache = run / "features"

            def train(name: str, cached: bool, _run=run, _config=config, _cache=cache) -> None:
                pretrain(smiles, _config, _run / f"{name}.pt", progress=False, resume=False,
                         feature_cache=_cache if cached else False)

            with previous.installed():
                prev_wall, prev_cpu = timed(lambda: train("previous", False))
            cold_wall, _ = timed(lambda: train("cold", True))
            warm_wall, warm_cpu = timed(lambda: train("warm", True))
            weights = [read_checkpoint_file(run / f"{name}.pt")["state_dict"] for name in ("previous", "cold", "warm")]
            same = all(torch.equal(t, w[k]) for w in weights[1:] for k, t in weights[0].items())
            print(f"{threads:7d} {strategy:10s} {mol / prev_wall:9,.0f} {mol / cold_wall:10,.0f} {mol / warm_wall:10,.0f} "
                  f"{prev_wall / warm_wall:8.2f}x  {1000 * prev_cpu / mol:11.1f} / {1000 * warm_cpu / mol:10.1f}  {same}")
            shares[(threads, strategy)] = matmul_share(lambda: train("profiled", True))
    print(f"molecules/s, wall; load average at end {os.getloadavg()[0]:.2f}")
    print("share of the warm run's CPU time in matrix products (aten::mm, addmm, bmm, matmul; torch.profiler), and "
          "the most any change that keeps those products (and so the weights) could speed the whole run up:")
    for (threads, strategy), share in shares.items():
        print(f"{threads:7d} {strategy:10s} {100 * share:5.1f}%  at most {1 / share:.2f}x")


def matmul_share(fn) -> float:
    """Fraction of `fn()`'s self CPU time spent in dense matrix products (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul"))
    return mm / total if total else float("nan")


if __name__ == "__main__":
    main()
