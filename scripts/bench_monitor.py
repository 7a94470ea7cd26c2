"""Query monitoring on molleak's own attack streams and on benign streams (BENCHMARKS.md, "Query monitoring").

Each stream is a list of SMILES in query order; the monitor (`molleak.serve.monitor`, thresholds fixed in
its design) reads it as it would read a key's query log. No server, no victim: only the order of queries.

Attack streams:
- enumeration (adapter order): a one-step pool of a vocabulary mined from 300 fixture molecules, asked
  as `molleak extract --method adapter` asks it (`StepTable.smiles`: each template core, motif and
  product at first appearance, record by record);
- enumeration, products shuffled: the pool's molecules only, in random order (an attacker hiding the
  order and the fragments; also what a screen of a combinatorial library in random order looks like);
- membership probing, molleak order: `draw_neighbours` (8 each) of 150 molecules, asked as
  `molleak.attack.membership` asks them (the molecules, then every neighbour);
- membership probing, interleaved: each molecule followed by its neighbours;
- with --served: `molleak extract --method policy` (budget 600) and `--method adapter` run over HTTP
  against `molleak serve` of an untrained 2 x 32 GIN, read back from the key's query log (`read_query_log`).
Benign streams:
- virtual screen: the fixture molecules in random order (and `aux_external.smi` of a tier with --tier);
- similarity search: for each of 5 leads, the fixture molecules nearest the lead by Morgan Tanimoto, in
  order of similarity; with --library N, also the 300 nearest of N random MOSES train molecules (close
  analogues, the hard case).

Quiet streams show each rule's statistic at its peak over the stream; fired ones, at firing.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_monitor.py [--tier DIR] [--library 200000] [--served]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "moses_train_3k.smi"


def enumeration_streams(mols: list[str], seed: int) -> dict[str, list[str]]:
    from molleak.attack.scoring.base import StepTable
    from molleak.candidates.enumerate import enumerate_pool
    from molleak.candidates.vocab import mine_vocabulary

    vocab = mine_vocabulary(mols[1000:1300], n_templates=20, n_motifs=40, workers=1)
    records = enumerate_pool(vocab, steps=1, workers=1)
    products = list(dict.fromkeys(r.smiles for r in records))
    rng = np.random.default_rng(seed)
    return {"enumeration (adapter order)": StepTable.build(records).smiles,
            "enumeration, products shuffled": [products[i] for i in rng.permutation(len(products))]}


def membership_streams(mols: list[str], n: int = 150) -> dict[str, list[str]]:
    from molleak.attack.membership import draw_neighbours

    hoods = draw_neighbours(mols[2000:2000 + n], n_neighbours=8, seed=0)
    flat, _ = hoods.flat()
    interleaved = [s for m, ns in zip(hoods.smiles, hoods.neighbours, strict=True) for s in [m, *ns]]
    return {"membership probing (molleak order)": list(hoods.smiles) + flat,
            "membership probing (interleaved)": interleaved}


def similarity_streams(mols: list[str], leads: list[str], length: int, label: str) -> dict[str, list[str]]:
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = [gen.GetFingerprint(Chem.MolFromSmiles(s)) for s in mols]
    out = {}
    for i, lead in enumerate(leads):
        sims = np.array(DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(lead)), fps))
        order = np.argsort(-sims, kind="stable")[:length]
        out[f"similarity search in {label}, lead {i} (top {length}, Tc {sims[order[0]]:.2f}..{sims[order[-1]]:.2f})"] = \
            [mols[i] for i in order]
    return out


def served_streams(mols: list[str], seed: int) -> dict[str, tuple[list[str], list[float]]]:
    """Policy search and adapter extraction over HTTP; each key's query log read back."""
    import json
    import os
    import tempfile

    import torch

    from molleak.cli.main import main as molleak
    from molleak.models.base import build_encoder, load_encoders
    from molleak.models.checkpoint import save_checkpoint
    from molleak.models.victim import Victim
    from molleak.serve.app import build_app, serve_in_thread
    from molleak.serve.keys import Keys, KeysFile, key_sha256
    from molleak.serve.monitor import read_query_log

    tmp = Path(tempfile.mkdtemp(prefix="bench_monitor."))
    load_encoders()
    torch.manual_seed(seed)
    save_checkpoint(tmp / "gin.pt", build_encoder("gin", {"num_layers": 2, "emb_dim": 32}), {"strategy": "attrmask"})
    (tmp / "aux.smi").write_text("\n".join(mols[1000:1300]) + "\n")
    runs = {"policy": ["--method", "policy", "--budget", "600"], "adapter": ["--method", "adapter"]}
    keys = Keys(KeysFile(keys={m: {"sha256": key_sha256(m)} for m in runs}), tmp / "logs")
    out = {}
    try:
        with serve_in_thread(build_app(Victim.from_checkpoint(tmp / "gin.pt"), keys)) as url:
            for method, argv in runs.items():
                os.environ["MOLLEAK_API_KEY"] = method
                rc = molleak(["-q", "extract", "--victim", url, "--aux", str(tmp / "aux.smi"), *argv, "--k", "50",
                              "--seed", str(seed), "--workers", "1", "--out", str(tmp / method)])
                assert rc == 0, f"extract --method {method} failed"
                queries = json.loads((tmp / method / "extract.json").read_text())["queries"]
                out[f"served: extract --method {method} ({queries} queries, query log)"] = \
                    read_query_log(tmp / "logs" / f"{method}.jsonl")
    finally:
        keys.close()
    return out


