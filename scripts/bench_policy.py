"""Benchmark the extraction policy network against random search and budgeted enumerate-and-rank.

For every budget Q and seed, three methods get the same Q victim queries over the same
two-step candidate space (the same vocabulary and templates):

- `policy`: the learned search (`molleak.attack.search`);
- `random-search`: the same loop with uniformly random valid actions;
- `adapter-budget`: enumerate the pool, keep a random record subset whose step molecules fit in Q
  queries, train the adapter on its aux weak labels and rank it.

Plus, per seed, the unrestricted enumerate-and-rank (`adapter` on the whole pool, as many
queries as the pool needs), and, with `--table3`, the paper's Table 3 (seconds to produce 200
two-step molecules, scoring time vs total) for qed, sa, mlp over the same pool and for the policy.

Every run is a normal run directory evaluated by `molleak.evaluate.evaluate_run` (substructure and
exact precision@{50,100,200} against the private set; evaluation is the only reader of it).
Prints a table and writes `summary.json` into `--out`.

Example (the BENCHMARKS.md run):

    .venv/bin/python scripts/bench_policy.py --tier /tmp/small --vocab /tmp/vocab_small \\
        --victim /tmp/victim_attrmask.pt --templates 3,5,9,11 --budgets 1000,3000 --seeds 0,1,2 \\
        --table3 --out /tmp/bench_policy
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from molleak.attack.run import ExtractConfig, run_extract
from molleak.candidates.enumerate import EnumerationStats, enumerate_pool
from molleak.candidates.pool import write_pool
from molleak.candidates.vocab import Vocabulary
from molleak.evaluate.evaluate import evaluate_run
from molleak.models.victim import Victim
from molleak.runs import write_json_atomic

log = logging.getLogger("bench_policy")
KS = (50, 100, 200)
BUDGETED = ("policy", "random-search", "adapter-budget")


def _run(args, method: str, seed: int, budget: int | None, out: Path, pool: Path | None,
         options: dict | None = None) -> dict:
    use_pool = method not in ("policy", "random-search")
    cfg = ExtractConfig(out=str(out), aux=str(args.tier / "aux.smi"), vocab=None if use_pool else str(args.vocab),
                        pool=str(pool) if use_pool else None, steps=2,
                        templates=None if use_pool else args.templates, method=method, options=options or {},
                        k=200, budget=budget, seed=seed)
    if (out / "results.json").is_file():  # finished earlier: reuse (the bench is resumable)
        res = json.loads((out / "results.json").read_text())
        ext = json.loads((out / "extract.json").read_text())
    else:
        victim = Victim.from_checkpoint(args.victim)  # a fresh victim: no cache carried between runs
        ext = run_extract(cfg, victim=victim)
        res = evaluate_run(out, args.tier / "private.smi", fcd=False)
    row = {"method": method, "seed": seed, "budget": budget, "queries": ext["queries"],
           "seconds_score": ext["seconds_score"], "seconds_total": ext["seconds_total"], "n_scored": ext["n_scored"]}
    for kind in ("substructure", "exact"):
        for k in KS:
            row[f"{kind}@{k}"] = res.get(f"precision_{kind}@{k}")
        row[f"base_rate_{kind}"] = res.get(f"base_rate_{kind}")
    log.info("%s", json.dumps(row))
    return row


def _mean_sd(rows: list[dict], key: str) -> str:
    v = np.array([r[key] for r in rows if r.get(key) is not None], dtype=float)
    if len(v) == 0:
        return "-"
    return f"{v.mean():.3f}±{v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tier", type=Path, required=True, help="tier directory (aux.smi; private.smi for evaluation)")
    p.add_argument("--vocab", type=Path, required=True, help="vocabulary directory mined from the aux set")
    p.add_argument("--victim", required=True, help="victim checkpoint")
    p.add_argument("--templates", default="3,5,9,11", help="template indices of the candidate space")
    p.add_argument("--budgets", default="1000,3000", help="victim-query budgets")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(BUDGETED))
    p.add_argument("--no-full", action="store_true", help="skip the unrestricted adapter enumerate-and-rank")
    p.add_argument("--full-seeds", help="seeds of the unrestricted run (default: --seeds)")
    p.add_argument("--table3", action="store_true", help="also time qed, sa, mlp over the pool (Table 3)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    args.templates = [int(t) for t in args.templates.split(",")]
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    args.out.mkdir(parents=True, exist_ok=True)

    pool = args.out / "pool.tsv.gz"
    stats = EnumerationStats()
    if not pool.is_file():
        write_pool(pool, enumerate_pool(Vocabulary.load(args.vocab), 2, templates=args.templates, stats=stats))
        log.info("pool: %s", stats.summary())
    rows: list[dict] = []
    t_all = time.perf_counter()
    for budget in budgets:
        for method in methods:
            for seed in seeds:
                rows.append(_run(args, method, seed, budget, args.out / f"{method}_q{budget}_s{seed}", pool))
    if not args.no_full:
        for seed in [int(s) for s in args.full_seeds.split(",")] if args.full_seeds else seeds:
            rows.append(_run(args, "adapter", seed, None, args.out / f"adapter_full_s{seed}", pool))
    table3: list[dict] = []
    if args.table3:
        for method in ("qed", "sa", "mlp"):
            table3.append(_run(args, method, seeds[0], None, args.out / f"t3_{method}", pool))
        table3 += [r for r in rows if r["method"] == "policy" and r["budget"] == max(budgets) and r["seed"] == seeds[0]]

    for r in rows:
        # hits per query: substructure hits among everything the run generated, per victim query spent
        r["hits_per_query"] = r["base_rate_substructure"] * r["n_scored"] / max(r["queries"], 1)
    print(f"\nprecision@K (mean ± sd over seeds {seeds}); templates {args.templates}; two-step")
    cols = [f"{kind}@{k}" for kind in ("substructure", "exact") for k in KS]
    print("| method | budget | queries | " + " | ".join(cols) + " | base rate sub / exact | sub hits per query |")
    print("|---" * (len(cols) + 5) + "|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["budget"]), []).append(r)
    for (method, budget), rs in groups.items():
        print(f"| {method} | {budget if budget is not None else 'full pool'} | {_mean_sd(rs, 'queries')} | "
              + " | ".join(_mean_sd(rs, c) for c in cols)
              + f" | {_mean_sd(rs, 'base_rate_substructure')} / {_mean_sd(rs, 'base_rate_exact')}"
              + f" | {_mean_sd(rs, 'hits_per_query')} |")
    if table3:
        print("\nTable 3: seconds to produce 200 two-step molecules (scoring time / total)")
        print("| method | queries | molecules scored | seconds score | seconds total |")
        print("|---|---|---|---|---|")
        for r in table3:
            print(f"| {r['method']} | {r['queries']} | {r['n_scored']} | {r['seconds_score']:.1f} | {r['seconds_total']:.1f} |")
    write_json_atomic(args.out / "summary.json", {"rows": rows, "table3": table3, "templates": args.templates,
                                                  "budgets": budgets, "seeds": seeds,
                                                  "seconds": time.perf_counter() - t_all})


if __name__ == "__main__":
    main()
