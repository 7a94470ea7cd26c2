"""Small but structurally real run directories for the report tests (files in the documented layout).

Metrics come from the real evaluation code (`pool_metrics`, `membership_metrics`) on hand-made
scores and labels, so the files have exactly the keys the pipeline writes. Imported by the report
tests (this module holds no tests itself).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from molleak.runs import write_json_atomic

# real MOSES-like molecules and fragments; each run ranks the same pool
POOL = [
    "c1ccccc1", "Cc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "Clc1ccccc1", "CC(=O)Nc1ccccc1", "c1ccc2ccccc2c1",
    "C1CCCCC1", "C1CCNCC1", "C1COCCN1", "CCOC(=O)c1ccccc1", "O=C(O)c1ccccc1", "CC(C)Cc1ccccc1", "c1ccncc1",
    "Cc1ccncc1", "c1cnc2ccccc2c1", "O=c1[nH]cccc1", "CN1CCCC1", "c1ccsc1", "Cc1ccsc1", "c1ccoc1", "CCN(CC)CC",
    "COc1ccccc1", "FC(F)(F)c1ccccc1", "N#Cc1ccccc1", "CS(=O)(=O)c1ccccc1", "O=C1CCCN1", "CC1=CC(=O)CCC1",
    "c1ccc(-c2ccccc2)cc1", "Brc1ccccc1", "CC(=O)c1ccccc1", "NC(=O)c1ccccc1",
]


def write_run(out: Path, *, method: str, victim: str | None, seed: int, k: int = 20, alpha: bool = True,
              evaluate: bool = True, labels: bool = True, curve: bool = False, attribution: dict | None = None,
              steps: int = 1, pool_sha: str = "pool0", role: str | None = None) -> Path:
    """Write a run directory as `molleak extract` (+ `molleak evaluate`) lays it out, scores drawn by `seed`.

    `role` is written into config.json as `molleak extract` writes it (default: victim when a victim
    is queried, else prior)."""
    from molleak.evaluate.metrics import pool_metrics
    from molleak.ranking import rank_order

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = len(POOL)
    scores = rng.normal(size=n)
    scores[-1] = float("nan")  # one unscored molecule, as docking subsamples leave
    alphas = rng.uniform(0.1, 0.9, size=n)
    prov = [f"template={i % 5};core=c1ccccc1;actions=0,{i},0;records=1" for i in range(n)]
    role = role or ("prior" if victim is None else "victim")
    write_json_atomic(out / "config.json", {"out": str(out), "role": role, "aux": "aux.smi", "victim": victim,
                                            "steps": steps, "method": method, "k": k, "seed": seed})
    write_json_atomic(out / "metadata.json", {"versions": {"molleak": "0.1.0", "rdkit": "x"}, "host": "testhost",
                                              "platform": "linux", "command": "molleak extract ...",
                                              "time": "2026-11-29T00:00:00+0000"})
    lines = ["smiles\tscore\talpha\tprovenance"]
    for s, v, a, p in zip(POOL, scores, alphas, prov, strict=True):
        lines.append(f"{s}\t{float(v)!r}\t{f'{a:.4f}' if alpha else ''}\t{p}")
    (out / "scores.tsv").write_text("\n".join(lines) + "\n")
    order = rank_order(scores, seed)[:k]
    lines = ["rank\tsmiles\tscore\tprovenance"] + [f"{r + 1}\t{POOL[i]}\t{float(scores[i])!r}\t{prov[i]}"
                                                   for r, i in enumerate(order)]
    (out / "topk.tsv").write_text("\n".join(lines) + "\n")
    victim_info = None if victim is None else {"path": victim, "name": Path(victim).stem, "strategy": "attrmask"}
    write_json_atomic(out / "extract.json", {"method": method, "queries": 0 if victim is None else 3 * n,
                                             "seconds_score": 0.5, "seconds_total": 1.5, "k": k,
                                             "n_scored": n - 1, "n_topk": k, "victim": victim_info,
                                             "pool": {"records": 2 * n, "unique": n, "sha256": pool_sha}})
    sub = np.array([("c1ccccc1" in s) or ("ccccc" in s) for s in POOL])
    exact = np.zeros(n, dtype=bool)
    exact[[1, 5, 9]] = True
    if evaluate:
        res = {"method": method, **pool_metrics(scores, {"substructure": sub, "exact": exact}, (5, 10, 20), seed),
               "fcd_core@20": 12.5, "fcd_random@20": 20.25, "k": k, "queries": 3 * n}
        if attribution is not None:
            res["attribution"] = attribution
        (out / "results.json").write_text(json.dumps(res, allow_nan=False, default=lambda x: None))
    if labels:
        rows = ["smiles\tsubstructure\texact"] + [f"{s}\t{int(a)}\t{int(b)}" for s, a, b in zip(POOL, sub, exact,
                                                                                              strict=True)]
        (out / "labels.tsv").write_text("\n".join(rows) + "\n")
    if curve:
        rows = ["update\tepisodes\tqueries\tmean_reward\tarchive\ttop200_mean\tfailed"]
        for u in range(1, 11):
            rows.append(f"{u}\t{8 * u}\t{20 * u}\t{0.1 * u + rng.normal() * 0.01!r}\t{7 * u}\t{0.05 * u!r}\t0")
        (out / "curve.tsv").write_text("\n".join(rows) + "\n")
    return out


def attribution_example() -> dict:
    """An attribution block shaped as `molleak.evaluate.attribution.attribution_report` + `to_jsonable`."""
    est = {"value": 0.61, "lo": 0.52, "hi": 0.70}
    return {"victim": {"private": {"base_rate": est, "auc": est, "precision_at_k": {"50": est}},
                       "private_only_auc": est},
            "private_only": {"difference": {"value": 0.08, "lo": 0.01, "hi": 0.15}, "p_value": 0.02,
                             "n_private_only": 40, "n_reference_only": 35, "significant": True},
            "verdict": "leakage detected: the victim prefers private-only hits more than its reference victim."}


def write_audit(root: Path) -> Path:
    """A folder holding a victim's runs, its controls, a policy run and a benchmark table."""
    write_run(root / "victim_adapter", method="adapter", victim="/x/victim.pt", seed=1,
              attribution=attribution_example())
    write_run(root / "victim_policy", method="policy", victim="/x/victim.pt", seed=2, alpha=False, curve=True,
              steps=2)
    write_run(root / "reference_adapter", method="adapter", victim="/x/reference.pt", seed=3, role="reference")
    write_run(root / "random_init_adapter", method="adapter", victim="/x/random_init.pt", seed=4, labels=False,
              role="untrained")
    write_run(root / "prior", method="prior_fp", victim=None, seed=5, alpha=False)
    write_run(root / "unevaluated", method="sa", victim=None, seed=6, alpha=False, evaluate=False, labels=False)
    write_leakage(root / "leakage")
    write_bench(root / "bench")
    return root


