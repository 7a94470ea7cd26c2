"""The resumable benchmark runner: data, victims, controls, vocabularies, pools, then one run per cell.

`run_bench(suite, bench_dir, config)` lays out `BENCH_DIR`:

- `config.json` (the `BenchConfig` and the data seed) and `metadata.json` (`molleak.runs.start_run`);
  a rerun with a different config into the same directory is refused (its cells would be stale).
- `data/`: the tier (`molleak.data.splits.prepare_tier`, less the regression victim's fine-tuning molecules:
  `victims.zoo.remove_finetuning_set`), unless `config.data` names one; aux sets overlapping a victim's training
  union are refused (`victims.overlap`).
- `zoo/`: the victims (`molleak.victims.zoo.build_zoo`, skipped when already built).
- `models/<victim>.reference.pt`, `models/<victim>.untrained.pt`: the control victims
  (`molleak.victims.controls`, built by `molleak.victims.build.ensure_victim`).
- `vocab/<aux>/`, `pools/<aux>-s<steps>.tsv.gz`: one vocabulary per aux set and one enumerated pool
  per (aux set, steps), shared by every pool-ranking cell (the policy assembles from the vocabulary).
- `cells/<cell-id>/`: a normal extraction run directory (`molleak.attack.run`) with `results.json`
  (`molleak.evaluate.evaluate_run`), plus `bench_cell.json` (the cell spec). A cell with a
  `results.json` is not recomputed. A cell that cannot run (no receptor, no reference victim for
  this victim, a method error) gets `skipped.json` with the reason instead, retried on the next run.
- `dock_cells/<cell-id>-NNNN/`, `dock_cache/`: the molecules of the `dock` cells, docked ahead a chunk per
  cell (`molleak.plans.dock.dock_ahead`, any executor) into the cache their score reads.
- `plan.json`: each suite's rows and the cell ids of their columns; `table.md`, `table.json`
  (`molleak.plans.bench.aggregate`).

The private set is read only by `evaluate_run` (molleak/evaluate); the attack runs never see it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from molleak import rundir
from molleak.errors import MolleakError
from molleak.plans.bench.suites import BenchConfig, CellSpec, Row, suite_rows
from molleak.plans.cells import extract_cell_spec
from molleak.plans.runner import Cell, Executor, LocalExecutor, run_plan
from molleak.runs import start_run, write_json_atomic

log = logging.getLogger(__name__)

ZOO_DIR = "zoo"
MODELS_DIR = "models"
CELLS_DIR = "cells"
PLAN_FILE = "plan.json"
SKIPPED_FILE = rundir.SKIPPED_FILE
CELL_FILE = rundir.BENCH_CELL_FILE


def _assembles(method: str) -> bool:
    """Whether a method assembles its own molecules from the vocabulary (declared at registration)."""
    from molleak.attack.methods import method_needs

    return method_needs(method).candidates == "vocabulary"


class BenchPaths:
    """Where a bench directory keeps its shared inputs."""

    def __init__(self, bench: Path, config: BenchConfig):
        self.bench = bench
        self.data = Path(config.data) if config.data else bench / "data"
        self.zoo = bench / ZOO_DIR
        self.models = bench / MODELS_DIR
        self.cells = bench / CELLS_DIR

    def aux(self, name: str) -> Path:
        return self.data / f"{name}.smi"

    def vocab(self, aux: str) -> Path:
        return self.bench / "vocab" / aux

    def pool(self, aux: str, steps: int) -> Path:
        return self.bench / "pools" / f"{aux}-s{steps}.tsv.gz"

    def victim(self, name: str, role: str) -> Path:
        if role == "victim":
            return self.zoo / f"{name}.pt"
        return self.models / f"{name}.{role}.pt"


def _check_config(bench: Path, config: BenchConfig) -> None:
    path = bench / rundir.CONFIG_FILE
    if not path.is_file():
        return
    old = json.loads(path.read_text()).get("bench")
    new = config.to_dict()
    if old is not None:
        # a setting added after the bench was made counts as unchanged while it keeps its default
        defaults = BenchConfig().to_dict()
        old = {**{k: defaults[k] for k in new if k not in old}, **old}
        if new.get("data"):
            # with --data the tier and its seed are the data directory's (benches made before they
            # were read from its manifest recorded the defaults instead)
            old = {**old, "tier": new["tier"], "data_seed": new["data_seed"]}
    if old is not None and old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise MolleakError(f"{bench} was made with a different bench config ({', '.join(diff)} differ); "
                           f"rerun with the same settings or use another --out")


def with_data_tier(config: BenchConfig) -> BenchConfig:
    """The config with `tier` and `data_seed` read from `config.data`'s manifest, when it has one.

    They are ignored when a data directory is given, so they are recorded as what that directory
    is, not as the defaults a reader of `config.json` would take for the data used.
    """
    if not config.data:
        return config
    manifest = Path(config.data) / "manifest.json"
    if not manifest.is_file():
        return config
    try:
        info = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        raise MolleakError(f"{manifest} is not valid JSON: {exc}") from None
    tier, seed = info.get("tier", config.tier), info.get("seed", config.data_seed)
    return replace(config, tier=str(tier), data_seed=int(seed))


def prepare_data(paths: BenchPaths, config: BenchConfig) -> None:
    """The tier's files (prepared once under BENCH_DIR/data when no data directory is given)."""
    if config.data:
        if not (paths.data / "private.smi").is_file():
            raise MolleakError(f"--data {paths.data} holds no private.smi (make it with `molleak data prepare`)")
        return
    if not (paths.data / "manifest.json").is_file():
        from molleak.data.splits import prepare_tier

        log.info("bench: preparing the %s tier (seed %d) in %s", config.tier, config.data_seed, paths.data)
        prepare_tier(config.tier, config.data_seed, paths.data)
    from molleak.victims.zoo import remove_finetuning_set

    remove_finetuning_set(paths.data)  # the regression victim's attacker never holds its fine-tuning set


