"""`molleak import-victim`: turn a published pretrain-gnns state_dict into a victim checkpoint with provenance."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from molleak.cli.common import output_file
from molleak.errors import CheckpointError
from molleak.models.checkpoint import FORMAT, load_encoder, read_checkpoint_file, save_checkpoint
from molleak.runs import package_versions, sha256_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-victim",
        help="import a published pretrain-gnns checkpoint as a victim",
        description="Load a pretrain-gnns GIN state_dict (e.g. supervised_contextpred.pth) unchanged and save it "
        "as a molleak victim checkpoint that records where it came from.",
    )
    p.add_argument("source", help="the pretrain-gnns .pth file (a state_dict; a `gnn.` prefix is stripped)")
    p.add_argument("--out", required=True, type=output_file, help="victim checkpoint to write (e.g. zoo/contextpred_published.pt)")
    p.add_argument("--strategy", default="imported", help="the pre-training strategy the publisher used")
    p.add_argument("--training-set", default="unknown",
                   help="what the publisher trained on (free text, recorded in the provenance)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    src = Path(args.source)
    if read_checkpoint_file(src).get("format") == FORMAT:
        raise CheckpointError(f"{src} is already a molleak victim checkpoint; use it directly")
    encoder, _ = load_encoder(src)
    provenance = {
        "strategy": args.strategy,
        "source": "pretrain-gnns state_dict",
        "source_file": str(src.resolve()),
        "source_sha256": sha256_file(src),
        "training_set": args.training_set,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
    }
    save_checkpoint(args.out, encoder, provenance)
    cfg = encoder.config()
    print(f"imported {src} ({cfg['num_layers']}x{cfg['emb_dim']} GIN, strategy {args.strategy}) -> {args.out}")
    return 0
