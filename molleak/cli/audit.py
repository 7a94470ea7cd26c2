"""`molleak audit` and `molleak demo`: the whole audit from a config."""

from __future__ import annotations

import argparse
import logging
import time

from molleak.cli.common import add_backend, plan_executor, positive_int
from molleak.config import load_audit_file
from molleak.plans.audit import format_table, run_audit

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit",
        help="run a whole audit from a TOML config (resumable)",
        description="Prepare data, pre-train the victim and its controls, extract, evaluate, attribute and report. "
                    "Rerunning the same command resumes.",
    )
    p.add_argument("--config", required=True, help="audit config (TOML); see molleak/configs/demo.toml. Its "
                   "optional [backend] section (kind = local|ray, address, workers) says where the cells run; "
                   "--backend / --address override it")
    p.add_argument("--out", required=True, help="audit directory")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--force", action="store_true",
                   help="--out holds an audit of another config: discard it and start afresh (default: refuse)")
    p.add_argument("--victim", metavar="CHECKPOINT",
                   help="audit this victim (e.g. from `molleak import-victim`, or a raw pretrain-gnns .pth) instead of "
                        "pre-training the config's recipe. Its training set is unknown here: the one-step attack runs "
                        "and its top-K is compared with the victim-free prior's; nothing is scored against a training "
                        "set (no precision, reference victim or attribution)")
    add_backend(p)
    _add_workers(p)
    p.set_defaults(func=run)
    d = sub.add_parser(
        "demo",
        help="the whole audit on the embedded MOSES `small` tier (about 15 minutes on 2 cores)",
        description="Run the shipped demo audit (molleak/configs/demo.toml): MOSES small tier, an AttrMasking "
                    "victim, its reference victim, one- and two-step extraction, evaluation, report.",
    )
    d.add_argument("--out", default="demo_out", help="audit directory (default: demo_out)")
    d.add_argument("--tier", choices=["tiny", "small", "standard"], default=None,
                   help="override the demo's data tier (tiny: a 2-minute smoke run)")
    d.add_argument("--no-progress", action="store_true", help="hide progress bars")
    d.add_argument("--force", action="store_true",
                   help="--out holds an audit of another config: discard it and start afresh (default: refuse)")
    add_backend(d)
    _add_workers(d)
    d.set_defaults(func=run, config=None)


def _add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="local backend: cells run at once, each in its own process (default: the [backend] "
                             "section's, else every usable core). Workers change no number: each computes on "
                             "this process's thread count")


def _executor(args: argparse.Namespace, backend):
    """The audit's executor: on the local backend, one worker per usable core unless told otherwise.

    The audit's independent cells (the victim and its reference victim, the extraction methods)
    then run side by side; a 1-core machine runs them in this process as before.
    """
    from molleak.config import BackendConfig
    from molleak.threads import usable_cpus

    backend = backend or BackendConfig()
    workers = args.workers or backend.workers
    if workers is None and (args.backend or backend.kind) == "local":
        workers = usable_cpus()
    return plan_executor(args, workers, config=backend)


def run(args: argparse.Namespace) -> int:
    config, backend = load_audit_file(args.config)  # backend: the file's [backend] section (flags win)
    if getattr(args, "tier", None):
        config.data.tier = args.tier
    t0 = time.perf_counter()
    executor = _executor(args, backend)
    try:
        if getattr(args, "victim", None):
            from molleak.plans.unknown_training_set import overlap_lines, run_given_victim

            summary = run_given_victim(config, args.out, args.victim, force=args.force, executor=executor)
            print("\n".join(overlap_lines(summary["unknown_training_set"])))
            print(f"audit finished in {time.perf_counter() - t0:.0f} s; results in {args.out}/audit.json")
            return 0
        summary = run_audit(config, args.out, progress=not args.no_progress, force=args.force, executor=executor)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    print(format_table(summary["headline"]))
    for name, verdict in summary.get("verdicts", {}).items():
        print(f"{name}: {verdict}")
    print(f"audit finished in {time.perf_counter() - t0:.0f} s; results in {args.out}/audit.json"
          + (f"; report: {summary['report']}" if summary.get("report") else ""))
    return 0