def prepare_victims(paths: BenchPaths, config: BenchConfig, needed: set[tuple[str, str]],
                    executor: Executor | None = None) -> dict[tuple[str, str], str]:
    """Build the zoo victims and their control victims; returns (victim, role) -> reason it is unavailable.

    The controls are cells of one plan (`molleak.plans.runner`), built `victim_workers` at a time
    by the one victim builder; each is reused while its recipe and data are unchanged.
    """
    from molleak.plans.cells import victim_cell_spec
    from molleak.victims.build import recipe_of
    from molleak.victims.zoo import ZooConfig, build_zoo

    unavailable: dict[tuple[str, str], str] = {}
    names = sorted({v for v, _ in needed})
    if not names:
        return unavailable
    zoo = ZooConfig(epochs=config.epochs, seed=0, encoder_config=dict(config.encoder_config),
                    finetune_epochs=config.finetune_epochs)
    build_zoo(paths.data, paths.zoo, names, zoo, progress=False, workers=config.victim_workers, executor=executor)
    ref_set = paths.aux("reference")
    has_reference_set = ref_set.is_file() and ref_set.stat().st_size > 0
    cells, regression = [], []
    for victim, role in sorted(needed):
        if role == "victim":
            continue
        if role == "reference" and not has_reference_set:
            unavailable[(victim, role)] = f"no reference set at {ref_set} (the `full` tier has none)"
            continue
        if role == "reference" and victim == "regression":
            regression.append(victim)  # after its base strategy's reference (below)
            continue
        vpath = paths.victim(victim, "victim")
        try:
            recipe = recipe_of(vpath, f"a {role} control")
        except MolleakError as exc:
            unavailable[(victim, role)] = str(exc)
            continue
        if role == "untrained":
            cells.append(victim_cell_spec(f"{victim}.untrained", "untrained", recipe, paths.victim(victim, role)))
        else:
            cells.append(victim_cell_spec(f"{victim}.reference", "reference", recipe, paths.victim(victim, role),
                                          data=ref_set, train_name=str(ref_set),
                                          extra_provenance={"reference_of": str(vpath)}))
    bases: dict[str, str] = {}
    for victim in regression:
        try:
            bases[victim] = base = _regression_base(paths, victim)
        except MolleakError as exc:
            unavailable[(victim, "reference")] = str(exc)
            continue
        if not any(c.id == f"{base}.reference" for c in cells):
            recipe = recipe_of(paths.victim(base, "victim"), "a reference control")
            cells.append(victim_cell_spec(f"{base}.reference", "reference", recipe, paths.victim(base, "reference"),
                                          data=ref_set, train_name=str(ref_set),
                                          extra_provenance={"reference_of": str(paths.victim(base, "victim"))}))
    plan = run_plan(cells, paths.models / "cells", executor or LocalExecutor(config.victim_workers),
                    what="bench controls")
    for cell in cells:
        record = plan.records[cell.id]
        if record["status"] != "done":
            victim, role = cell.id.rsplit(".", 1)
            unavailable[(victim, role)] = record.get("error") or "failed"
    for victim, base in bases.items():
        if (base, "reference") in unavailable:
            unavailable[(victim, "reference")] = f"its base's reference victim failed: {unavailable[(base, 'reference')]}"
            if base not in names:
                del unavailable[(base, "reference")]
            continue
        from molleak.victims.controls import build_regression_reference

        try:
            build_regression_reference(paths.victim(victim, "victim"), paths.victim(base, "reference"),
                                       paths.victim(victim, "reference"))
        except MolleakError as exc:
            unavailable[(victim, "reference")] = str(exc)
    return unavailable


