"""Docking as plan cells: the molecules a docking baseline scores, docked a chunk per `dock` cell.

Docking costs seconds to minutes per molecule, so a plan that docks (the bench's `dock` cells)
docks ahead of its extraction cells: the molecules are split into chunks, one `dock` cell each,
run by the plan's executor (local processes or Ray tasks, resumed by key like any cell), and their
energies are merged into the docking cache (`molleak.attack.scoring.dock.cache_file`) that the
`dock` score reads; the score then finds every molecule docked and docks none itself.

A `dock` cell's key covers the receptor's bytes, the box, exhaustiveness, seed and its molecules;
its energies come back in its record (so a Ray task returns them even without a shared
filesystem). A chunk's energies do not depend on the chunking or the worker (Vina is seeded per
docking: `DockSettings.vina_seed`). Only molecules not already in the cache become cells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from molleak.attack.scoring.dock import DockSettings, cache_file, dock_smiles, read_cache, write_cache
from molleak.plans.runner import CELL_KINDS, Cell, Executor, PlanResult, run_plan

#: molecules per `dock` cell: small enough to spread a few hundred molecules over many workers, large
#: enough that a cell's grid set-up (a second or two) is paid once for several dockings
DOCK_CHUNK = 8


@CELL_KINDS.register("dock")
def dock_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """params: receptor, center, size, exhaustiveness, seed, timeout, smiles (the chunk).

    Returns energies (SMILES -> kcal/mol, None where docking failed) and failures (SMILES -> reason).
    """
    settings = settings_of(params)
    energies, failures = dock_smiles(list(params["smiles"]), settings, workers=1, timeout=float(params["timeout"]))
    return {"energies": {s: (None if math.isnan(e) else float(e)) for s, e in zip(params["smiles"], energies,
                                                                                   strict=True)},
            "failures": failures}


def settings_of(params: dict[str, Any]) -> DockSettings:
    return DockSettings(str(params["receptor"]), tuple(params["center"]), tuple(params["size"]),
                        int(params["exhaustiveness"]), int(params["seed"]))


def dock_cells(prefix: str, smiles: Sequence[str], settings: DockSettings, cache_dir: str | Path, *,
               chunk: int = DOCK_CHUNK, timeout: float = 60.0) -> list[Cell]:
    """The `dock` cells (ids `<prefix>-0000`, ...) of the molecules of `smiles` not yet in the cache."""
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    cached = read_cache(cache_file(cache_dir, settings))
    todo = [s for s in dict.fromkeys(smiles) if s not in cached]
    base = {"receptor": settings.receptor, "center": list(settings.center), "size": list(settings.size),
            "exhaustiveness": settings.exhaustiveness, "seed": settings.seed, "timeout": float(timeout)}
    return [Cell(f"{prefix}-{i // chunk:04d}", "dock", {**base, "smiles": todo[i:i + chunk]}, (settings.receptor,))
            for i in range(0, len(todo), chunk)]


def store_docked(plan: PlanResult, cells: Sequence[Cell], cache_dir: str | Path | Mapping[str, Path]) -> int:
    """Merge the energies of the plan's finished `dock` cells into their settings' caches (`cache_dir`, or
    per cell id); returns how many molecules were added. A failed cell (its grid could not be built, say)
    adds nothing: the score docks those molecules itself, or the next run tries the cell again."""
    added = 0
    by_file: dict[Path, list[dict[str, Any]]] = {}
    for cell in cells:
        record = plan.records[cell.id]
        where = cache_dir[cell.id] if isinstance(cache_dir, Mapping) else cache_dir
        if record["status"] == "done":
            by_file.setdefault(cache_file(where, settings_of(cell.params)), []).append(record["result"])
    for path, results in by_file.items():
        cache = read_cache(path)
        for result in results:
            for smi, energy in result["energies"].items():
                if smi not in cache:
                    cache[smi] = (float("nan") if energy is None else float(energy), result["failures"].get(smi, ""))
                    added += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cache(path, cache)
    return added


def dock_ahead(extract_cells: Sequence[Cell], extract_dir: str | Path, cells_dir: str | Path,
               executor: Executor | None = None, *, chunk: int = DOCK_CHUNK) -> PlanResult | None:
    """Dock, as `dock` cells, what a plan's pending `dock` extraction cells will score, into the caches their
    `dock` scores read; None when there is nothing to dock.

    Args:
        extract_cells: the plan's `extract` cells (others, and finished ones, are passed over).
        extract_dir: where those cells' directories are (the default cache is `<cell dir>/dock_cache`).
        cells_dir: where the `dock` cells' directories go.
    """
    from molleak.attack.context import AttackContext
    from molleak.attack.scoring.base import build_score
    from molleak.plans.runner import cell_done

    cells: list[Cell] = []
    cache_of: dict[str, Path] = {}
    seen: set[tuple[Path, str]] = set()  # two extraction cells with the same settings dock a molecule once
    for cell in extract_cells:
        ex = cell.params.get("extract") or {}
        if cell.kind != "extract" or ex.get("method") != "dock" or not ex.get("pool") or ex.get("seed") is None:
            continue  # a run that draws its seed, or enumerates its pool, is docked by its score
        cell_dir = Path(extract_dir) / cell.id
        if cell_done(cell, cell_dir) is not None:
            continue
        options = dict(ex.get("options") or {})
        score = build_score("dock", options)
        seed = int(ex["seed"])
        pool = AttackContext(aux_smiles=[], seed=seed, pool_path=ex["pool"]).smiles
        settings = score.settings(seed)
        cache_dir = Path(options.get("cache_dir") or cell_dir / "dock_cache")
        chosen = [pool[i] for i in score.chosen(len(pool), seed)]
        chosen = [s for s in chosen if (cache_file(cache_dir, settings), s) not in seen]
        seen.update((cache_file(cache_dir, settings), s) for s in chosen)
        for dock in dock_cells(cell.id, chosen, settings, cache_dir, chunk=chunk, timeout=score.timeout):
            cells.append(dock)
            cache_of[dock.id] = cache_dir
    if not cells:
        return None
    plan = run_plan(cells, cells_dir, executor, what="docking")
    store_docked(plan, cells, cache_of)
    return plan


def dock_plan(smiles: Sequence[str], settings: DockSettings, cells_dir: str | Path, cache_dir: str | Path, *,
              executor: Executor | None = None, chunk: int = DOCK_CHUNK, timeout: float = 60.0,
              what: str = "dock") -> tuple[np.ndarray, dict[str, str], PlanResult]:
    """Dock `smiles` as cells of a plan (resumable; any executor) into the cache; returns their energies
    (NaN where docking failed or its cell failed), the failure reasons, and the plan's result."""
    cells = dock_cells(what, smiles, settings, cache_dir, chunk=chunk, timeout=timeout)
    plan = run_plan(cells, cells_dir, executor, what=what)
    store_docked(plan, cells, cache_dir)
    cache = read_cache(cache_file(cache_dir, settings))
    energies = np.array([cache.get(s, (float("nan"), ""))[0] for s in smiles], dtype=np.float64)
    failures = {s: cache[s][1] for s in smiles if s in cache and cache[s][1]}
    for cell in cells:  # molecules of failed cells: not docked, for the reason their cell gives
        record = plan.records[cell.id]
        if record["status"] != "done":
            failures.update({s: f"cell {cell.id} failed: {record.get('error')}" for s in cell.params["smiles"]})
    return energies, failures, plan
