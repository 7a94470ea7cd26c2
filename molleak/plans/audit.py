"""The whole audit from one config: data, victim and controls, extraction, evaluation, report.

Steps (each skipped when its output already exists for the same inputs, so an interrupted audit
resumes where it stopped):

1. `data/`: the MOSES tier (`molleak.data.splits.prepare_tier`).
2. `models/`: the victim (the config's recipe on private.smi), its reference victim (the same
   recipe and seed on the disjoint reference.smi) and the same encoder untrained.
3. `vocab/`: templates and motifs mined from the auxiliary set only.
4. `runs/one_step/<method>`: one-step extraction by every configured method against the victim,
   plus the adapter against the reference victim and the untrained encoder (the controls);
   `runs/two_step/<method>`: two-step extraction from the most frequent templates with at most
   `two_step_max_points` attachment points (multi-point templates make two-step pools of
   hundreds of thousands of records, which enumerate-and-rank must enumerate).
5. Evaluation of every run against the private set and, as a second bank, the reference set.
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


def _build_models(config: AuditConfig, data: Path, out: Path, progress: bool) -> dict[str, Path]:
    from molleak.data.smiles_io import read_smiles
    from molleak.plans.leakage import build_reference_victim, build_untrained, train_victim
    from molleak.pretrain.trainer import PretrainConfig

    v = config.victim
    recipe = PretrainConfig(strategy=v.strategy, epochs=v.epochs, batch_size=v.batch_size, lr=v.lr, seed=v.seed,
                            encoder_config={"num_layers": v.layers, "emb_dim": v.emb_dim})
    models = out / "models"
    private = read_smiles(data / "private.smi", what="private set", canonicalize=False).smiles
    paths = {"victim": train_victim(private, recipe, models / "victim.pt", train_name=str(data / "private.smi"),
                                    progress=progress)}
    if v.reference:
        reference = read_smiles(data / "reference.smi", what="reference set", canonicalize=False).smiles
        paths["reference"] = build_reference_victim(paths["victim"], reference, models / "reference.pt")
    paths["untrained"] = build_untrained(paths["victim"], models / "untrained.pt")
    return paths


def _mine_vocab(config: AuditConfig, data: Path, out: Path) -> Path:
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    vocab = out / "vocab"
    if (vocab / "vocab.json").is_file():
        return vocab
    aux = read_smiles(data / "aux.smi", what="auxiliary set", canonicalize=False).smiles
    mine_vocabulary(aux, config.attack.n_templates, config.attack.n_motifs, source=str(data / "aux.smi")).save(vocab)
    return vocab


def _extract_once(run_dir: Path, **kwargs: Any) -> Path:
    """One extraction into `run_dir`: reused when its resolved inputs are unchanged, replaced when
    they changed (a rebuilt victim), by the run contract's rule (`molleak.rundir.open_run`)."""
    from molleak.attack.run import extract_config, run_extract

    run_extract(extract_config(out=str(run_dir), **kwargs), on_conflict="replace")
    return run_dir


def _evaluate_once(run_dir: Path, data: Path) -> dict[str, Any]:
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.evaluate import evaluate_run
    from molleak.runs import sha256_lines

    private = data / "private.smi"
    if rundir.results_current(run_dir, sha256_lines(read_smiles(private, what="private set").smiles)):
        return rundir.read_json(run_dir / rundir.RESULTS_FILE, "results")
    banks = {"reference": str(data / "reference.smi")} if (data / "reference.smi").is_file() else None
    return evaluate_run(run_dir, private, extra_banks=banks)