def _regression_base(paths: BenchPaths, victim: str) -> str:
    """The pre-training strategy a fine-tuned zoo victim was fine-tuned from (its provenance)."""
    from molleak.models.checkpoint import read_checkpoint_file

    base = read_checkpoint_file(paths.victim(victim, "victim")).get("provenance", {}).get("base_strategy")
    if not base:
        raise MolleakError(f"{paths.victim(victim, 'victim')}: no base strategy in its provenance")
    return base


def two_step_templates(config: BenchConfig, vocab_dir: Path) -> list[int]:
    """The two-step templates: the `two_step_templates` most frequent of the vocabulary (mined in order)."""
    from molleak.candidates.vocab import Vocabulary

    n = len(Vocabulary.load(vocab_dir).templates)
    return list(range(min(config.two_step_templates, n)))


def prepare_pools(paths: BenchPaths, config: BenchConfig, needed: set[tuple[str, int]],
                  vocabs: set[str]) -> dict[str, Any]:
    """Mine one vocabulary per aux set and enumerate one pool per (aux, steps); returns their sizes."""
    from molleak.candidates.enumerate import write_enumeration
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    info: dict[str, Any] = {}
    for aux in sorted(vocabs | {a for a, _ in needed}):
        vdir = paths.vocab(aux)
        if not (vdir / "vocab.json").is_file():
            smiles = read_smiles(paths.aux(aux), what=f"auxiliary set {aux}").smiles
            mine_vocabulary(smiles, config.n_templates, config.n_motifs, workers=config.workers,
                            source=paths.aux(aux).name).save(vdir)
    for aux, steps in sorted(needed):
        pool = paths.pool(aux, steps)
        if not pool.is_file():
            from molleak.candidates.vocab import Vocabulary

            templates = None if steps == 1 else two_step_templates(config, paths.vocab(aux))
            t0 = time.perf_counter()
            stats = write_enumeration(Vocabulary.load(paths.vocab(aux)), pool, steps, templates,
                                      workers=config.workers)
            log.info("bench: pool %s: %d records, %d unique molecules (%.1f s)", pool.name, stats.records,
                     stats.unique, time.perf_counter() - t0)
        info[pool.name] = {"path": str(pool)}
    return info


def _skip(cell_dir: Path, cell_id: str, reason: str) -> dict[str, Any]:
    log.warning("bench: cell %s skipped: %s", cell_id, reason)
    (cell_dir / rundir.CELL_FILE).unlink(missing_ok=True)  # a skipped cell is retried next time
    write_json_atomic(cell_dir / SKIPPED_FILE, {"cell": cell_id, "reason": reason})
    return {"status": "skipped", "reason": reason}


