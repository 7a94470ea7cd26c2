"""Benchmark every one-step extraction method on one tier and victim; prints a Markdown table.

Every method ranks the same pool (mined and enumerated from the aux set once), through
`molleak.attack.run.run_extract` (a fresh victim per method, so query counts are per method), and is
scored by `molleak.evaluate.evaluate.evaluate_run` against the private set and the reference set.
Nothing is tuned on private labels. Finished methods are skipped on a rerun (delete their run
directory to redo one).

    .venv/bin/python scripts/bench_extract.py --tier /tmp/small --victim victim.pt --work /tmp/bench \\
        [--methods random,qed,...] [--random-seeds 5] [--dock-subsample 100] \\
        [--receptors ../shared/data/receptors] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path

import numpy as np

from molleak.attack.run import ExtractConfig, run_extract
from molleak.candidates.vocab import Vocabulary, mine_vocabulary
from molleak.data.smiles_io import read_smiles
from molleak.evaluate.evaluate import evaluate_run

log = logging.getLogger("bench_extract")

DEFAULT_METHODS = "random,qed,sa,eq1,adapter,mlp,prior_freq,prior_fp,calibrated,dock"
DOCK_TARGETS = ("fa7", "parp1", "5ht1b")


def run_one(name: str, method: str, options: dict, args, pool: Path, work: Path, seed: int) -> dict:
    run = work / name
    if (run / "results.json").is_file():
        log.info("%s: done already", name)
        return json.loads((run / "results.json").read_text())
    t0 = time.perf_counter()
    run_extract(ExtractConfig(out=str(run), aux=str(args.tier / "aux.smi"), victim=str(args.victim), pool=str(pool),
                              method=method, options=options, k=200, seed=seed))
    res = evaluate_run(run, args.tier / "private.smi", extra_banks={"reference": args.tier / "reference.smi"},
                       fcd_seeds=args.fcd_seeds, fcd_max_reference=args.fcd_max_reference)
    log.info("%s: done in %.0f s", name, time.perf_counter() - t0)
    return res


def fmt(x, pct=True):
    if x is None:
        return "n/a"
    return f"{100 * x:.1f}" if pct else f"{x:.3f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", type=Path, required=True, help="tier directory (aux.smi for the attack; private.smi, reference.smi for evaluation)")
    ap.add_argument("--victim", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--methods", default=DEFAULT_METHODS)
    ap.add_argument("--random-seeds", type=int, default=5)
    ap.add_argument("--dock-subsample", type=int, default=100)
    ap.add_argument("--dock-targets", default=",".join(DOCK_TARGETS), help="comma-separated docking targets")
    ap.add_argument("--receptors", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "receptors")
    ap.add_argument("--shadow-epochs", type=int, default=None, help="shadow pre-training epochs (default: the victim's)")
    ap.add_argument("--fcd-seeds", type=int, default=5)
    ap.add_argument("--fcd-max-reference", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()

    vocab_dir, pool = args.work / "vocab", args.work / "pool.tsv.gz"
    t0 = time.perf_counter()
    if not vocab_dir.is_dir():
        aux = read_smiles(args.tier / "aux.smi").smiles
        mine_vocabulary(aux, source=str(args.tier / "aux.smi")).save(vocab_dir)
    vocab = Vocabulary.load(vocab_dir)
    if not pool.is_file():
        from molleak.candidates.enumerate import enumerate_pool
        from molleak.candidates.pool import write_pool

        write_pool(pool, enumerate_pool(vocab, 1))
    log.info("vocabulary %d templates x %d motifs; pool ready in %.0f s", len(vocab.templates), len(vocab.motifs),
             time.perf_counter() - t0)

    rows: dict[str, dict] = {}
    for method in args.methods.split(","):
        if method == "random":
            for s in range(args.random_seeds):
                rows[f"random_s{s}"] = run_one(f"random_s{s}", "random", {}, args, pool, args.work, args.seed + s)
        elif method == "dock":
            for target in args.dock_targets.split(","):
                if not (args.receptors / f"{target}.pdbqt").is_file():
                    log.warning("dock %s skipped: no receptor in %s", target, args.receptors)
                    continue
                opts = {"target": target, "receptor_dir": str(args.receptors), "subsample": args.dock_subsample,
                        "cache_dir": str(args.work / "dock_cache")}
                rows[f"dock_{target}"] = run_one(f"dock_{target}", "dock", opts, args, pool, args.work, args.seed)
        elif method == "calibrated":
            opts = {} if args.shadow_epochs is None else {"epochs": args.shadow_epochs}
            rows["calibrated"] = run_one("calibrated", "calibrated", opts, args, pool, args.work, args.seed)
        else:
            rows[method] = run_one(method, method, {}, args, pool, args.work, args.seed)

    print(f"\nmachine load at start: {uptime}\n")
    print("| method | P_sub@50 | P_sub@100 | P_sub@200 | P_exact@200 | base sub / exact | n scored | FCD core@200 | "
          "FCD rand@200 | AUC | TPR@1%FPR | AUC vs P' | queries | s score | s total |")
    print("|---|" + "---|" * 14)
    for name, r in rows.items():
        k = min(r.get("k", 200), r.get("n_scored") or 0)  # FCD is over the top-K actually ranked
        print(f"| {name} | {fmt(r.get('precision_substructure@50'))} | {fmt(r.get('precision_substructure@100'))} | "
              f"{fmt(r.get('precision_substructure@200'))} | {fmt(r.get('precision_exact@200'))} | "
              f"{fmt(r.get('base_rate_substructure'))} / {fmt(r.get('base_rate_exact'))} | {r.get('n_scored')} | "
              f"{fmt(r.get(f'fcd_core@{k}'), False)} | {fmt(r.get(f'fcd_random@{k}'), False)} | "
              f"{fmt(r.get('auc'), False)} | {fmt(r.get('tpr@1%fpr'))} | "
              f"{fmt(r.get('banks', {}).get('reference', {}).get('auc'), False)} | {r.get('queries')} | "
              f"{r.get('seconds_score')} | {r.get('seconds_total')} |")
    rand = [r for n, r in rows.items() if n.startswith("random_s")]
    if rand:
        for key in ("precision_substructure@50", "precision_substructure@100", "precision_substructure@200", "auc"):
            vals = [r[key] for r in rand if r.get(key) is not None]
            print(f"random over {len(vals)} seeds: {key} mean {np.mean(vals):.3f} sd {np.std(vals):.3f}")
    if args.json:
        args.json.write_text(json.dumps({"uptime": uptime, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
