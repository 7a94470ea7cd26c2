"""Embedding throughput of the 5x300 GIN victim on MOSES molecules: where the time goes, before and after.

Usage: python scripts/bench_embed.py --threads 2 [--n 5000] [--batch-sizes 64 128 256] [--repeats 2] [--compile]

One run times, on the same molecules and weights:
- each step of the query path (RDKit parse + canonical SMILES, featurisation, collation, the GIN
  forward pass) with the previous implementation (`previous_paths.py`: per-element featurisation,
  per-graph collation, the GIN layer on PyG's `propagate`) and the current one;
- `Victim.embed` end to end, cold cache: previous (`PreviousVictim`: featurise, collate, forward one
  chunk after the other) and current (`Victim`: chunk after chunk, the default; and with the next chunk
  featurised in a thread during the forward pass, to show what that brings), and warm cache;
- a plain PyTorch Geometric loop with the same model math: `torch_geometric.utils.from_smiles` (plus
  RDKit's canonical SMILES, the cache key), `torch_geometric.loader.DataLoader`, the `propagate` GIN;
- with --compile, `torch.compile` of the encoder (compile time and forward rate);
- the ceiling of the forward pass: the encoder layers' matrix products alone (the MLPs on every
  atom, nothing else), the rate no forward with the same fp32 arithmetic can exceed on this machine.
It also checks that the current embeddings equal the previous ones (largest absolute difference).
Rates are the best of --repeats passes (molecules/s, wall clock).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem

sys.path.insert(0, str(Path(__file__).resolve().parent))
import previous_paths as previous  # noqa: E402

from molleak.data.featurize import collate, featurize_mol  # noqa: E402
from molleak.data.sources import read_moses  # noqa: E402
from molleak.models.gin import GINEncoder  # noqa: E402
from molleak.models.victim import Victim  # noqa: E402


def best_rate(n: int, fn, repeats: int) -> float:
    """Molecules per second of `fn()` over `n` molecules: the best of `repeats` passes."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def row(label: str, before: float | None, after: float) -> None:
    b = f"{before:9,.0f}" if before is not None else " " * 9
    ratio = f"  x{after / before:4.2f}" if before else ""
    print(f"{label:44s} {b} {after:9,.0f}{ratio}")


def pyg_loop(smiles: list[str], model, batch_size: int) -> np.ndarray:
    """A plain PyTorch Geometric query loop: from_smiles, DataLoader, the `propagate` GIN (same math)."""
    from torch_geometric.loader import DataLoader
    from torch_geometric.utils import from_smiles

    # from_smiles' features -> the pretrain-gnns layout: [atomic number - 1, chirality], [bond type, direction]
    bond_type = torch.zeros(22, dtype=torch.long)
    bond_type[[1, 2, 3, 12]] = torch.tensor([0, 1, 2, 3])
    data = []
    for s in smiles:
        Chem.MolToSmiles(Chem.MolFromSmiles(s))  # the cache key a query path needs
        d = from_smiles(s)
        d.x = torch.stack([d.x[:, 0] - 1, d.x[:, 1].clamp(max=2)], dim=1)
        d.edge_attr = torch.stack([bond_type[d.edge_attr[:, 0]], torch.zeros_like(d.edge_attr[:, 0])], dim=1)
        d.smiles = None
        data.append(d)
    out = []
    with torch.inference_mode():
        for batch in DataLoader(data, batch_size=batch_size):
            out.append(model.graph_embeddings(batch))
    return torch.cat(out).numpy()


