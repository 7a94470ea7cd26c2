"""What an audit can say about a victim whose training set is unknown (e.g. a published encoder).

`molleak audit --victim CHECKPOINT` (`run_given_victim`) runs the audit's one-step attack on a given
victim instead of pre-training one: the config's data tier gives the attacker's auxiliary set and
vocabulary, its `[attack]` the methods; there is no private set, no reference victim, no untrained
control, no evaluation and no two-step search. What remains measurable is the attack's output
itself: each method's top-K, and how much of a victim-based top-K the victim-free prior
(`prior_fp`, else `prior_freq`: the attacker's own data, no model) also ranks in its top-K. A large
overlap says the ranking comes from the data distribution rather than the victim; a small one says
the victim moves the ranking, not that the molecules were trained on.

It reuses the audit's steps (`molleak.plans.audit`) and the one cell runner; `audit.json` holds
`training_set: "unknown"` and the overlaps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from molleak.config import AuditConfig
from molleak.plans.runner import Executor

#: what needs the victim's training set, and so is not computed for a victim whose set is unknown
NEEDS_TRAINING_SET = ("precision of the top-K against the private set (P_sub@K, P_exact@K) and its base rates, "
                      "ROC-AUC, precision against the reference set (P'), the private-only attribution test "
                      "(victim vs a reference victim trained on a disjoint set) and membership")
PRIORS = ("prior_fp", "prior_freq")
SHOWN = 5  # top molecules listed per method


def prior_overlap(runs: Mapping[str, str | Path], k: int) -> dict[str, Any]:
    """Top-K of every run and, per victim-based run, its overlap with the victim-free prior's top-K.

    Args:
        runs: run name (`one_step/<method>`, ...) -> run directory, as the audit lists them.
        k: the K of the runs.

    Returns:
        {"prior": run name or None, "k": k, "needs_training_set": NEEDS_TRAINING_SET,
         "runs": {name: {"method", "uses_victim", "top": [first SHOWN SMILES], "n_topk",
                         "overlap_with_prior": shared molecules / K or None, "chance_overlap": K / scored}}}
    """
    from molleak import rundir
    from molleak.attack.methods import method_uses_victim

    tops, info = {}, {}
    for name, path in runs.items():
        summary = rundir.read_extract(path)
        tops[name] = rundir.read_topk(path).smiles
        info[name] = {"method": summary.method, "uses_victim": method_uses_victim(summary.method),
                      "n_scored": summary.n_scored}
    prior = next((n for p in PRIORS for n in runs if info[n]["method"] == p and n.startswith("one_step/")), None)
    out: dict[str, Any] = {"prior": prior, "k": k, "needs_training_set": NEEDS_TRAINING_SET, "runs": {}}
    for name, top in tops.items():
        row = {"method": info[name]["method"], "uses_victim": info[name]["uses_victim"], "top": top[:SHOWN],
               "n_topk": len(top), "overlap_with_prior": None, "chance_overlap": None}
        same_pool = prior is not None and name.split("/")[0] == prior.split("/")[0]
        if same_pool and info[name]["uses_victim"] and top:
            row["overlap_with_prior"] = len(set(top) & set(tops[prior])) / len(top)
            if info[name]["n_scored"]:
                row["chance_overlap"] = len(tops[prior]) / info[name]["n_scored"]
        out["runs"][name] = row
    return out


def overlap_lines(res: dict[str, Any]) -> list[str]:
    """The CLI's account: what was measured, and plainly what was not."""
    lines = ["training set unknown: the attack ran; nothing is scored against a training set"]
    for name, row in res["runs"].items():
        if row["overlap_with_prior"] is not None:
            prior_k = res["runs"][res["prior"]]["n_topk"]
            lines.append(f"{name}: {row['overlap_with_prior']:.0%} of its top-{row['n_topk']} is also in "
                         f"{res['prior']}'s top-{prior_k} (a random top-{prior_k} of the same pool: "
                         f"{row['chance_overlap']:.0%}); its top {len(row['top'])}: {', '.join(row['top'])}")
        elif row["uses_victim"]:
            lines.append(f"{name}: top: {', '.join(row['top'])}")
    if res["prior"] is None:
        lines.append("no victim-free prior ran (add prior_fp to one_step_methods): no overlap to report")
    lines.append(f"not computed (needs the victim's training set): {res['needs_training_set']}")
    return lines


def run_given_victim(config: AuditConfig, out_dir: str | Path, victim: str | Path, *, force: bool = False,
                     executor: Executor | None = None) -> dict[str, Any]:
    """The one-step attack of `config` on `victim` (a molleak or raw pretrain-gnns checkpoint), resumable;
    returns the content of `audit.json`. The config's `[victim]` recipe is not used."""
    from molleak import rundir
    from molleak.errors import InputFileError
    from molleak.models.checkpoint import load_encoder
    from molleak.plans.audit import _mine_vocab, _prepare_data, _run_cells, _stage
    from molleak.plans.cells import extract_cell_spec
    from molleak.runs import sha256_file, start_run, write_json_atomic

    t0 = time.perf_counter()
    path = Path(victim).resolve()
    if not path.is_file():
        raise InputFileError(f"--victim {victim}: checkpoint not found")
    load_encoder(path)  # one clear error now rather than one per extraction cell
    inputs = {**config.model_dump(exclude={"victim"}),
              "victim_checkpoint": {"path": str(path), "sha256": sha256_file(path)}, "training_set": "unknown"}
    out, _ = rundir.open_run(out_dir, inputs, force=force)
    start_run(out, {**inputs, "inputs": inputs, "inputs_sha256": rundir.inputs_sha256(inputs)}, config.attack.seed)
    a = config.attack
    _stage("data (the attacker's auxiliary set)")
    data = _prepare_data(config, out)
    _stage("vocabulary (aux set only)")
    vocab = _mine_vocab(config, data, out)
    _stage("one-step extraction (no evaluation: the training set is unknown)")
    common = {"aux": str(data / "aux.smi"), "vocab": str(vocab), "k": a.k, "seed": a.seed, "victim": str(path),
              "steps": 1}
    one = out / "runs" / "one_step"
    methods = list(a.one_step_methods)
    # as in the audit: the first method enumerates the pool, the others rank that same file
    runs = _run_cells([extract_cell_spec(methods[0], {**common, "method": methods[0]})], one, "one-step extraction",
                      executor)
    pool = one / methods[0] / rundir.POOL_FILE
    runs.update(_run_cells([extract_cell_spec(m, {**common, "method": m, "pool": str(pool) if pool.is_file() else None})
                            for m in methods[1:]], one, "one-step extraction", executor))
    runs = {f"one_step/{k}": v for k, v in runs.items()}
    summary = {"runs": {k: str(v) for k, v in runs.items()}, "models": {"victim": str(path)}, "training_set": "unknown",
               "unknown_training_set": prior_overlap(runs, a.k), "seconds": round(time.perf_counter() - t0, 1)}
    write_json_atomic(out / "audit.json", summary)
    return summary
