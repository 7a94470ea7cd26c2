"""`molleak extract`: one extraction run (build or reuse the pool, query the victim, score, top-K)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from molleak.cli.common import add_config, add_seed, positive_int
from molleak.errors import MolleakError


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs; values are read as JSON when they parse (numbers, lists), else as text."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise MolleakError(f"--option expects key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_templates(text: str | list[int] | None) -> list[int] | None:
    if text is None or isinstance(text, list):  # a list comes from a --config file
        return text
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise MolleakError(f"--templates expects comma-separated template indices, got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    from molleak.attack.methods import method_names
    from molleak.attack.run import ExtractConfig
    from molleak.config import optional_fields

    p = sub.add_parser(
        "extract", help="run an extraction attack on a victim",
        description="Build (or reuse) the candidate pool, query the victim, label the pool against the aux set, "
                    "score it with --method and write the ranked top-K into --out. Never reads a private set. "
                    "--config FILE gives the options from TOML (templates as a list, the method's options as an "
                    "[options] table; --force only on the command line).",
    )
    p.add_argument("--victim", help="victim: a checkpoint, http://host:port (a served victim; key in MOLLEAK_API_KEY) "
                                    "or module:callable (a plug-in); needed by every method but the victim-free ones")
    p.add_argument("--aux", help="the attacker's auxiliary SMILES file (weak labels, vocabulary); required")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--vocab", help="vocabulary directory (templates.smi, motifs.smi); mined from --aux if omitted")
    src.add_argument("--pool", help="an existing candidate pool file to reuse (.tsv or .tsv.gz)")
    p.add_argument("--steps", type=positive_int, default=1, help="assembly steps when enumerating (default: 1)")
    p.add_argument("--templates", help="comma-separated template indices to enumerate (default: all)")
    p.add_argument("--method", default="adapter", choices=method_names(), help="scoring or search method")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a method option, repeatable (e.g. alpha=0.5, target=fa7, subsample=300); "
                        "overrides the same key of the --config file's [options]")
    p.add_argument("--k", type=positive_int, default=200, help="molecules to output (default: 200)")
    p.add_argument("--budget", type=positive_int, help="most victim queries (molecules computed)")
    p.add_argument("--workers", type=positive_int, help="worker processes for enumeration and labelling")
    add_seed(p)
    p.add_argument("--out", help="run directory to write; required")
    p.add_argument("--force", action="store_true",
                   help="--out holds a run made from other inputs: discard it and start afresh (default: refuse)")
    add_config(p, optional_fields(ExtractConfig, exclude=("force", "role"), name="ExtractFileConfig"),
               required=("aux", "out"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.attack.run import extract_config, run_extract

    options = {**(getattr(args, "options", None) or {}), **parse_options(args.option)}  # flags win per key
    config = extract_config(force=args.force, out=args.out, aux=args.aux, victim=args.victim, vocab=args.vocab,
                            pool=args.pool, steps=args.steps, templates=parse_templates(args.templates),
                            method=args.method, options=options, k=args.k, budget=args.budget, seed=args.seed,
                            workers=args.workers)
    summary = run_extract(config)
    pool = summary.get("pool", {})
    print(f"{args.method}: ranked {summary['n_scored']} molecules"
          + (f" of a pool of {pool['unique']} ({pool['records']} records)" if pool else "")
          + f"; top {summary['n_topk']} in {args.out}/topk.tsv; {summary['queries']} victim queries; "
          f"{summary['seconds_score']:.1f} s scoring / {summary['seconds_total']:.1f} s total")
    return 0
