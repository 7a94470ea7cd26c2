"""`molleak zoo`: build every victim (nine pre-training strategies + the fine-tuned regression victim)."""

from __future__ import annotations

import argparse

from molleak.cli.common import add_backend, add_config, output_dir, plan_executor, positive_int, seed_int
from molleak.config import ZooFileConfig
from molleak.runs import resolve_seed, seed_everything


def register(sub: argparse._SubParsersAction) -> None:
    from molleak.victims.zoo import FINETUNE_EPOCHS, ZOO_VICTIMS

    p = sub.add_parser(
        "zoo",
        help="pre-train the whole victim zoo",
        description="Pre-train one victim per strategy on a tier's private set (<out>/<strategy>.pt), plus the "
        "regression victim fine-tuned on B3DB logBB. Victims already built for the same data and config are "
        "skipped; a half-built one resumes.",
    )
    p.add_argument("--data", help="a tier directory from `molleak data prepare`; required")
    p.add_argument("--out", type=output_dir, help="zoo directory; required")
    p.add_argument("--strategies", nargs="+", default=None, metavar="NAME",
                   help=f"victims to build (default: all: {' '.join(ZOO_VICTIMS)})")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs for every strategy (default: per-strategy defaults sized for the standard tier)")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--emb-dim", type=positive_int, default=300, help="GIN width")
    p.add_argument("--layers", type=positive_int, default=5, help="GIN depth")
    p.add_argument("--grover-hidden", type=positive_int, default=None, help="GROVER width per view")
    p.add_argument("--finetune-epochs", type=positive_int, default=FINETUNE_EPOCHS)
    p.add_argument("--regression-base", default="attrmask", help="strategy fine-tuned into the regression victim")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default 0, so reruns skip built victims)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch intra-op threads (default: the process's, 1 unless --threads / MOLLEAK_THREADS "
                   "says otherwise; another count gives other weights in the last bits)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="victims pre-trained at once, each in its own process with one torch thread "
                   "(2 on a 2-core machine); with --backend ray, the CPUs of a local Ray instance")
    add_backend(p)
    add_config(p, ZooFileConfig, required=("data", "out"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from molleak.victims.zoo import ZooConfig, build_zoo

    if args.threads:
        from molleak.threads import apply_threads

        apply_threads(args.threads, "zoo --threads")
    seed = resolve_seed(args.seed)
    seed_everything(seed)
    zoo = ZooConfig(epochs=args.epochs, seed=seed, batch_size=args.batch_size,
                    encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim},
                    grover_config={"hidden": args.grover_hidden} if args.grover_hidden else {},
                    finetune_epochs=args.finetune_epochs, regression_base=args.regression_base)
    manifest = build_zoo(args.data, args.out, args.strategies, zoo, workers=args.workers,
                         executor=plan_executor(args, args.workers))
    built = [v["victim"] for v in manifest["victims"] if v["status"] == "built"]
    skipped = [v["victim"] for v in manifest["victims"] if v["status"] == "skipped"]
    print(f"zoo {args.out}: built {len(built)} ({' '.join(built) or '-'}), skipped {len(skipped)} "
          f"({' '.join(skipped) or '-'}) in {manifest['wall_seconds']:.0f} s wall")
    return 0
