"""`molleak power`: the power ladder (canaries planted r times; shadow-model detection at 1% FPR).

    molleak power --data TIER_DIR --out DIR [--strategies attrmask,graphcl,graphmae] [--rungs overfit,light]
        [--repeats 1,2,4,8,16,32] [--per-family 4] [--decoys 100] [--seeds 0,1,2] [--shadows 8] [--workers 2]

Prints, per rung, strategy and canary family (MOSES, external), the fraction of canaries seen r
times that the shadow-model attack catches at 1% FPR, white box beside black box. Resumable.
"""

from __future__ import annotations

import argparse

from molleak.cli.common import add_backend, add_seed, output_dir, plan_executor, positive_int
from molleak.runs import resolve_seed, start_run


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _names(text: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("power", help="the power ladder: canary detection at 1%% FPR against repetitions",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a tier directory (`molleak data prepare`)")
    p.add_argument("--out", required=True, type=output_dir)
    p.add_argument("--strategies", type=_names, default=("attrmask", "graphcl", "graphmae"))
    p.add_argument("--rungs", type=_names, default=("overfit",), help="from molleak.plans.power.RUNGS")
    p.add_argument("--repeats", type=_ints, default=(1, 2, 4, 8, 16, 32))
    p.add_argument("--per-family", type=positive_int, default=4, help="canaries per family and r")
    p.add_argument("--decoys", type=positive_int, default=100, help="unplanted decoys per family")
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2), help="victim training seeds")
    p.add_argument("--shadows", type=positive_int, default=8)
    p.add_argument("--statistics", type=_names, default=("loss", "norm", "invariance"))
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--n-boot", type=positive_int, default=200,
                   help="bootstrap resamples of each per-seed row (descriptive; the ladder's test pools seeds)")
    add_seed(p)
    add_backend(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from molleak.plans.power import LadderPlan, format_ladder, run_power_ladder
    from molleak.plans.runner import LocalExecutor
    from molleak.plans.shadows import ShadowPlan

    seed = resolve_seed(args.seed)
    plan = LadderPlan(strategies=args.strategies, rungs=args.rungs, repeats=args.repeats, per_family=args.per_family,
                      decoys=args.decoys, victim_seeds=args.seeds, seed=seed,
                      shadow=ShadowPlan(n_shadows=args.shadows, statistics=args.statistics, seed=seed,
                                        n_boot=args.n_boot))
    start_run(args.out, {"verb": "power", "data": args.data, "plan": asdict(plan)}, seed)
    executor = plan_executor(args, args.workers) or LocalExecutor(args.workers)
    results = run_power_ladder(args.data, args.out, plan, executor=executor, progress=True)
    print("\n".join(format_ladder(results)))
    return 0