def headline_rows(runs: dict[str, Path]) -> list[dict[str, Any]]:
    """One row per evaluated run: precision with base rates, AUC, queries and seconds."""
    rows = []
    for name, run_dir in runs.items():
        if not (run_dir / rundir.RESULTS_FILE).is_file():
            continue
        res = rundir.read_json(run_dir / rundir.RESULTS_FILE, "results")
        row: dict[str, Any] = {"run": name}
        for key in ("precision_substructure@50", "precision_substructure@100", "precision_substructure@200",
                    "precision_exact@200", "base_rate_substructure", "base_rate_exact", "auc", "tpr@1%fpr",
                    "queries", "seconds_total"):
            val = res.get(key)
            row[key] = val.get("value") if isinstance(val, dict) else val
        ref = res.get("banks", {}).get("reference", {})
        val = ref.get("precision_substructure@200")
        row["reference_bank_precision_substructure@200"] = val.get("value") if isinstance(val, dict) else val
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    cols = [("run", "run"), ("P_sub@50", "precision_substructure@50"), ("P_sub@200", "precision_substructure@200"),
            ("base_sub", "base_rate_substructure"), ("P_exact@200", "precision_exact@200"),
            ("base_exact", "base_rate_exact"), ("P'_sub@200", "reference_bank_precision_substructure@200"),
            ("AUC", "auc"), ("queries", "queries"), ("s", "seconds_total")]

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    table = [[h for h, _ in cols]] + [[fmt(r.get(k)) for _, k in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_audit(config: AuditConfig, out_dir: str | Path, *, progress: bool = True, force: bool = False) -> dict[str, Any]:
    """Run (or resume) the whole audit into `out_dir`; returns the content of `audit.json`.

    `out_dir` is resumed only when it holds an audit of the same config; an audit of another config
    is refused (or, with `force`, discarded and started afresh).
    """
    t0 = time.perf_counter()
    inputs = config.model_dump()
    out, _ = rundir.open_run(out_dir, inputs, force=force)
    start_run(out, {**inputs, "inputs": inputs, "inputs_sha256": rundir.inputs_sha256(inputs)}, config.attack.seed)
    a = config.attack

    _stage("data")
    data = _prepare_data(config, out)
    _stage("victim, reference victim, untrained encoder")
    models = _build_models(config, data, out, progress)
    _stage("vocabulary (aux set only)")
    vocab = _mine_vocab(config, data, out)

    runs: dict[str, Path] = {}
    common = {"aux": str(data / "aux.smi"), "vocab": str(vocab), "k": a.k, "seed": a.seed}
    _stage("one-step extraction")
    one = out / "runs" / "one_step"
    pool_one: str | None = None
    for method in a.one_step_methods:
        run = _extract_once(one / method, victim=str(models["victim"]), steps=1, method=method, pool=pool_one,
                            **common)
        pool_one = pool_one or (str(run / rundir.POOL_FILE) if (run / rundir.POOL_FILE).is_file() else None)
        runs[f"one_step/{method}"] = run
    for control in CONTROL_VICTIMS:
        if control in models:
            runs[f"one_step/adapter@{control}"] = _extract_once(
                one / f"adapter@{control}", victim=str(models[control]), role=control, steps=1, method="adapter",
                pool=pool_one, **common)
    if a.two_step:
        _stage("two-step extraction")
        two = out / "runs" / "two_step"
        from molleak.attack.methods import method_needs
        from molleak.candidates.vocab import Vocabulary

        voc = Vocabulary.load(vocab)  # templates are ordered by aux frequency
        templates = [i for i in range(len(voc.templates)) if voc.template_points(i) <= a.two_step_max_points]
        templates = templates[: a.two_step_templates]
        # one enumeration shared by every enumerate-and-rank method and control (the searches
        # build their molecules themselves and take no pool)
        pool_file = out / "pools" / f"two_step_{'_'.join(map(str, templates))}.tsv.gz"
        if not pool_file.is_file():
            from molleak.candidates.enumerate import write_enumeration

            stats = write_enumeration(voc, pool_file, steps=2, templates=templates)
            log.info("two-step pool: %s", stats)
        pool_two = str(pool_file)
        for method in a.two_step_methods:
            uses_pool = method_needs(method).candidates == "pool"
            run = _extract_once(two / method, victim=str(models["victim"]), steps=2, method=method,
                                templates=templates, budget=a.budget, pool=pool_two if uses_pool else None,
                                **common)
            runs[f"two_step/{method}"] = run
        if "reference" in models and "adapter-budget" in a.two_step_methods:
            runs["two_step/adapter-budget@reference"] = _extract_once(
                two / "adapter-budget@reference", victim=str(models["reference"]), role="reference", steps=2,
                method="adapter-budget",
                templates=templates, budget=a.budget, pool=pool_two, **common)

    _stage("evaluation against the private set (and the reference set)")
    for run in runs.values():
        _evaluate_once(run, data)

    attribution: dict[str, Any] = {}
    if "reference" in models:
        _stage("attribution: private-only test and membership")
        from molleak.plans.leakage import attribute_runs, run_leakage

        for steps, method in (("one_step", "adapter"), ("two_step", "adapter-budget")):
            v, r = runs.get(f"{steps}/{method}"), runs.get(f"{steps}/{method}@reference")
            if v is not None and r is not None:
                attribution[steps] = attribute_runs(v, r, data, seed=a.seed)

        attribution["membership"] = run_leakage(models["victim"], data, out / "leakage",
                                                reference_path=models["reference"], seed=a.seed)["membership"]
        write_json_atomic(out / "attribution.json", attribution)

    rows = headline_rows(runs)
    summary = {"runs": {k: str(v) for k, v in runs.items()}, "models": {k: str(v) for k, v in models.items()},
               "headline": rows, "seconds": round(time.perf_counter() - t0, 1)}
    verdicts = {k: v.get("verdict") for k, v in attribution.items() if isinstance(v, dict) and "verdict" in v}
    if verdicts:
        summary["verdicts"] = verdicts
    write_json_atomic(out / "audit.json", summary)

    _stage("report")
    try:
        from molleak.evaluate.report import write_report
    except ImportError:
        log.warning("the HTML report module is not available in this build; skipping report.html")
    else:
        summary["report"] = str(write_report(out))
        write_json_atomic(out / "audit.json", summary)
    return summary
