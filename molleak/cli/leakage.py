"""`molleak leakage`: attribution experiments (membership audit, canary control, memorisation sweep).

    molleak leakage --victim V.pt [--reference R.pt] --data TIER_DIR --out DIR     # audit one victim
        [--victim-run RUN_V --reference-run RUN_R]   # plus extraction attribution (private-only test)
    molleak leakage --canary --repeats 1,8,32 --epochs 5,20 --data TIER_DIR --out DIR
        [--canary-pool POOL]   # canaries from a candidate pool; the extraction attack must recover them
    molleak leakage --sweep --sizes 1000,2000 --epochs 1,5,20 --data TIER_DIR --out DIR
        [--cells 2000x50,50000x1]   # a sparse grid instead of sizes x epochs

All three are resumable: rerun the same command to continue after an interruption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from molleak.cli.common import add_seed, positive_int
from molleak.errors import MolleakError
from molleak.runs import resolve_seed, seed_everything, start_run, write_json_atomic


def int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def cell_list(text: str) -> list[tuple[int, int]]:
    """`SIZExEPOCHS` pairs, comma-separated (e.g. `2000x50,50000x1`)."""
    cells = []
    for item in (x.strip() for x in text.split(",")):
        size, sep, epochs = item.partition("x")
        try:
            cell = (int(size), int(epochs))
        except ValueError:
            cell = None
        if not sep or cell is None or min(cell) < 1:
            raise argparse.ArgumentTypeError(f"expected SIZExEPOCHS pairs such as 2000x50,50000x1, got {item!r}")
        cells.append(cell)
    return cells


def register(sub: argparse._SubParsersAction) -> None:
    from molleak.attack.membership import DEFAULT_STATISTIC, STATISTICS

    p = sub.add_parser(
        "leakage",
        help="leakage attribution: membership audit, canary control, memorisation sweep",
        description="Is what an attack recovers there because the model saw the private set? "
                    "Audit a victim against its reference victim (trained on reference.smi with the same "
                    "recipe) and untrained encoder, run the canary positive control, or a size x epochs sweep.",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--victim", help="victim checkpoint to audit")
    mode.add_argument("--canary", action="store_true", help="run the canary positive control")
    mode.add_argument("--sweep", action="store_true", help="run the memorisation sweep")
    p.add_argument("--reference", help="reference victim checkpoint (default: train one from the victim's recipe)")
    p.add_argument("--victim-run", help="audit: the victim's extraction run directory (scores.tsv), for attribution")
    p.add_argument("--reference-run",
                   help="audit: the reference victim's extraction run over the same pool, same settings")
    p.add_argument("--data", required=True, help="tier directory from `molleak data prepare`")
    p.add_argument("--out", required=True, help="run directory (resumable)")
    p.add_argument("--members", type=positive_int, default=1000,
                   help="audit / sweep: private molecules (and as many holdout ones) to test (default 1000; sweep 200)")
    p.add_argument("--neighbours", type=positive_int, default=8, help="one-edit neighbours per molecule (default 8)")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--statistic", choices=list(STATISTICS), default=DEFAULT_STATISTIC,
                   help=f"membership statistic from the victim's embeddings (default {DEFAULT_STATISTIC})")
    p.add_argument("--repeats", type=int_list, default=[1, 8, 32], help="canary: repetition counts (default 1,8,32)")
    p.add_argument("--epochs", type=int_list, default=None,
                   help="canary / sweep: epoch counts (default canary 5,20; sweep 1,5,20)")
    p.add_argument("--sizes", type=int_list, default=[1000, 2000], help="sweep: private-set sizes (default 1000,2000)")
    p.add_argument("--cells", type=cell_list, default=None,
                   help="sweep: SIZExEPOCHS pairs instead of the --sizes x --epochs grid (e.g. 2000x50,50000x1)")
    p.add_argument("--private-size", type=positive_int, default=500, help="canary: private molecules (default 500)")
    p.add_argument("--canaries", type=positive_int, default=50, help="canary: number of canaries (default 50)")
    p.add_argument("--canary-pool",
                   help="canary: draw canaries from this candidate pool (`molleak candidates`) instead of the "
                        "holdout set, and run the extraction attack on it to measure canary recovery")
    p.add_argument("--attack", default="adapter",
                   help="canary with --canary-pool: the extraction method run on the pool (default adapter; "
                        "`membership` ranks by the calibrated membership statistic)")
    p.add_argument("--attack-option", action="append", metavar="KEY=VALUE",
                   help="canary with --canary-pool: an option of the attack (repeatable), e.g. epochs=5")
    p.add_argument("--strategy", default="attrmask", help="canary / sweep: pre-training strategy (default attrmask)")
    p.add_argument("--layers", type=positive_int, default=2, help="canary / sweep: GIN layers (default 2)")
    p.add_argument("--emb-dim", type=positive_int, default=32, help="canary / sweep: GIN width (default 32)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    add_seed(p)
    p.set_defaults(func=run)


def _auc_line(rows: dict, key: str) -> str:
    a = rows[key]["auc"]
    return f"{a['value']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]"


def run(args: argparse.Namespace) -> int:
    from molleak import leakage
    from molleak.cli.extract import parse_options
    from molleak.pretrain.base import load_strategies

    seed = resolve_seed(args.seed)
    seed_everything(seed)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    start_run(args.out, config, seed)
    common = {"n_neighbours": args.neighbours, "n_boot": args.bootstrap, "seed": seed, "statistic": args.statistic}
    if args.victim:
        if bool(args.victim_run) != bool(args.reference_run):
            raise MolleakError("attribution needs both --victim-run and --reference-run")
        if args.victim_run:
            attribution = leakage.attribute_runs(args.victim_run, args.reference_run, args.data,
                                                 n_boot=args.bootstrap, seed=seed)
            write_json_atomic(Path(args.out) / "attribution.json", attribution)
            for kind in ("substructure", "exact"):
                print(f"{kind}: {attribution[kind]['verdict']}")
        res = leakage.run_leakage(args.victim, args.data, args.out, reference_path=args.reference,
                                  n_members=args.members, **common)
        m = res["membership"]
        print(f"membership AUC victim {_auc_line(m['rows'], 'victim')}, reference {_auc_line(m['rows'], 'reference')}, "
              f"calibrated {_auc_line(m['rows'], 'victim-minus-reference')}; {m['verdict']} Wrote {args.out}")
        return 0
    load_strategies().get(args.strategy)  # unknown strategy: one clear error before any work
    train = {"strategy": args.strategy, "encoder_config": {"num_layers": args.layers, "emb_dim": args.emb_dim},
             "batch_size": args.batch_size, "lr": args.lr}
    if args.canary:
        if args.canary_pool:
            from molleak.attack.methods import method_uses_victim

            if not Path(args.canary_pool).is_file():
                raise MolleakError(f"--canary-pool {args.canary_pool}: no such file")
            if not method_uses_victim(args.attack):
                raise MolleakError(f"--attack {args.attack}: a victim-free method (it does not query the victim, so it cannot recover canaries)")
        res = leakage.run_canary(args.data, args.out, repeats=args.repeats, epochs=args.epochs or [5, 20],
                                 n_private=args.private_size, n_canaries=args.canaries, pool=args.canary_pool,
                                 attack=args.attack, attack_options=parse_options(args.attack_option), **train,
                                 **common)
        parts = [f"r{c['repeats']}/e{c['epochs']}: {_auc_line(c['canaries']['rows'], 'victim-minus-reference')}"
                 for c in res["cells"]]
        print(f"canary membership AUC (calibrated) {'; '.join(parts)}.")
        if args.canary_pool:
            parts = [f"r{c['repeats']}/e{c['epochs']}: {c['extraction']['canary_vs_decoy']['difference']['value']:+.3f} "
                     f"[{c['extraction']['canary_vs_decoy']['difference']['lo']:+.3f}, "
                     f"{c['extraction']['canary_vs_decoy']['difference']['hi']:+.3f}], "
                     f"top-200 {c['extraction']['victim']['canaries']['in_top200']}/{c['extraction']['n_canaries']}"
                     for c in res["cells"]]
            print(f"canary extraction ({args.attack}), canary-vs-decoy AUC victim - reference: {'; '.join(parts)}.")
        print(f"Wrote {args.out}/canary.json")
        return 0
    res = leakage.run_sweep(args.data, args.out, sizes=args.sizes, epochs=args.epochs or [1, 5, 20], cells=args.cells,
                            n_members=min(args.members, 200) if args.members == 1000 else args.members,
                            **train, **common)
    parts = [f"n{c['size']}/e{c['epochs']}: {_auc_line(c['membership']['rows'], 'victim-minus-reference')}"
             for c in res["cells"]]
    print(f"sweep membership AUC (calibrated) {'; '.join(parts)}. Wrote {args.out}/sweep.json")
    return 0