def training_set_file(paths: BenchPaths, spec: CellSpec) -> Path:
    """What a cell's hits are counted against: the private set, or for a victim trained on several
    sets (the fine-tuned regression victim) their union, written once as `data_union/<victim>.smi`.

    Every role of a victim row (victim, reference, untrained) is scored against the same set, so the
    control columns stay comparable with the attack column.
    """
    from molleak.victims.zoo import evaluation_training_set

    private = paths.data / "private.smi"
    if spec.victim is None:
        return private
    union = evaluation_training_set(paths.victim(spec.victim, "victim"), search_dirs=(paths.data,))
    if union is None:
        return private
    out = paths.bench / "data_union" / f"{spec.victim}.smi"
    if not out.is_file() or out.read_text(encoding="utf-8").splitlines() != union:  # a rebuilt victim: fresh union
        from molleak.data.smiles_io import write_smiles

        write_smiles(out, union)
    return out


def cell_of(paths: BenchPaths, config: BenchConfig, spec: CellSpec, seed: int) -> Cell:
    """The runner's `extract` cell of one bench cell: the extraction and its evaluation."""
    options = dict(spec.options)
    if spec.method == "dock":
        options["cache_dir"] = str(paths.bench / "dock_cache")
    search = _assembles(spec.method)
    extract = {
        "aux": str(paths.aux(spec.aux)),
        "victim": None if spec.victim is None else str(paths.victim(spec.victim, spec.role)),
        "role": spec.role if spec.victim is not None else None,
        "vocab": str(paths.vocab(spec.aux)) if search else None,
        "pool": None if search else str(paths.pool(spec.aux, spec.steps)),
        "steps": spec.steps,
        "templates": two_step_templates(config, paths.vocab(spec.aux)) if search and spec.steps > 1 else None,
        "method": spec.method, "options": options, "k": config.k, "budget": spec.budget, "seed": seed,
        "workers": config.workers}
    banks = {}
    ref = paths.aux("reference")
    if config.reference_bank and ref.is_file() and ref.stat().st_size > 0:
        banks["reference"] = str(ref)
    evaluate = {"training_set": str(training_set_file(paths, spec)), "banks": banks, "fcd": config.fcd,
                "fcd_seeds": config.fcd_seeds, "fcd_max_reference": config.fcd_max_reference}
    return extract_cell_spec(spec.cell_id(seed), extract, evaluate)


def _unrunnable(paths: BenchPaths, config: BenchConfig, spec: CellSpec,
                unavailable: dict[tuple[str, str], str]) -> str | None:
    """Why a cell cannot run now (no control victim, no receptor), or None."""
    if spec.victim is not None and (spec.victim, spec.role) in unavailable:
        return unavailable[(spec.victim, spec.role)]
    if spec.method == "dock":
        options = dict(spec.options)
        receptor = Path(str(options.get("receptor_dir") or "")) / f"{options.get('target')}.pdbqt"
        if not config.receptors or not receptor.is_file():
            return (f"no receptor file {receptor} (pass --receptors DIR holding "
                    f"{', '.join(f'{t}.pdbqt' for t in ('fa7', 'parp1', '5ht1b'))})")
    return None


def plan_of(rows: list[Row], seeds: int) -> list[dict[str, Any]]:
    """The rows with each column's cell ids (one per seed), as written to plan.json."""
    return [{"table": r.table, "key": r.key,
             "columns": {c: {"spec": s.to_dict(), "cells": [s.cell_id(seed) for seed in range(seeds)]}
                         for c, s in r.columns.items()}} for r in rows]


