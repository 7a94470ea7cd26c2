"""Entry point: discovers the verbs in `molleak.cli`, runs one, prints user errors as one line."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import molleak
from molleak.cli.common import MolleakParser, apply_config, positive_int
from molleak.errors import MolleakError

log = logging.getLogger("molleak")


def build_parser() -> argparse.ArgumentParser:
    parser = MolleakParser(
        prog="molleak",
        description="Audit molecular pre-trained GNNs for training-data leakage.",
    )
    parser.add_argument("--version", action="version", version=f"molleak {molleak.__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    verbosity.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    parser.add_argument("--threads", dest="process_threads", type=positive_int, default=None, metavar="N",
                        help="torch threads of this process (default: 1, or MOLLEAK_THREADS=N|auto; "
                        "one count keeps trained weights the same quiet or loaded)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import molleak.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name in {"main", "common"}:
            continue
        module = importlib.import_module(f"molleak.cli.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from molleak.threads import apply_policy, prepare_runtime

    prepare_runtime()  # before build_parser imports torch: the OpenMP runtime reads it when it loads
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        apply_policy(args.process_threads)  # once, before any torch work; worker processes inherit it
        apply_config(args)  # --config FILE of the verbs that take one
        result = args.func(args)
    except MolleakError as exc:
        print(f"molleak: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("molleak: interrupted; finished steps are saved and a rerun resumes", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
