"""`molleak report`: one self-contained HTML audit report of a run, benchmark or demo directory."""

from __future__ import annotations

import argparse

from molleak.cli.common import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write one self-contained HTML audit report of a directory of runs",
        description="Render every run directory, benchmark table and attribution result under DIR into one HTML "
                    "file that opens without a network: the headline table with base rates and controls, the "
                    "leakage verdict, tables with intervals, precision@K, alpha and ROC figures, the policy's "
                    "learning curve, the top molecules and the provenance. Whatever is missing is named.",
    )
    p.add_argument("dir", metavar="DIR", help="a run directory, a benchmark directory, or a folder of them")
    p.add_argument("--out", help="the HTML file to write (default: DIR/report.html)")
    p.add_argument("--private", help="label the pools against this private set (read only when given; the "
                                     "report says so); by default hits come only from the evaluation's files")
    p.add_argument("--top", type=positive_int, default=24, help="molecules drawn per run (default: 24)")
    p.add_argument("--max-grid-runs", type=positive_int, default=8, help="runs drawn in the molecule grid (default: 8)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.report import write_report

    summary = write_report(args.dir, args.out, private=args.private, top_n=args.top, max_grid_runs=args.max_grid_runs)
    missing = f"; nothing to show in: {', '.join(summary.missing)}" if summary.missing else ""
    print(f"wrote {summary.path} ({summary.runs} runs, {summary.evaluated} evaluated, {summary.victims} victims"
          f"{missing})")
    return 0
