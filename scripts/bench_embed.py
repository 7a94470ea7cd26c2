"""Embedding throughput of the 5x300 GIN victim on MOSES molecules, and where the time goes.

Usage: python scripts/bench_embed.py [--n 5000] [--batch-sizes 64 256 1024] [--threads 2] [--bf16]
Prints molecules/s for: RDKit parse + canonical SMILES, featurisation, collation, the forward
pass, and `Victim.embed` end to end (cold cache), per batch size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rdkit import Chem

from molleak.data.featurize import collate, featurize_mol
from molleak.data.sources import read_moses
from molleak.models.gin import GINEncoder
from molleak.models.victim import Victim


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.0f} mol/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bf16", action="store_true", help="also time the forward pass under bfloat16 autocast")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = read_moses("train")
    idx = np.random.default_rng(args.seed).choice(len(raw), args.n, replace=False)
    smiles = [raw[i] for i in idx]
    print(f"{args.n} MOSES train molecules (seed {args.seed}), torch threads {torch.get_num_threads()}")

    t = time.perf_counter()
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    keys = [Chem.MolToSmiles(m) for m in mols]
    t_parse = time.perf_counter() - t
    t = time.perf_counter()
    graphs = [featurize_mol(m) for m in mols]
    t_feat = time.perf_counter() - t
    print(f"parse + canonical SMILES : {rate(args.n, t_parse)}")
    print(f"featurise (from Mol)     : {rate(args.n, t_feat)}")
    del keys

    torch.manual_seed(args.seed)
    enc = GINEncoder(5, 300).eval()
    for precision in ["fp32", "bf16"] if args.bf16 else ["fp32"]:
        for bs in args.batch_sizes:
            batches = [graphs[i : i + bs] for i in range(0, len(graphs), bs)]
            t = time.perf_counter()
            collated = [collate(b) for b in batches]
            t_coll = time.perf_counter() - t
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                enc.graph_embeddings(collated[0])  # warm-up
                t = time.perf_counter()
                for b in collated:
                    enc.graph_embeddings(b)
                t_fwd = time.perf_counter() - t
            line = f"{precision} batch {bs:5d}: collate {rate(args.n, t_coll)} | forward {rate(args.n, t_fwd)}"
            if precision == "fp32":
                victim = Victim(enc, batch_size=bs)
                t = time.perf_counter()
                victim.embed(smiles)
                t_e2e = time.perf_counter() - t
                t = time.perf_counter()
                victim.embed(smiles)
                t_warm = time.perf_counter() - t
                line += (f" | Victim.embed end to end: cold cache {rate(args.n, t_e2e)}, "
                         f"warm cache {rate(args.n, t_warm)}")
            print(line)


if __name__ == "__main__":
    main()