def write_leakage(out: Path) -> Path:
    """`molleak leakage`'s leakage.json shape: membership rows for victim, reference and calibrated scores."""
    from molleak.evaluate.attribution import membership_metrics, membership_verdict, to_jsonable

    rng = np.random.default_rng(0)
    rows = {"victim": membership_metrics(rng.normal(0.5, 1, 200), rng.normal(0, 1, 200), n_boot=50),
            "reference": membership_metrics(rng.normal(0, 1, 200), rng.normal(0, 1, 200), n_boot=50)}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "leakage.json", to_jsonable({
        "victim": "/x/victim.pt", "reference": str(out / "models/reference.pt"),
        "membership": {"rows": rows, "verdict": "victim: " + membership_verdict(rows["victim"], rows["reference"]),
                       "n_members": 200, "n_nonmembers": 200}}))
    # `molleak leakage canary`'s canary.json: one cell per (repeats, epochs)
    cells = [{"repeats": r, "epochs": 2, "seconds": 1.0,
              "canaries": {"rows": {"victim": membership_metrics(rng.normal(r / 4, 1, 50), rng.normal(0, 1, 50),
                                                                 n_boot=50)}, "verdict": "x"}}
             for r in (1, 4)]
    write_json_atomic(out / "canary.json", to_jsonable({"experiment": "canary", "seed": 0, "cells": cells}))
    return out


