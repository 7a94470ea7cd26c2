"""`molleak leakage`: attribution experiments, one sub-verb each.

    molleak leakage audit --victim V.pt [--reference R.pt] --data TIER_DIR --out DIR     # audit one victim
        [--victim-run RUN_V --reference-run RUN_R]   # plus extraction attribution (private-only test)
    molleak leakage canary --repeats 1,8,32 --epochs 5,20 --data TIER_DIR --out DIR
        [--canary-pool POOL]   # canaries from a candidate pool; the extraction attack must recover them
    molleak leakage sweep --sizes 1000,2000 --epochs 1,5,20 --data TIER_DIR --out DIR
        [--cells 2000x50,50000x1]   # a sparse grid instead of sizes x epochs
    molleak leakage statistics --data TIER_DIR --out DIR [--strategies graphcl,attrmask,simgrace]
        # every membership statistic on the same canary victims (how the default was chosen)
    molleak leakage table --kind attribution|canary DIR...   # BENCHMARKS.md tables from finished runs

audit, canary, sweep and statistics are resumable: rerun the same command to continue after an interruption.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from molleak.cli.common import add_backend, add_seed, plan_executor, positive_int
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


def name_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def _io_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="tier directory from `molleak data prepare`")
    p.add_argument("--out", required=True, help="run directory (resumable)")


def _membership_options(p: argparse.ArgumentParser, members: int | None = None) -> None:
    from molleak.attack.membership import DEFAULT_STATISTIC, STATISTICS

    if members is not None:
        p.add_argument("--members", type=positive_int, default=members,
                       help=f"private molecules (and as many holdout ones) to test (default {members})")
    p.add_argument("--neighbours", type=positive_int, default=8, help="one-edit neighbours per molecule (default 8)")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--statistic", choices=list(STATISTICS), default=DEFAULT_STATISTIC,
                   help=f"membership statistic from the victim's embeddings (default {DEFAULT_STATISTIC})")


def _training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strategy", default="attrmask", help="pre-training strategy (default attrmask)")
    p.add_argument("--layers", type=positive_int, default=2, help="GIN layers (default 2)")
    p.add_argument("--emb-dim", type=positive_int, default=32, help="GIN width (default 32)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="pre-training batch size (default 64)")
    p.add_argument("--lr", type=float, default=1e-3, help="pre-training learning rate (default 0.001)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leakage",
        help="leakage attribution: membership audit, canary control, memorisation sweep, tables",
        description="Is what an attack recovers there because the model saw the private set? "
                    "Audit a victim against its reference victim (trained on reference.smi with the same "
                    "recipe) and untrained encoder, run the canary positive control, a size x epochs sweep, "
                    "compare the membership statistics, or print the tables of finished runs.",
    )
    verbs = p.add_subparsers(dest="leakage_command", metavar="SUBCOMMAND", required=True)

    a = verbs.add_parser("audit", help="audit one victim against its reference victim and untrained encoder",
                         description="Membership audit of one victim (calibrated by its reference victim and the "
                                     "untrained encoder) and, with --victim-run and --reference-run, attribution of "
                                     "two extraction runs (private-only test). Writes leakage.json "
                                     "(and attribution.json).")
    a.add_argument("--victim", required=True, help="victim checkpoint to audit")
    a.add_argument("--reference", help="reference victim checkpoint (default: train one from the victim's recipe)")
    a.add_argument("--victim-run", help="the victim's extraction run directory (scores.tsv), for attribution")
    a.add_argument("--reference-run", help="the reference victim's extraction run over the same pool, same settings")
    _io_options(a)
    _membership_options(a, members=1000)
    add_seed(a)
    a.set_defaults(func=run_audit)

    c = verbs.add_parser("canary", help="the canary positive control (power of the membership test)",
                         description="Plant canaries (holdout molecules, or molecules of a candidate pool) r times "
                                     "in a small victim's training set (and as many other molecules in its "
                                     "reference victim's), and measure their membership against unplanted "
                                     "non-members (and, with --canary-pool, their recovery by the extraction "
                                     "attack) per repetitions x epochs cell: victim-only first, the reference "
                                     "contrast second, p-values Holm-adjusted across the cells. Writes canary.json "
                                     "and prints the table.")
    _io_options(c)
    c.add_argument("--repeats", type=int_list, default=[1, 8, 32], help="repetition counts (default 1,8,32)")
    c.add_argument("--epochs", type=int_list, default=[5, 20], help="epoch counts (default 5,20)")
    c.add_argument("--private-size", type=positive_int, default=500, help="private molecules (default 500)")
    c.add_argument("--canaries", type=positive_int, default=50, help="number of canaries (default 50)")
    c.add_argument("--canary-pool",
                   help="draw canaries from this candidate pool (`molleak candidates`) instead of the "
                        "holdout set, and run the extraction attack on it to measure canary recovery")
    c.add_argument("--attack", default="adapter",
                   help="with --canary-pool: the extraction method run on the pool (default adapter; "
                        "`membership` ranks by the calibrated membership statistic)")
    c.add_argument("--attack-option", action="append", metavar="KEY=VALUE",
                   help="with --canary-pool: an option of the attack (repeatable), e.g. epochs=5")
    _training_options(c)
    _membership_options(c)
    add_seed(c)
    add_backend(c)
    c.set_defaults(func=run_canary)

    s = verbs.add_parser("sweep", help="the memorisation sweep: membership over private-set size x epochs",
                         description="Per cell, a victim on the first N private molecules and a reference victim "
                                     "on the first N reference molecules with the same recipe; members are "
                                     "private molecules, non-members holdout ones. Writes sweep.json and prints "
                                     "the table.")
    _io_options(s)
    s.add_argument("--sizes", type=int_list, default=[1000, 2000], help="private-set sizes (default 1000,2000)")
    s.add_argument("--epochs", type=int_list, default=[1, 5, 20], help="epoch counts (default 1,5,20)")
    s.add_argument("--cells", type=cell_list, default=None,
                   help="SIZExEPOCHS pairs instead of the --sizes x --epochs grid (e.g. 2000x50,50000x1)")
    _training_options(s)
    _membership_options(s, members=200)
    add_seed(s)
    add_backend(s)
    s.set_defaults(func=run_sweep)

    st = verbs.add_parser("statistics", help="every membership statistic on the same canary victims",
                          description="Per strategy, a victim trained with canaries repeated --repeats times and "
                                      "its reference victim trained with as many decoys; canaries vs holdout "
                                      "non-members scored by every membership statistic, raw and calibrated. "
                                      "Victims are kept in --out and reused. Prints the table, writes "
                                      "statistics.json.")
    _io_options(st)
    st.add_argument("--strategies", type=name_list, default=["graphcl", "attrmask", "simgrace"],
                    help="comma-separated pre-training strategies (default graphcl,attrmask,simgrace)")
    st.add_argument("--private-size", type=positive_int, default=300, help="private molecules (default 300)")
    st.add_argument("--canaries", type=positive_int, default=50, help="canaries (default 50)")
    st.add_argument("--repeats", type=positive_int, default=30, help="repetitions of each canary (default 30)")
    st.add_argument("--epochs", type=positive_int, default=30, help="pre-training epochs (default 30)")
    st.add_argument("--layers", type=positive_int, default=3, help="GIN layers (default 3)")
    st.add_argument("--emb-dim", type=positive_int, default=128, help="GIN width (default 128)")
    st.add_argument("--batch-size", type=positive_int, default=64, help="pre-training batch size (default 64)")
    st.add_argument("--lr", type=float, default=1e-3, help="pre-training learning rate (default 0.001)")
    st.add_argument("--neighbours", type=positive_int, default=8, help="one-edit neighbours per molecule (default 8)")
    st.add_argument("--bootstrap", type=positive_int, default=1000, help="bootstrap replicates (default 1000)")
    add_seed(st)
    st.set_defaults(func=run_statistics)

    t = verbs.add_parser("table", help="print a BENCHMARKS.md table from finished leakage runs",
                         description="attribution: one table over `molleak leakage audit` directories run with "
                                     "--victim-run and --reference-run (a victim's name is its directory's name "
                                     "after the last underscore: leak_graphcl -> graphcl). canary: per "
                                     "`molleak leakage canary` directory (or its canary.json), the canaries' "
                                     "membership and, with a canary pool, their recovery by the attack.")
    t.add_argument("--kind", required=True, choices=["attribution", "canary"], help="which table")
    t.add_argument("dirs", nargs="+", metavar="DIR", help="output directories of the runs")
    t.set_defaults(func=run_table)


def _auc_line(rows: dict, key: str) -> str:
    a = rows[key]["auc"]
    return f"{a['value']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]"


def _tested(block: dict, key: str = "auc") -> str:
    """`0.61 [0.52, 0.70] (Holm p 0.01, survives)`: a grid cell's test block, its statistic `key`."""
    from molleak.evaluate.verdicts import format_p

    auc = block[key]
    text = f"{auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]"
    if isinstance(block.get("p_holm"), int | float):
        text += f" (Holm p {format_p(block['p_holm'])}{', survives' if block.get('survives_holm') else ''})"
    return text


