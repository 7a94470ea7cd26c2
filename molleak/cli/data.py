"""`molleak data prepare`: build a MOSES tier's private and attacker sets."""

from __future__ import annotations

import argparse
import logging

from molleak.cli.common import add_seed, output_dir
from molleak.data.splits import TIERS, prepare_tier
from molleak.runs import resolve_seed

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare datasets", description="Prepare datasets.")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = dsub.add_parser(
        "prepare",
        help="write a MOSES tier: private, aux, holdout, reference, aux_shifted, aux_external",
        description="Write a MOSES tier's disjoint sets and manifest.json into --out.",
    )
    prep.add_argument("--tier", choices=sorted(TIERS), default="tiny", help="size tier (default: tiny)")
    add_seed(prep)
    prep.add_argument("--out", required=True, type=output_dir, help="output directory")
    prep.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    seed = resolve_seed(args.seed)
    manifest = prepare_tier(args.tier, seed, args.out)
    counts = ", ".join(f"{k} {v['count']}" for k, v in manifest["files"].items())
    print(f"wrote tier {args.tier} (seed {seed}) to {args.out}: {counts} in {manifest['seconds']} s")
    return 0
