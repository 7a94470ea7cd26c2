"""`molleak membership`: shadow-model membership inference (LiRA, RMIA) against one victim, white box and black box.

    molleak membership --victim V.pt --members TIER/private.smi --nonmembers TIER/holdout.smi \
        --population TIER/aux.smi TIER/reference.smi --shadows 8 --targets 200 --out DIR

The owner's audit: members are drawn from the victim's training set, non-members from the same
distribution; the attack (shadows trained with the victim's recipe and seeds of their own, on random
halves of the targets filled from the population) never sees which is which. Resumable: rerun the
same command to continue.
"""

from __future__ import annotations

import argparse

from molleak.cli.common import add_backend, add_seed, output_dir, plan_executor, positive_int
from molleak.errors import MolleakError
from molleak.runs import resolve_seed, start_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("membership", help="shadow-model membership inference (LiRA, RMIA) against a victim",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--victim", required=True, help="the victim checkpoint (a molleak victim: its recipe is needed)")
    p.add_argument("--members", required=True, help="the victim's training set (SMILES file)")
    p.add_argument("--nonmembers", required=True, help="molecules of the same distribution it never saw")
    p.add_argument("--population", required=True, nargs="+",
                   help="the attacker's molecules (shadow training filler and RMIA's population)")
    p.add_argument("--out", required=True, type=output_dir, help="audit directory")
    p.add_argument("--targets", type=positive_int, default=200, help="members and as many non-members to test")
    p.add_argument("--shadows", type=positive_int, default=8, help="shadow models (even)")
    p.add_argument("--statistics", default="loss,norm,invariance",
                   help="comma-separated: loss (white box), norm, invariance (black box)")
    p.add_argument("--draws", type=positive_int, default=4, help="fixed mask/augmentation draws per white-box loss")
    p.add_argument("--rmia-population", type=positive_int, default=200, help="RMIA population molecules")
    p.add_argument("--workers", type=positive_int, default=1, help="local worker processes for shadows")
    add_seed(p)
    add_backend(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.plans.runner import LocalExecutor
    from molleak.plans.shadows import ShadowPlan, format_rows, shadow_audit

    statistics = tuple(s.strip() for s in args.statistics.split(",") if s.strip())
    if not statistics:
        raise MolleakError("--statistics: give at least one statistic")
    seed = resolve_seed(args.seed)
    plan = ShadowPlan(n_shadows=args.shadows, statistics=statistics, draws=args.draws,
                      n_population=args.rmia_population, seed=seed)
    start_run(args.out, {"verb": "membership", "victim": args.victim, "members": args.members,
                         "nonmembers": args.nonmembers, "population": args.population, "targets": args.targets,
                         "plan": vars(plan) | {"statistics": list(statistics)}}, seed)
    executor = plan_executor(args, args.workers) or LocalExecutor(args.workers)
    result = shadow_audit(args.victim, args.members, args.nonmembers, args.population, args.out, plan,
                          n_targets=args.targets, executor=executor, progress=True)
    print("\n".join(format_rows(result)))
    print(f"({result['n_members']} members vs {result['n_targets'] - result['n_members']} non-members; "
          f"{plan.n_shadows} shadows; Holm across {result['holm_family']} rows; * = detected at 0.05)")
    return 0
