"""`molleak embed`: query a victim for the embeddings of a SMILES file."""

from __future__ import annotations

import argparse
import time

import numpy as np

from molleak.cli.common import output_file, positive_int
from molleak.data.smiles_io import read_smiles
from molleak.runs import write_atomic
from molleak.victims.open import open_victim


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed molecules with a victim",
                       description="Embed a SMILES file with a victim checkpoint; writes a .npy array.")
    p.add_argument("--victim", required=True, help="victim: a checkpoint (molleak or pretrain-gnns state_dict), "
                                                   "http://host:port (a served victim) or module:callable")
    p.add_argument("--smiles", required=True, help="SMILES file")
    p.add_argument("--out", required=True, type=output_file, help="output .npy file (rows follow the file's unique valid SMILES)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    victim = open_victim(args.victim, batch_size=args.batch_size)
    mols = read_smiles(args.smiles, what="SMILES file")
    t0 = time.perf_counter()
    emb = victim.embed(mols.smiles)
    dt = time.perf_counter() - t0
    import io

    buf = io.BytesIO()
    np.save(buf, emb)
    write_atomic(args.out, buf.getvalue())
    print(f"embedded {len(mols)} molecules ({mols.summary()}) into {emb.shape} in {dt:.1f} s "
          f"({len(mols) / max(dt, 1e-9):.0f} mol/s); wrote {args.out}")
    return 0
