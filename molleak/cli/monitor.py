"""`molleak monitor`: flag extraction-shaped traffic in served victims' query logs."""

from __future__ import annotations

import argparse

from molleak.errors import MolleakError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor", help="flag extraction-shaped traffic in a query log",
        description="Read query logs of `molleak serve` (one NAME.jsonl per key) and flag extraction-shaped "
                    "traffic: over a sliding window of the last 100 distinct molecules, the share with a one-edit "
                    "neighbour in the window (fires at 0.25), the share on a repeated Bemis-Murcko scaffold "
                    "(0.6), the share of fragments of at most 6 heavy atoms (0.2); checked from the 50th molecule "
                    "on. Thresholds are fixed by design (molleak.serve.monitor). A .smi / .txt file is read as a "
                    "list of SMILES in query order.",
    )
    p.add_argument("logs", nargs="+", metavar="LOG", help="query log (.jsonl) or SMILES file in query order")
    p.add_argument("--exit-code", action="store_true", help="exit 1 if any log fired (for cron jobs)")
    p.set_defaults(func=run)


def _read(path: str) -> tuple[list[str], list[float] | None]:
    from molleak.serve.monitor import read_query_log

    if path.endswith((".smi", ".txt", ".smi.gz")):
        from molleak.data.smiles_io import read_smiles

        return read_smiles(path, canonicalize=False).smiles, None
    return read_query_log(path)


def _fmt(stats: dict) -> str:
    parts = [f"{k}={v:.2f}" for k, v in stats.items() if k != "window" and isinstance(v, float)]
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from molleak.serve.monitor import MonitorConfig, monitor_stream

    cfg = MonitorConfig()
    any_fired = False
    for path in args.logs:
        smiles, times = _read(path)
        if not smiles:
            raise MolleakError(f"query log {path}: no queries")
        result = monitor_stream(smiles, times, cfg)
        invalid = f", {result.invalid} unparsable skipped" if result.invalid else ""
        if result.fired:
            any_fired = True
            print(f"{path}: ALERT after {result.at} molecules ({', '.join(result.rules)}): {_fmt(result.stats)}")
        else:
            peak = ", ".join(f"{k}={v:.2f}" for k, v in result.peak.items()) or "under 50 molecules, not checked"
            print(f"{path}: quiet over {result.molecules} molecules{invalid}; peaks: {peak} "
                  f"(thresholds {', '.join(f'{k}={v:g}' for k, v in cfg.thresholds().items())})")
    return 1 if args.exit_code and any_fired else 0