def write_bench(bench: Path, seeds: int = 2) -> Path:
    """A bench directory as `molleak bench` lays it out: cells (run dirs + bench_cell.json), plan.json,
    then `table.json` / `table.md` from the real aggregator (`molleak.plans.bench.aggregate.aggregate`)."""
    from molleak.plans.bench.aggregate import aggregate

    specs = {"attack": ("adapter", "zoo_gin", "victim"), "reference": ("adapter", "zoo_gin", "reference"),
             "untrained": ("adapter", "zoo_gin", "untrained"), "prior": ("prior_fp", None, "victim")}
    columns = {}
    for col, (method, victim, role) in specs.items():
        spec = {"method": method, "steps": 1, "victim": victim, "role": role, "aux": "aux", "options": {},
                "budget": None, "tag": ""}
        who = "nov" if victim is None else f"{victim}.{role}"
        cells = [f"{who}-s1-{method}-aux-seed{seed}" for seed in range(seeds)]
        for seed, cid in enumerate(cells):
            ckpt = None if victim is None else f"/b/models/{victim}.{role}.pt"
            write_run(bench / "cells" / cid, method=method, victim=ckpt, seed=100 * seed + len(columns),
                      alpha=method == "adapter", role=None if victim is None else role)
            write_json_atomic(bench / "cells" / cid / "bench_cell.json", {"cell": cid, "seed": seed, **spec})
        columns[col] = {"spec": spec, "cells": cells}
    write_json_atomic(bench / "plan.json", {"suites": {"table1": [{"key": {"victim": "zoo_gin", "steps": 1,
                                                                           "method": "adapter"},
                                                                   "columns": columns}]}})
    aggregate(bench, n_boot=50)
    return bench


def write_audit_layout(root: Path) -> Path:
    """The layout of `molleak.plans.audit` (the demo): runs/one_step/<method>[@control], attribution.json, leakage/."""
    one = root / "runs" / "one_step"
    write_run(one / "adapter", method="adapter", victim=str(root / "models/victim.pt"), seed=0)
    write_run(one / "prior_fp", method="prior_fp", victim=None, seed=0, alpha=False)
    write_run(one / "adapter@reference", method="adapter", victim=str(root / "models/reference.pt"), seed=0,
              role="reference")
    write_run(one / "adapter@untrained", method="adapter", victim=str(root / "models/untrained.pt"), seed=0,
              role="untrained")
    leakage = json.loads((write_leakage(root / "leakage") / "leakage.json").read_text())
    write_json_atomic(root / "attribution.json", {"one_step": attribution_example(),
                                                  "membership": leakage["membership"]})
    return root


def write_defences(out: Path) -> None:
    """A `defences.json` summarised by the real `summarise` from hand-made attack rows and utilities."""
    from molleak.plans.defences import RESULTS_FILE, summarise
    from molleak.runs import write_json_atomic

    def cell(level: str, kind: str, p: float, auc: float, utility: float) -> dict:
        rows = [{"access": a, "statistic": st, "attack": at, "group": "all", "p_auc": p, "auc": {"value": auc},
                 "tpr_at_fpr": {"0.01": {"value": auc - 0.5}}}
                for a, st, at in (("white box", "loss", "lira_offline"), ("black box", "norm", "lira_online"))
                if kind == "dp" or a == "black box"]
        eps = None if level == "eps=inf" else float(level[4:]) if kind == "dp" else None
        extra = ({"epsilon": eps, "epsilon_spent": eps, "empirical_epsilon": {"epsilon_lower_bound": 0.0}}
                 if kind == "dp" else {"noise_scale": float(level[6:])})
        return {"defence": kind, "level": level, "rows": rows, "utility": {"freesolv": utility}, **extra}

    cells = [cell(lv, kind, p, auc, u) for _ in range(3) for lv, kind, p, auc, u in (
        ("eps=inf", "dp", 1e-6, 0.8, 0.5), ("eps=10", "dp", 0.4, 0.52, 0.4), ("noise=1", "output", 0.5, 0.5, 0.1))]
    res = {"cells": cells, "random_init": [{"freesolv": 0.05}], "plan": {"victim_seeds": [0, 1, 2]}}
    res["summary"] = summarise(res)
    out.mkdir(parents=True)
    write_json_atomic(out / RESULTS_FILE, res)
