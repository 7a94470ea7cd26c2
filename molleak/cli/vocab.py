"""`molleak vocab`: mine templates and motifs from the attacker's auxiliary set."""

from __future__ import annotations

import argparse

from molleak.cli.common import output_dir, positive_int
from molleak.data.smiles_io import read_smiles


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vocab",
        help="mine a template/motif vocabulary from an auxiliary set",
        description="Mine ring-system templates and BRICS motifs from the auxiliary SMILES (never the "
                    "private set); writes templates.smi, motifs.smi and vocab.json into --out.",
    )
    p.add_argument("--aux", required=True, help="auxiliary SMILES file")
    p.add_argument("--out", required=True, type=output_dir, help="vocabulary directory to write")
    p.add_argument("--templates", type=positive_int, default=84, help="templates to keep (default: 84)")
    p.add_argument("--motifs", type=positive_int, default=91, help="motifs to keep (default: 91)")
    p.add_argument("--min-points", type=positive_int, default=1, help="fewest template points (default: 1)")
    p.add_argument("--max-points", type=positive_int, default=4, help="most template points (default: 4)")
    p.add_argument("--max-motif-atoms", type=positive_int, default=13,
                   help="most heavy atoms in a motif (default: 13)")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all usable cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.errors import MolleakError

    if args.min_points > args.max_points:
        raise MolleakError(f"--min-points {args.min_points} is above --max-points {args.max_points}")
    aux = read_smiles(args.aux, what="auxiliary set")
    vocab = mine_vocabulary(aux.smiles, args.templates, args.motifs, min_points=args.min_points,
                            max_points=args.max_points, max_motif_atoms=args.max_motif_atoms,
                            workers=args.workers, source=str(args.aux))
    vocab.save(args.out)
    found = vocab.meta["distinct_found"]
    print(f"mined {len(vocab.templates)} templates (of {found['templates']} found) and {len(vocab.motifs)} motifs "
          f"(of {found['motifs']}; {vocab.motif_slots()} attachment slots) from {len(aux)} aux molecules "
          f"in {vocab.meta['seconds']} s; wrote {args.out}")
    return 0
