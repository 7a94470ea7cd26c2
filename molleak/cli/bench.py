"""`molleak bench`: run (or resume) a benchmark suite and aggregate it into table.md / table.json."""

from __future__ import annotations

import argparse

from molleak.cli.common import add_backend, add_config, apply_config, plan_executor, positive_int
from molleak.config import BenchFileConfig


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    from molleak.plans.bench.suites import SUITES

    p = sub.add_parser(
        "bench", help="run a benchmark suite (the paper's tables, with controls)",
        description="Run the cells of a suite (each an extraction run directory under OUT/cells/, evaluated "
                    "against the tier's private set), skipping cells already finished, then write OUT/table.md "
                    "and OUT/table.json (mean and 95%% bootstrap interval over seeds). The settings are recorded "
                    "in OUT/config.json; every one can be changed with --set KEY=VALUE, or given in a TOML --config "
                    "FILE (keys: suite, out, bootstrap and the settings; command-line options win).",
    )
    p.add_argument("--suite", choices=[*SUITES, "all"], help="which table to produce; required")
    p.add_argument("--tier", default="tiny", help="MOSES tier prepared under OUT/data (default: tiny)")
    p.add_argument("--data", help="an existing tier directory to use instead of preparing one")
    p.add_argument("--seeds", type=positive_int, default=None, help="attack seeds per cell (default 1)")
    p.add_argument("--victims", type=_names, help="comma-separated zoo victims (default: attrmask)")
    p.add_argument("--epochs", type=positive_int, help="pre-training epochs of every victim")
    p.add_argument("--receptors", help="directory holding fa7.pdbqt, parp1.pdbqt, 5ht1b.pdbqt (dock cells are "
                                       "skipped without it)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="overrides",
                   help="one bench setting, repeatable, value read as JSON when it parses "
                        "(e.g. two_step_templates=3, encoder_config='{\"num_layers\": 3, \"emb_dim\": 64}')")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--out", help="bench directory (resumed when it exists); required")
    add_backend(p)
    add_config(p, BenchFileConfig, required=("suite", "out"))
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace):
    """The BenchConfig from the --config file, then the named flags, then --set overrides."""
    from dataclasses import fields

    from molleak.cli.extract import parse_options
    from molleak.plans.bench.suites import BenchConfig

    apply_config(args)  # the file's settings land on args unless a flag gave them
    values = {f.name: getattr(args, f.name) for f in fields(BenchConfig) if getattr(args, f.name, None) is not None}
    values.update(parse_options(args.overrides))
    return BenchConfig.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from molleak.plans.bench.runner import run_bench

    config = build_config(args)
    summary = run_bench(args.suite, args.out, config, n_boot=args.bootstrap, executor=plan_executor(args))
    print(f"bench {args.suite}: {summary['cells']} cells ({summary['done']} done, {summary['resumed']} resumed, "
          f"{summary['skipped']} skipped) in {summary['seconds']:.0f} s; tables in {args.out}/table.md")
    return 0