def _start(args: argparse.Namespace) -> int:
    seed = resolve_seed(args.seed)
    seed_everything(seed)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    start_run(args.out, config, seed)
    return seed


def _common(args: argparse.Namespace, seed: int) -> dict:
    return {"n_neighbours": args.neighbours, "n_boot": args.bootstrap, "seed": seed, "statistic": args.statistic}


def _train(args: argparse.Namespace) -> dict:
    from molleak.pretrain.base import load_strategies

    load_strategies().get(args.strategy)  # unknown strategy: one clear error before any work
    return {"strategy": args.strategy, "encoder_config": {"num_layers": args.layers, "emb_dim": args.emb_dim},
            "batch_size": args.batch_size, "lr": args.lr}


def run_audit(args: argparse.Namespace) -> int:
    from molleak.evaluate.attribution import attribute_runs
    from molleak.plans import leakage

    seed = _start(args)
    if bool(args.victim_run) != bool(args.reference_run):
        raise MolleakError("attribution needs both --victim-run and --reference-run")
    if args.victim_run:
        attribution = attribute_runs(args.victim_run, args.reference_run, args.data,
                                             n_boot=args.bootstrap, seed=seed)
        write_json_atomic(Path(args.out) / "attribution.json", attribution)
        for kind in ("substructure", "exact"):
            print(f"{kind}: {attribution[kind]['verdict']}")
    res = leakage.run_leakage(args.victim, args.data, args.out, reference_path=args.reference,
                              n_members=args.members, **_common(args, seed))
    m = res["membership"]
    print(f"membership AUC victim {_auc_line(m['rows'], 'victim')}, reference {_auc_line(m['rows'], 'reference')}, "
          f"calibrated {_auc_line(m['rows'], 'victim-minus-reference')}; {m['verdict']} Wrote {args.out}")
    if m.get("reference_contrast"):
        print(m["reference_contrast"])
    return 0


