"""The whole audit from one config: data, victim and controls, extraction, evaluation, report.

Every step is a plan of cells run by the one cell runner (`molleak.plans.runner`): a cell is
reused while its inputs (parameters, the bytes of the victim and data it reads) are unchanged, so an
interrupted audit resumes where it stopped, and a changed input reruns exactly what depends on it.
An audit directory holding an audit of another config is refused (or discarded with --force).

1. `data/`: the MOSES tier (`molleak.data.splits.prepare_tier`).
2. `models/`: the victim (the config's recipe on private.smi), its reference victim (the same
   recipe and seed on the disjoint reference.smi) and the same encoder untrained.
3. `vocab/`: templates and motifs mined from the auxiliary set only.
4. `runs/one_step/<method>`: one-step extraction by every configured method against the victim,
   plus the adapter against the reference victim and the untrained encoder (the controls);
   `runs/two_step/<method>`: two-step extraction from the most frequent templates with at most
   `two_step_max_points` attachment points (multi-point templates make two-step pools of
   hundreds of thousands of records, which enumerate-and-rank must enumerate).
5. Evaluation of every run against the private set and, as a second bank, the reference set (in
   the same cell as its extraction: the owner's side).
6. `attribution.json`: the private-only test (victim vs reference victim, identical attack
   settings) and whole-molecule membership (victim vs reference).
7. `audit.json` (the headline table) and `report.html`.

The attack steps (3, 4) never read private.smi; only step 5 and the membership test do.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from molleak import rundir
from molleak.config import AuditConfig
from molleak.plans.cells import extract_cell_spec
from molleak.plans.runner import Cell, Executor, run_plan
from molleak.runs import start_run, write_json_atomic

log = logging.getLogger(__name__)

CONTROL_VICTIMS = ("reference", "untrained")


def _stage(name: str) -> None:
    log.info("== %s", name)


def _prepare_data(config: AuditConfig, out: Path) -> Path:
    from molleak.data.splits import prepare_tier

    data = out / "data"
    manifest = data / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        if m.get("tier") == config.data.tier and m.get("seed") == config.data.seed:
            log.info("reusing the %s tier in %s", config.data.tier, data)
            return data
    prepare_tier(config.data.tier, config.data.seed, data)
    return data


def _build_models(config: AuditConfig, data: Path, out: Path, progress: bool,
                  executor: Executor | None = None) -> dict[str, Path]:
    """The victim, its reference victim (same recipe and seed on reference.smi) and its untrained
    encoder: cells of one plan, each built or reused by the one victim builder."""
    from molleak.plans.cells import victim_cell_spec
    from molleak.pretrain.trainer import PretrainConfig

    v = config.victim
    recipe = PretrainConfig(strategy=v.strategy, epochs=v.epochs, batch_size=v.batch_size, lr=v.lr, seed=v.seed,
                            encoder_config={"num_layers": v.layers, "emb_dim": v.emb_dim})
    models = out / "models"
    paths = {"victim": models / "victim.pt", "untrained": models / "untrained.pt"}
    cells = [victim_cell_spec("victim", "victim", recipe, paths["victim"], data=data / "private.smi",
                              train_name=str(data / "private.smi"))]
    if v.reference:
        paths["reference"] = models / "reference.pt"
        cells.append(victim_cell_spec("reference", "reference", recipe, paths["reference"], data=data / "reference.smi",
                                      train_name="reference.smi",
                                      extra_provenance={"reference_of": str(paths["victim"])}))
    cells.append(victim_cell_spec("untrained", "untrained", recipe, paths["untrained"]))
    plan = run_plan(cells, models / "cells", executor, progress=progress, what="audit models")
    for cell in cells:
        plan.result(cell.id)  # a failed model stops the audit with its error
    return {name: paths[name] for name in ("victim", "reference", "untrained") if name in paths}


def _mine_vocab(config: AuditConfig, data: Path, out: Path) -> Path:
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    vocab = out / "vocab"
    if (vocab / "vocab.json").is_file():
        return vocab
    aux = read_smiles(data / "aux.smi", what="auxiliary set", canonicalize=False).smiles
    mine_vocabulary(aux, config.attack.n_templates, config.attack.n_motifs, source=str(data / "aux.smi")).save(vocab)
    return vocab


def _run_cells(cells: list[Cell], runs_dir: Path, what: str, executor: Executor | None = None) -> dict[str, Path]:
    """Extraction cells (each evaluated against the private set and the reference set) through the
    one cell runner: a cell is reused while its inputs are unchanged and rerun when they changed."""
    plan = run_plan(cells, runs_dir, executor, what=what)
    for cell in cells:
        plan.result(cell.id)
    return {cell.id: runs_dir / cell.id for cell in cells}


def format_table(rows: list[dict[str, Any]], *, seconds: bool = True) -> str:
    """The headline rows as a plain-text table (values with intervals by `rundir.format_estimate`).

    `seconds=False` leaves out the wall-time column: the documented tables (`molleak.report.docblocks`)
    hold only what a re-run with the same data and seeds reproduces.
    """
    from molleak.report.summary import HeadlineRow

    parsed = [HeadlineRow.model_validate(r) for r in rows]
    sub, exact = rundir.KINDS
    # the K the evaluation reported (every row of one summary has the same keys)
    ks = sorted({int(key.rsplit("@", 1)[1]) for r in parsed for key in r.precision}) or list(rundir.K_LIST)
    k1, kmax = ks[0], ks[-1]

    def est(row: HeadlineRow, key: str) -> str:
        e = row.precision.get(key)
        return rundir.format_estimate(e) if e is not None else "-"

    cols: list[tuple[str, Any]] = [
        ("run", lambda r: ", ".join(r.runs)), ("role", lambda r: r.role_label),
        (f"P_sub@{k1}", lambda r: est(r, rundir.precision_key(sub, k1))),
        (f"P_sub@{kmax}", lambda r: est(r, rundir.precision_key(sub, kmax))),
        ("base_sub", lambda r: rundir.format_estimate(r.base_rate.get(sub))),
        (f"P_exact@{kmax}", lambda r: est(r, rundir.precision_key(exact, kmax))),
        ("base_exact", lambda r: rundir.format_estimate(r.base_rate.get(exact))),
        (f"P'_sub@{kmax}", lambda r: rundir.format_estimate(r.reference_bank_precision)),
        ("AUC", lambda r: rundir.format_estimate(r.auc)),
        ("queries", lambda r: "-" if r.queries is None else str(r.queries)),
        ("s", lambda r: "-" if r.seconds is None else f"{r.seconds:.0f}")]
    if not seconds:
        cols = [c for c in cols if c[0] != "s"]
    table = [[h for h, _ in cols]] + [[cell(r) for _, cell in cols] for r in parsed]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_audit(config: AuditConfig, out_dir: str | Path, *, progress: bool = True, force: bool = False,
              executor: Executor | None = None) -> dict[str, Any]:
    """Run (or resume) the whole audit into `out_dir`; returns the content of `audit.json`.

    `out_dir` is resumed only when it holds an audit of the same config; an audit of another config
    is refused (or, with `force`, discarded and started afresh). `executor` runs its plans (models,
    extraction cells; default: in this process), e.g. a `RayExecutor`.
    """
    t0 = time.perf_counter()
    inputs = config.model_dump()
    out, _ = rundir.open_run(out_dir, inputs, force=force)
    start_run(out, {**inputs, "inputs": inputs, "inputs_sha256": rundir.inputs_sha256(inputs)}, config.attack.seed)
    a = config.attack

    _stage("data")
    data = _prepare_data(config, out)
    _stage("victim, reference victim, untrained encoder")
    models = _build_models(config, data, out, progress, executor)
    from molleak.victims.overlap import check_attacker_sets

    check_attacker_sets(models["victim"], [data / "aux.smi"], search_dirs=(data,))  # refused on overlap
    _stage("vocabulary (aux set only)")
    vocab = _mine_vocab(config, data, out)

    runs: dict[str, Path] = {}
    common = {"aux": str(data / "aux.smi"), "vocab": str(vocab), "k": a.k, "seed": a.seed}
    banks = {"reference": str(data / "reference.smi")} if (data / "reference.smi").is_file() else {}
    evaluate = {"training_set": str(data / "private.smi"), "banks": banks}

    def cell(name: str, **extract: Any) -> Cell:
        return extract_cell_spec(name, {**common, **extract}, evaluate)

    _stage("one-step extraction")
    one = out / "runs" / "one_step"
    methods = list(a.one_step_methods)
    # the first method enumerates the one-step pool; every other run and control ranks that same file
    first = _run_cells([cell(methods[0], victim=str(models["victim"]), steps=1, method=methods[0])], one,
                       "one-step extraction", executor)
    runs.update({f"one_step/{k}": v for k, v in first.items()})
    pool_file = one / methods[0] / rundir.POOL_FILE
    pool_one = str(pool_file) if pool_file.is_file() else None
    cells = [cell(m, victim=str(models["victim"]), steps=1, method=m, pool=pool_one) for m in methods[1:]]
    cells += [cell(f"adapter@{c}", victim=str(models[c]), role=c, steps=1, method="adapter", pool=pool_one)
              for c in CONTROL_VICTIMS if c in models]
    runs.update({f"one_step/{k}": v for k, v in _run_cells(cells, one, "one-step extraction", executor).items()})
    if a.two_step:
        _stage("two-step extraction")
        from molleak.attack.methods import method_needs
        from molleak.candidates.vocab import Vocabulary

        voc = Vocabulary.load(vocab)  # templates are ordered by aux frequency
        templates = [i for i in range(len(voc.templates)) if voc.template_points(i) <= a.two_step_max_points]
        templates = templates[: a.two_step_templates]
        # one enumeration shared by every enumerate-and-rank method and control (the searches
        # build their molecules themselves and take no pool)
        pool_two = out / "pools" / f"two_step_{'_'.join(map(str, templates))}.tsv.gz"
        if not pool_two.is_file():
            from molleak.candidates.enumerate import write_enumeration

            stats = write_enumeration(voc, pool_two, steps=2, templates=templates)
            log.info("two-step pool: %s", stats)
        two = {"steps": 2, "templates": templates, "budget": a.budget}
        cells = [cell(m, victim=str(models["victim"]), method=m,
                      pool=str(pool_two) if method_needs(m).candidates == "pool" else None, **two)
                 for m in a.two_step_methods]
        if "reference" in models and "adapter-budget" in a.two_step_methods:
            cells.append(cell("adapter-budget@reference", victim=str(models["reference"]), role="reference",
                              method="adapter-budget", pool=str(pool_two), **two))
        runs.update({f"two_step/{k}": v for k, v in _run_cells(cells, out / "runs" / "two_step",
                                                                "two-step extraction", executor).items()})

    attribution: dict[str, Any] = {}
    if "reference" in models:
        _stage("attribution: private-only test and membership")
        from molleak.evaluate.attribution import attribute_runs
        from molleak.plans.leakage import run_leakage

        for steps, method in (("one_step", "adapter"), ("two_step", "adapter-budget")):
            v, r = runs.get(f"{steps}/{method}"), runs.get(f"{steps}/{method}@reference")
            if v is not None and r is not None:
                attribution[steps] = attribute_runs(v, r, data, seed=a.seed)

        attribution["membership"] = run_leakage(models["victim"], data, out / "leakage",
                                                reference_path=models["reference"], seed=a.seed)["membership"]
        write_json_atomic(out / "attribution.json", attribution)
    if config.membership.shadows:
        _stage("shadow-model membership (LiRA, RMIA)")
        from molleak.plans.shadows import ShadowPlan, shadow_audit, shadow_summary

        m = config.membership
        plan = ShadowPlan(n_shadows=m.shadows, statistics=tuple(m.statistics), seed=a.seed)
        result = shadow_audit(models["victim"], data / "private.smi", data / "holdout.smi",
                              [data / "aux.smi", data / "reference.smi"], out / "shadow_membership", plan,
                              n_targets=m.targets, executor=executor, progress=progress)
        attribution["shadow_membership"] = shadow_summary(result, config.victim.strategy, m.power_ladder)
        write_json_atomic(out / "attribution.json", attribution)

    from molleak.report.summary import summarize_runs

    # the headline rows and the verdicts come from the one summary model the report also uses
    model = summarize_runs(runs, attribution or None)
    summary = {"runs": {k: str(v) for k, v in runs.items()}, "models": {k: str(v) for k, v in models.items()},
               "headline": [row.model_dump(mode="json") for row in model.rows],
               "seconds": round(time.perf_counter() - t0, 1)}
    if model.verdicts:
        summary["verdicts"] = {v.key: v.text for v in model.verdicts}
    write_json_atomic(out / "audit.json", summary)

    _stage("report")
    try:
        from molleak.report import write_report
    except ImportError:
        log.warning("the HTML report module is not available in this build; skipping report.html")
    else:
        summary["report"] = str(write_report(out))
        write_json_atomic(out / "audit.json", summary)
    return summary
