"""`molleak serve`: put a victim behind HTTP (API keys, budgets, rate limits, a query log)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from molleak.cli.common import positive_int
from molleak.errors import MolleakError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a victim over HTTP to API keys",
        description="Serve a victim (checkpoint or module:callable) on POST /v1/embed and GET /health. Each key of "
                    "--keys (TOML or JSON: [keys.NAME] sha256, budget, rate, burst) has a query budget and a rate "
                    "limit, and each answered request is appended to NAME.jsonl under --log-dir. Attack it with "
                    "`molleak extract --victim http://HOST:PORT` and the key in MOLLEAK_API_KEY. Needs the `serve` "
                    "extra (fastapi, uvicorn).",
    )
    p.add_argument("--victim", required=True, help="victim checkpoint or module:callable plug-in")
    p.add_argument("--keys", required=True, help="API keys file (TOML, or JSON if it ends in .json)")
    p.add_argument("--log-dir", help="query logs, one NAME.jsonl per key (default: query_logs beside --keys)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free port)")
    p.add_argument("--max-batch", type=positive_int, default=512, help="most molecules per request (default: 512)")
    p.add_argument("--max-body-bytes", type=positive_int, default=1 << 20,
                   help="largest request body in bytes (default: 1 MiB)")
    p.add_argument("--max-smiles-length", type=positive_int, default=1000,
                   help="longest SMILES in characters (default: 1000)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="molecules per forward pass (default: 64)")
    p.add_argument("--defence", action="append", metavar="KEY=VALUE",
                   help="output defence for every key without its own [keys.NAME.defence] (repeatable): "
                        "noise_std=S (Gaussian, the same answer for the same key and molecule), quantize_bits=B with "
                        "quantize_range=[LO,HI], round_decimals=D, normalize=true, top_k=K "
                        "(molleak.serve.defences; default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise MolleakError(f"--port must be 0..65535, got {args.port}")
    try:
        import uvicorn

        from molleak.serve.app import Limits, build_app
    except ImportError as exc:
        raise MolleakError(f"molleak serve needs the serve extra (pip install 'molleak[serve]'): {exc}") from None
    from molleak.serve.defences import parse_defence_options
    from molleak.serve.keys import Keys, load_keys
    from molleak.victims.open import open_victim, spec_kind

    if spec_kind(args.victim) == "http":
        raise MolleakError("molleak serve serves a checkpoint or a module:callable plug-in, not another server")
    keys_file = load_keys(args.keys)
    defence = parse_defence_options(args.defence)
    victim = open_victim(args.victim, batch_size=args.batch_size)
    log_dir = Path(args.log_dir) if args.log_dir else Path(args.keys).parent / "query_logs"
    keys = Keys(keys_file, log_dir, defence)
    limits = Limits(max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
                    max_smiles_length=args.max_smiles_length)
    app = build_app(victim, keys, limits)
    print(f"serving {victim.label} (dim {victim.dim}) to {len(keys.states)} keys on http://{args.host}:{args.port}; "
          f"query logs in {log_dir}; output defence: {defence.describe()}", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        keys.close()
    return 0