def run_canary(args: argparse.Namespace) -> int:
    from molleak.cli.extract import parse_options
    from molleak.evaluate.tables import canary_membership_table, canary_table
    from molleak.plans import leakage

    executor = plan_executor(args)
    seed = _start(args)
    train = _train(args)
    if args.canary_pool:
        from molleak.attack.methods import method_uses_victim

        if not Path(args.canary_pool).is_file():
            raise MolleakError(f"--canary-pool {args.canary_pool}: no such file")
        if not method_uses_victim(args.attack):
            raise MolleakError(f"--attack {args.attack}: a victim-free method (it does not query the victim, "
                               "so it cannot recover canaries)")
    t0 = time.perf_counter()
    res = leakage.run_canary(args.data, args.out, repeats=args.repeats, epochs=args.epochs,
                             n_private=args.private_size, n_canaries=args.canaries, pool=args.canary_pool,
                             attack=args.attack, attack_options=parse_options(args.attack_option), **train,
                             **_common(args, seed), executor=executor)
    print("\n".join(canary_membership_table(res, load=os.getloadavg()[0], seconds=time.perf_counter() - t0)))
    if args.canary_pool:
        print()
        print("\n".join(canary_table(res)))
    print()
    parts = [f"r{c['repeats']}/e{c['epochs']}: {_tested(c['canaries']['rows']['victim'])}" for c in res["cells"]]
    print(f"canary membership AUC, victim-only (canaries vs unplanted non-members): {'; '.join(parts)}.")
    if args.canary_pool:
        parts = [f"r{c['repeats']}/e{c['epochs']}: {_tested(c['extraction']['victim_only'])}, "
                 f"top-200 {c['extraction']['victim']['canaries']['in_top200']}/{c['extraction']['n_canaries']}"
                 for c in res["cells"]]
        print(f"canary extraction ({args.attack}), canary-vs-decoy AUC, victim-only: {'; '.join(parts)}.")
        parts = [f"r{c['repeats']}/e{c['epochs']}: {_tested(c['extraction']['canary_vs_decoy'], 'difference')}"
                 for c in res["cells"]]
        print(f"reference contrast (victim - reference victim that saw no canary or decoy): {'; '.join(parts)}.")
    print(f"Wrote {args.out}/canary.json")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from molleak.evaluate.tables import sweep_table
    from molleak.plans import leakage

    executor = plan_executor(args)
    seed = _start(args)
    train = _train(args)
    t0 = time.perf_counter()
    res = leakage.run_sweep(args.data, args.out, sizes=args.sizes, epochs=args.epochs, cells=args.cells,
                            n_members=args.members, **train, **_common(args, seed),
                            executor=executor)
    print("\n".join(sweep_table(res, load=os.getloadavg()[0], seconds=time.perf_counter() - t0)))
    print()
    parts = [f"n{c['size']}/e{c['epochs']}: {_tested(c['membership']['rows']['victim'])}" for c in res["cells"]]
    print(f"sweep membership AUC, victim-only (private members vs holdout): {'; '.join(parts)}. "
          f"Wrote {args.out}/sweep.json")
    return 0


def run_statistics(args: argparse.Namespace) -> int:
    from molleak.evaluate.statistics_choice import compare_statistics, statistics_table
    from molleak.pretrain.base import load_strategies

    strategies = load_strategies()
    for name in args.strategies:
        strategies.get(name)  # unknown strategy: one clear error before any work
    seed = _start(args)
    res = compare_statistics(args.data, args.out, strategies=args.strategies, n_private=args.private_size,
                             n_canaries=args.canaries, repeats=args.repeats, epochs=args.epochs,
                             encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim},
                             batch_size=args.batch_size, lr=args.lr, n_neighbours=args.neighbours,
                             n_boot=args.bootstrap, seed=seed)
    write_json_atomic(Path(args.out) / "statistics.json", res)
    print("\n".join(statistics_table(res)))
    return 0


def run_table(args: argparse.Namespace) -> int:
    from molleak.evaluate.tables import attribution_table, canary_table, read_canary_json

    if args.kind == "attribution":
        print("\n".join(attribution_table(args.dirs)))
        return 0
    tables = ["\n".join(canary_table(read_canary_json(d))) for d in args.dirs]
    print("\n\n".join(tables))
    return 0