def main() -> None:
    from molleak.data.smiles_io import read_smiles
    from molleak.serve.monitor import MonitorConfig, monitor_stream

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", type=Path, help="a prepared tier: also screen its aux_external.smi")
    parser.add_argument("--length", type=int, default=1000, help="molecules per benign screen (default: 1000)")
    parser.add_argument("--library", type=int, default=0,
                        help="also search around the leads among this many random MOSES train molecules")
    parser.add_argument("--served", action="store_true", help="also run policy and adapter extraction over HTTP")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    mols = read_smiles(FIXTURE).smiles
    rng = np.random.default_rng(args.seed)
    attack: dict = {**enumeration_streams(mols, args.seed), **membership_streams(mols)}
    if args.served:
        attack.update(served_streams(mols, args.seed))
    benign = {f"virtual screen, fixture ({args.length} random)":
              [mols[i] for i in rng.permutation(len(mols))[:args.length]]}
    if args.tier:
        ext = read_smiles(args.tier / "aux_external.smi").smiles
        benign[f"virtual screen, aux_external ({args.length} random)"] = \
            [ext[i] for i in rng.permutation(len(ext))[:args.length]]
    leads = [mols[i] for i in np.random.default_rng(args.seed + 1).choice(len(mols), 5, replace=False)]
    benign.update(similarity_streams(mols, leads, 300, "fixture"))
    if args.library:
        from molleak.data.sources import read_moses

        train = read_moses("train")
        library = [train[i] for i in np.random.default_rng(args.seed + 2).choice(len(train), args.library, replace=False)]
        benign.update(similarity_streams(library, leads, 300, f"{args.library} MOSES"))
    cfg = MonitorConfig()
    print(f"window {cfg.window}, from molecule {cfg.min_queries}; fires on {cfg.thresholds()}")
    print("| stream | kind | molecules | fired | after | rules | one_edit | scaffold_repeat | fragments | mean Tc | hubs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, streams in (("attack", attack), ("benign", benign)):
        for name, stream in streams.items():
            smiles, times = stream if isinstance(stream, tuple) else (stream, None)
            t0 = time.perf_counter()
            r = monitor_stream(smiles, times, config=cfg)
            s = r.stats if r.fired else {**r.stats, **{k: v for k, v in r.peak.items()}}
            mark = "" if r.fired else " (peak)"
            cells = " | ".join(f"{s[k]:.2f}{mark}" for k in ("one_edit", "scaffold_repeat", "fragments"))
            print(f"| {name} | {kind} | {len(dict.fromkeys(smiles))} | {'yes' if r.fired else 'no'} | {r.at if r.fired else '-'} | "
                  f"{', '.join(r.rules) or '-'} | {cells} | {s['mean_tanimoto']:.3f} | {s['hubs']:.2f} |", flush=True)
            print(f"{name}: monitored in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