def run_bench(suite: str, bench_dir: str | Path, config: BenchConfig, *, n_boot: int = 1000,
              executor: Executor | None = None) -> dict[str, Any]:
    """Run (or resume) a suite into `bench_dir` and aggregate it; returns a summary.

    Args:
        suite: a name in `molleak.plans.bench.suites.SUITES`, or `all`.
        bench_dir: the bench directory (created; resumed when it exists with the same config).
        config: the suite settings.
        n_boot: bootstrap resamples of the aggregation.
        executor: runs every plan of the bench (victims, controls, cells), e.g. a `RayExecutor`
            (default: `victim_workers` local processes for victims, the cells in this process).
    """
    from molleak.plans.bench.aggregate import aggregate

    if config.seeds < 1:
        raise MolleakError(f"seeds must be at least 1, got {config.seeds}")
    if config.k < 1:
        raise MolleakError(f"k must be at least 1, got {config.k}")
    bench = Path(bench_dir)
    config = with_data_tier(config)
    _check_config(bench, config)
    rows = suite_rows(suite, config)
    start_run(bench, {"suite": suite, "bench": config.to_dict()}, config.data_seed)
    paths = BenchPaths(bench, config)
    cells: dict[str, tuple[CellSpec, int]] = {}
    for row in rows:
        for spec in row.columns.values():
            for seed in range(config.seeds):
                cells.setdefault(spec.cell_id(seed), (spec, seed))
    plan_path = bench / PLAN_FILE
    plan = json.loads(plan_path.read_text()) if plan_path.is_file() else {"suites": {}}
    names = [suite] if suite != "all" else sorted({r.table for r in rows})
    for name in names:
        plan["suites"][name] = plan_of([r for r in rows if suite != "all" or r.table == name], config.seeds)
    write_json_atomic(plan_path, plan)

    t0 = time.perf_counter()
    prepare_data(paths, config)
    # every cell is checked against its inputs (a rebuilt victim invalidates its cells), so every
    # victim is made sure of; the zoo and the controls reuse what is built
    pending = list(cells.values())
    unavailable = prepare_victims(paths, config, {(s.victim, s.role) for s, _ in pending if s.victim is not None},
                                  executor)
    from molleak.victims.overlap import check_attacker_pairs

    # refused: an aux set holding a victim's training molecules
    check_attacker_pairs({(paths.victim(s.victim, "victim"), paths.aux(s.aux)) for s, _ in pending if s.victim},
                         search_dirs=(paths.data,))
    prepare_pools(paths, config, {(s.aux, s.steps) for s, _ in pending if not _assembles(s.method)},
                  {s.aux for s, _ in pending})
    status: dict[str, Any] = {}
    runnable = []
    for cid, (spec, seed) in cells.items():
        reason = _unrunnable(paths, config, spec, unavailable)
        if reason is not None:
            status[cid] = _skip(paths.cells / cid, cid, reason)
        else:
            runnable.append(cell_of(paths, config, spec, seed))
    from molleak.plans.dock import dock_ahead

    # docking (seconds to minutes a molecule) runs ahead as cells of its own, spread by the executor
    dock_ahead(runnable, paths.cells, paths.bench / "dock_cells", executor or LocalExecutor(config.dock_workers))
    plan = run_plan(runnable, paths.cells, executor, what=f"bench {suite}")
    for cell in runnable:
        record = plan.records[cell.id]
        spec, seed = cells[cell.id]
        write_json_atomic(paths.cells / cell.id / CELL_FILE, {"cell": cell.id, "seed": seed, **spec.to_dict()})
        if record["status"] == "done":
            (paths.cells / cell.id / SKIPPED_FILE).unlink(missing_ok=True)
            status[cell.id] = {"status": "done", "seconds": record["seconds"]}
        else:
            status[cell.id] = _skip(paths.cells / cell.id, cell.id, f"{cell.params['extract']['method']} failed: "
                                                                    f"{record.get('error')}")
    status = {cid: status[cid] for cid in cells}
    resumed = plan.resumed
    tables = aggregate(bench, n_boot=n_boot)
    counts = {s: sum(1 for v in status.values() if v["status"] == s) for s in ("done", "skipped")}
    summary = {"suite": suite, "cells": len(cells), **counts,
               "resumed": resumed,
               "seconds": round(time.perf_counter() - t0, 2), "tables": sorted(tables["tables"])}
    write_json_atomic(bench / "bench.json", {**summary, "status": status})
    return summary
