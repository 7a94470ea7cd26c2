"""`molleak defences`: the privacy-utility curve (DP-SGD levels and output noise against attack power).

    molleak defences --data TIER_DIR --out DIR [--epsilons inf,100,10,1] [--noise-scales 0.1,0.3,1]
        [--seeds 0,1,2] [--shadows 4] [--canaries 128] [--workers 2]

Prints, per defence level, the primary membership attacks' AUC and TPR at 1% FPR (mean and range
over victim seeds), how many victims are detected after Holm across the curve, the linear-probe
utility, the accountant's epsilon and the one-run empirical lower bound on it, and the cheapest
setting that removes the detected leakage. Writes `defences.json`; `molleak report DIR` renders it.
Resumable: every victim, shadow and statistic is a cell of the runner.
"""

from __future__ import annotations

import argparse

from molleak.cli.common import add_backend, add_seed, output_dir, plan_executor, positive_int
from molleak.cli.power import _ints, _names


def _epsilons(text: str) -> tuple[float | None, ...]:
    out: list[float | None] = []
    for t in (x.strip() for x in text.split(",") if x.strip()):
        if t.lower() in ("inf", "none"):
            out.append(None)
            continue
        try:
            value = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected epsilons like inf,100,10,1, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"epsilons must be positive (inf for no DP), got {t}")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError("give at least one epsilon")
    return tuple(out)


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"noise scales must be positive, got {text!r}")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("defences", help="the privacy-utility curve of DP-SGD and output noise",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="a tier directory (`molleak data prepare`)")
    p.add_argument("--out", required=True, type=output_dir)
    p.add_argument("--strategy", default="edgepred", help="a strategy whose loss is per molecule (DP-SGD)")
    p.add_argument("--layers", type=positive_int, default=2)
    p.add_argument("--emb-dim", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--canaries", type=positive_int, default=128,
                   help="holdout molecules, each in the training set with probability 1/2")
    p.add_argument("--epsilons", type=_epsilons, default=(None, 100.0, 10.0, 1.0),
                   help="DP-SGD targets (inf: ordinary training); default inf,100,10,1")
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--noise-scales", type=_scales, default=(0.1, 0.3, 1.0),
                   help="output noise std as multiples of the embeddings' RMS; empty string for none")
    p.add_argument("--seeds", type=_ints, default=(0, 1, 2), help="victim training seeds")
    p.add_argument("--shadows", type=positive_int, default=4)
    p.add_argument("--probe-targets", type=_names, default=("freesolv", "solubility", "bbb"))
    p.add_argument("--workers", type=positive_int, default=1)
    add_seed(p)
    add_backend(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from molleak.evaluate.probe import check_targets
    from molleak.plans.defences import DefencePlan, format_summary, run_defences
    from molleak.plans.runner import LocalExecutor
    from molleak.plans.shadows import ShadowPlan
    from molleak.runs import resolve_seed, start_run

    check_targets(list(args.probe_targets))
    seed = resolve_seed(args.seed)
    plan = DefencePlan(strategy=args.strategy, encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim},
                       epochs=args.epochs, batch_size=args.batch_size, canaries=args.canaries,
                       epsilons=args.epsilons, delta=args.delta, max_grad_norm=args.max_grad_norm,
                       noise_scales=args.noise_scales, victim_seeds=args.seeds, probe_targets=args.probe_targets,
                       seed=seed, shadow=ShadowPlan(n_shadows=args.shadows, n_population=100, seed=seed))
    start_run(args.out, {"verb": "defences", "data": args.data, "plan": asdict(plan)}, seed)
    executor = plan_executor(args, args.workers) or LocalExecutor(args.workers)
    results = run_defences(args.data, args.out, plan, executor=executor, progress=True)
    print("\n".join(format_summary(results["summary"])))
    return 0
