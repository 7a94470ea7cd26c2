"""`molleak label`: substructure / exact / count labels of candidates against a bank of molecules."""

from __future__ import annotations

import argparse
from pathlib import Path

from molleak.cli.common import output_file, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label",
        help="label candidates against a bank (substructure, exact, count)",
        description="Label each unique candidate against a bank of molecules: substructure hit, exact hit "
                    "and how many bank molecules contain it (chirality ignored). Writes a TSV.",
    )
    p.add_argument("--candidates", required=True, help="a pool file (.tsv/.tsv.gz) or a SMILES file")
    p.add_argument("--bank", required=True, help="SMILES file of the bank molecules")
    p.add_argument("--out", required=True, type=output_file, help="labels TSV to write (smiles, substructure, exact, count)")
    p.add_argument("--no-counts", action="store_true",
                   help="stop at the first matching bank molecule (faster; count is written as -1)")
    p.add_argument("--cache-dir", default=None,
                   help="label and bank-index cache (default: $MOLLEAK_CACHE_DIR or ~/.cache/molleak)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the disk cache")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all usable cores)")
    p.set_defaults(func=run)


def read_candidates(path: str) -> list[str]:
    """Unique candidate SMILES of a pool file (.tsv with the pool header, or .tsv.gz), or of a SMILES file."""
    from molleak.candidates.pool import HEADER, iter_pool, unique_smiles
    from molleak.data.smiles_io import read_smiles
    from molleak.errors import InputFileError

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"candidates file not found: {p}")
    if not p.is_file():
        raise InputFileError(f"candidates file {p} is not a file")
    is_pool = p.name.endswith(".tsv.gz")  # gzipped: only a pool file (iter_pool names what is wrong)
    if p.name.endswith(".tsv"):
        with open(p, "rb") as fh:
            is_pool = fh.readline().rstrip(b"\r\n") == HEADER.encode()
    if is_pool:
        smiles = unique_smiles(iter_pool(p))
        if not smiles:
            raise InputFileError(f"candidate pool is empty: {p}")
        return smiles
    return read_smiles(p, what="candidates file").smiles


def run(args: argparse.Namespace) -> int:
    from molleak.oracle import Bank, label

    cache = False if args.no_cache else args.cache_dir
    candidates = read_candidates(args.candidates)
    bank = Bank.from_file(args.bank, what="bank", cache_dir=cache, workers=args.workers)
    labels = label(candidates, bank, workers=args.workers, counts=not args.no_counts, cache_dir=cache)
    labels.write(args.out)
    print(f"labelled against {len(bank)} bank molecules ({args.bank}): {labels.summary()}; wrote {args.out}")
    return 0