def bench_batch_size(bs: int, smiles: list[str], graphs: list, enc, old_enc, reps: int) -> None:
    """The batch-size-dependent rows: collation, forward, Victim.embed, the plain PyG loop."""
    n = len(smiles)
    chunks = [graphs[i : i + bs] for i in range(0, n, bs)]
    row(f"batch {bs}: collate", best_rate(n, lambda: [previous.collate(c) for c in chunks], reps),
        best_rate(n, lambda: [collate(c) for c in chunks], reps))
    batches = [collate(c) for c in chunks]
    with torch.inference_mode():
        old_enc.graph_embeddings(batches[0]), enc.graph_embeddings(batches[0])  # warm-up
        row(f"batch {bs}: GIN forward", best_rate(n, lambda: [old_enc.graph_embeddings(b) for b in batches], reps),
            best_rate(n, lambda: [enc.graph_embeddings(b) for b in batches], reps))
        # the ceiling of any forward pass with this arithmetic: the ten fp32 matrix products alone (each
        # layer's 300->600->300 MLP on every atom of the batch, bias and ReLU included), nothing else
        inputs = [torch.randn(b.x.shape[0], enc.gnns[0].mlp[0].in_features) for b in batches]
        row(f"batch {bs}: the layers' matrix products alone", None,
            best_rate(n, lambda: [[layer.mlp(x) for layer in enc.gnns] for x in inputs], reps))
    victim = Victim(enc, batch_size=bs)
    old = previous.PreviousVictim(victim)
    fresh: dict[str, np.ndarray] = {}

    def cold(which: str) -> None:
        v = old if which == "old" else victim
        v._cache = {}  # a cold cache for every pass
        fresh[which] = v.embed(smiles)

    row(f"batch {bs}: Victim.embed end to end, cold cache", best_rate(n, lambda: cold("old"), reps),
        best_rate(n, lambda: cold("new"), reps))
    victim.overlap_featurisation = True
    row(f"batch {bs}:   the same, featurisation overlapped", None, best_rate(n, lambda: cold("new"), reps))
    victim.overlap_featurisation = False
    row(f"batch {bs}: Victim.embed, warm cache", None, best_rate(n, lambda: victim.embed(smiles), reps))
    row(f"batch {bs}: plain PyG loop end to end", None, best_rate(n, lambda: pyg_loop(smiles, old_enc, bs), reps))
    diff = float(np.abs(fresh["old"] - fresh["new"]).max())
    print(f"    batch {bs}: largest |embedding difference| previous vs current: {diff:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, required=True, help="torch intra-op threads")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile of the encoder")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = read_moses("train")
    idx = np.random.default_rng(args.seed).choice(len(raw), args.n, replace=False)
    smiles = [raw[i] for i in idx]
    del raw  # 1.6M strings on the heap would make every garbage collection pass (and so the timings) slower
    gc.collect()
    n, reps = args.n, args.repeats
    print(f"{n} MOSES train molecules (seed {args.seed}); untrained 5x300 GIN (weights seed {args.seed}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads (OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average at start {os.getloadavg()[0]:.2f}; best of {reps}")
    print(f"{'molecules/s':44s} {'before':>9s} {'after':>9s}")

    mols = [Chem.MolFromSmiles(s) for s in smiles]
    row("RDKit parse + canonical SMILES (both)", None,
        best_rate(n, lambda: [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles], reps))
    row("featurise (from Mol)", best_rate(n, lambda: [previous.featurize_mol(m) for m in mols], reps),
        best_rate(n, lambda: [featurize_mol(m) for m in mols], reps))
    graphs = [featurize_mol(m) for m in mols]

    torch.manual_seed(args.seed)
    enc = GINEncoder(5, 300).eval()
    old_enc = previous.with_propagate_layers(enc)
    for bs in args.batch_sizes:
        bench_batch_size(bs, smiles, graphs, enc, old_enc, reps)

    if args.compile:
        bs = args.batch_sizes[0]
        batches = [collate(graphs[i : i + bs]) for i in range(0, n, bs)]
        t = time.perf_counter()
        compiled = torch.compile(enc, dynamic=True)
        with torch.inference_mode():
            compiled.graph_embeddings(batches[0])
            compile_s = time.perf_counter() - t
            rate = best_rate(n, lambda: [compiled.graph_embeddings(b) for b in batches], reps)
            diff = max(float((compiled.graph_embeddings(b) - enc.graph_embeddings(b)).abs().max()) for b in batches[:4])
        print(f"torch.compile (dynamic shapes), batch {bs}: compile {compile_s:.1f} s, forward {rate:,.0f} mol/s, "
              f"largest |difference| {diff:.3g}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
