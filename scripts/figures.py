"""Write or check the demo's headline tables in README.md and BENCHMARKS.md from a `molleak demo` run.

    python scripts/figures.py --write demo_out            # replace the `demo-small` blocks with demo_out's table
    python scripts/figures.py --check demo_out            # exit 1 with a diff if the documents differ from it
    python scripts/figures.py --check /tmp/tiny_demo      # a `molleak demo --tier tiny` run: the `demo-tiny` blocks
    python scripts/figures.py --write demo_out seeds/s1 seeds/s2 seeds/s3 seeds/s4
                                                          # the demo config at several victim seeds: `demo-small-seeds`

The block is chosen by the run's tier (`demo-<tier>`); the run must be of the shipped demo config.
Rendering and checking live in `molleak.report.docblocks`. `make check-figures` runs the tiny demo from
scratch and checks its blocks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from molleak.errors import MolleakError
from molleak.report.docblocks import (
    check_blocks,
    demo_block_name,
    render_block,
    render_seeds_block,
    seeds_block_name,
    write_blocks,
)

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="replace the documented blocks with the run's table")
    mode.add_argument("--check", action="store_true", help="exit 1 with a diff if the documents differ from the run")
    p.add_argument("audit_dirs", metavar="DIR", nargs="+",
                   help="a finished `molleak demo` directory (holds audit.json); several: runs of the demo config "
                        "differing only in the victim seed (`molleak audit` with [victim] seed changed)")
    p.add_argument("--docs", nargs="+", type=Path, default=[ROOT / "README.md", ROOT / "BENCHMARKS.md"],
                   help="the documents (default: README.md and BENCHMARKS.md)")
    args = p.parse_args(argv)
    try:
        if len(args.audit_dirs) == 1:
            name, content = demo_block_name(args.audit_dirs[0]), render_block(args.audit_dirs[0])
        else:
            name, content = seeds_block_name(args.audit_dirs), render_seeds_block(args.audit_dirs)
        if args.write:
            changed = write_blocks(args.docs, name, content)
            print(f"{name}: " + (f"wrote {', '.join(map(str, changed))}" if changed else "documents already agree"))
            return 0
        diff = check_blocks(args.docs, name, content)
    except MolleakError as e:
        print(f"figures: error: {e}", file=sys.stderr)
        return 2
    if diff:
        sys.stdout.write(diff)
        print(f"{name}: the documents differ from {' '.join(args.audit_dirs)} (rewrite them from a run with --write)")
        return 1
    print(f"{name}: the documents agree with {' '.join(args.audit_dirs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
