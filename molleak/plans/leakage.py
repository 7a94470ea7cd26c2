"""Leakage attribution experiments: reference victims, membership audits, canaries, the sweep.

- `build_reference_victim`: the victim's own recipe (its checkpoint's `provenance["config"]`:
  strategy, encoder, epochs, batch size, learning rate, seed) trained on the disjoint
  `reference.smi`; `build_untrained`: the same encoder at its seeded random initialisation.
- `run_leakage`: whole-molecule membership (private sample vs holdout) for a victim, its
  reference victim and the untrained encoder, with the calibrated score.
- `run_canary`: the positive control. Canaries (held-out MOSES molecules) are planted r times into
  a private set; victims are trained for each (r, epochs). The lead result is victim-only: the
  victim's canaries vs unplanted non-members of the same distribution; second, the reference
  contrast against a reference victim trained on equally many disjoint molecules with molecules of
  its own planted as often (it never sees a canary, non-member or decoy: `molleak.plans.canary`).
- `run_sweep`: private-set size x epochs for one strategy: where does membership leakage start?

The canary grid and the sweep test the same question in many cells: every test's one-sided p is
Holm-adjusted across the grid's cells (`molleak.evaluate.grid`), each cell records raw and adjusted
p, and the tables mark the cells that survive at alpha 0.05. Verdicts state what was tested and
either "detected" or "not detected" with the test's power (`molleak.evaluate.verdicts`).

Everything is resumable: checkpoints are reused when their provenance matches the recipe and data,
and each finished cell is a JSON file under `<out>/cells/` that a rerun reads instead of
recomputing. Canary and sweep victims are built here (they are the experimenter's victims); their
membership is evaluated through `molleak.attack.membership`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from molleak.attack.membership import DEFAULT_STATISTIC
from molleak.data.smiles_io import read_smiles
from molleak.errors import InputFileError, MolleakError
from molleak.evaluate.attribution import to_jsonable
from molleak.evaluate.grid import holm_over_cells, lead_verdicts
from molleak.evaluate.membership import membership_audit
from molleak.models.victim import Victim
from molleak.plans.canary import CANARY_PROTOCOL, canary_extraction, draw_canary_sets, full_ranks  # noqa: F401
from molleak.plans.runner import CELL_KINDS, Cell, Executor, run_plan
from molleak.pretrain.trainer import PretrainConfig, recipe_version
from molleak.runs import write_json_atomic
from molleak.victims.controls import (
    build_reference_victim,
    build_untrained,
    plant_canaries,
    train_victim,
    write_training_list,
)

log = logging.getLogger(__name__)

#: the tests whose p-values are Holm-adjusted across a grid's cells, each a path into a cell's result
CANARY_FAMILIES = {
    "canaries, victim-only": ("canaries", "rows", "victim"),
    "canaries, reference contrast": ("canaries", "rows", "victim-minus-reference"),
    "private members, victim-only": ("private_members", "rows", "victim"),
    "private members, reference contrast": ("private_members", "rows", "victim-minus-reference"),
    "extraction, victim-only": ("extraction", "victim_only"),
    "extraction, reference contrast": ("extraction", "canary_vs_decoy"),
}
SWEEP_FAMILIES = {"victim-only": ("membership", "rows", "victim"),
                  "reference contrast": ("membership", "rows", "victim-minus-reference")}
#: membership cells record one-sided p-values from this protocol on (older cells are recomputed)
MEMBERSHIP_PROTOCOL = 2


def _read(path: Path, what: str) -> list[str]:
    if not path.exists():
        raise InputFileError(f"{what} not found: {path} (make it with `molleak data prepare`)")
    return read_smiles(path, what=what, canonicalize=False).smiles


def _sample(smiles: list[str], n: int, rng: np.random.Generator) -> list[str]:
    if n >= len(smiles):
        return list(smiles)
    return [smiles[i] for i in sorted(rng.choice(len(smiles), size=n, replace=False))]


def _run_cells(out: Path, cells: list[Cell], what: str, executor: Executor | None = None) -> dict[str, dict[str, Any]]:
    """Run an experiment's cells through the one cell runner (resumed by each cell's key); returns,
    per cell id, its result with the parameters it was made with and its seconds."""
    plan = run_plan(cells, out / "cells", executor, what=what)
    done = {}
    for cell in cells:
        record = plan.records[cell.id]
        if record["status"] != "done":
            raise MolleakError(f"{what}: cell {cell.id} failed: {record.get('error')}")
        done[cell.id] = {**record["result"], "params": cell.params, "seconds": record["seconds"]}
    return done


def run_leakage(
    victim_path: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    reference_path: str | Path | None = None,
    n_members: int = 1000,
    n_neighbours: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    statistic: str = DEFAULT_STATISTIC,
    power: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Membership audit of a victim against its reference victim and untrained encoder.

    Builds the reference victim from `data_dir/reference.smi` unless `reference_path` is given,
    and the untrained encoder, under `out_dir/models/`. The verdict leads with the victim-only test
    (private members vs holdout non-members), the reference contrast second; `power` (the measured
    power of this test for the victim's recipe, `molleak.evaluate.verdicts.power_sentence`) is what a
    non-detection is said to be worth.
    """
    data, out = Path(data_dir), Path(out_dir)
    victim_path = Path(victim_path)
    models = out / "models"
    if reference_path is None:
        reference_path = build_reference_victim(victim_path, _read(data / "reference.smi", "reference set"),
                                                models / "reference.pt")
    untrained_path = build_untrained(victim_path, models / "untrained.pt")
    rng = np.random.default_rng(seed)
    members = _sample(_read(data / "private.smi", "private set"), n_members, rng)
    nonmembers = _sample(_read(data / "holdout.smi", "holdout set"), n_members, rng)

    params = {"victim": str(victim_path), "references": {"reference": str(reference_path),
                                                         "untrained": str(untrained_path)},
              "members": members, "nonmembers": nonmembers, "n_neighbours": n_neighbours, "n_boot": n_boot,
              "seed": seed, "statistic": statistic, "protocol": MEMBERSHIP_PROTOCOL}
    cell = Cell("membership", "membership", params, (str(victim_path), str(reference_path), str(untrained_path)))
    membership = _run_cells(out, [cell], "membership audit")["membership"]
    lead_verdicts(membership, f"whole-molecule membership, {membership['n_members']} private members vs "
                              f"{membership['n_nonmembers']} holdout non-members ({statistic})", power=power)
    result = {"victim": str(victim_path), "reference": str(reference_path), "untrained": str(untrained_path),
              "membership": membership}
    write_json_atomic(out / "leakage.json", result)
    return result


def run_canary(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    repeats: list[int],
    epochs: list[int],
    n_private: int = 500,
    n_canaries: int = 50,
    strategy: str = "attrmask",
    encoder_config: dict[str, Any] | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    n_neighbours: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    statistic: str = DEFAULT_STATISTIC,
    pool: str | Path | None = None,
    attack: str = "adapter",
    attack_options: dict[str, Any] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Canary positive control over a grid of repetition counts and epochs.

    Canaries, their unplanted non-members and the molecules planted in the reference victim are
    disjoint draws from `holdout.smi` (MOSES molecules no victim of the tier saw;
    `molleak.plans.canary.draw_canary_sets`); the victim trains on the first `n_private` molecules
    of `private.smi` plus the canaries x r, the reference victim on the first `n_private` of
    `reference.smi` plus its own molecules x r, so it never sees a canary or a non-member. Also
    reports ordinary private members (seen once per epoch) vs the same non-members.

    Per cell, the lead test is victim-only (the victim's canaries vs the non-members); the reference
    contrast comes second. Each test's p is Holm-adjusted across the grid's cells (`holm`, per family).

    With `pool` (a candidate pool file, `molleak candidates`), the three sets are drawn from the
    pool's molecules instead (none of them in any set of the tier), so the extraction attack can
    produce them exactly: each cell then also runs the attack (`attack`, on the tier's aux set)
    through the victim and through the reference victim and reports canary recovery
    (`canary_extraction`, with the non-members as the unplanted decoys).
    """
    data, out = Path(data_dir), Path(out_dir)
    rng = np.random.default_rng(seed)
    private = _read(data / "private.smi", "private set")[:n_private]
    reference = _read(data / "reference.smi", "reference set")[:n_private]
    records = None
    if pool is None:
        source = _read(data / "holdout.smi", "holdout set")
        what = "holdout set"
    else:
        from molleak.candidates.pool import read_pool, unique_smiles

        records = read_pool(pool)
        taken = set(_read(data / "aux.smi", "aux set"))  # the attacker's auxiliary set, for the attack
        for name in ("private", "reference", "holdout"):
            if (data / f"{name}.smi").exists():
                taken.update(_read(data / f"{name}.smi", f"{name} set"))
        source = [s for s in unique_smiles(records) if s not in taken]
        what = f"candidate pool {pool} (molecules in no set of the tier)"
    sets = draw_canary_sets(source, n_canaries, rng, what)
    enc = encoder_config or {"num_layers": 2, "emb_dim": 32}
    cells: list[Any] = []
    grid = []
    for r in repeats:
        for ep in epochs:
            config = PretrainConfig(strategy=strategy, epochs=ep, batch_size=batch_size, lr=lr, seed=seed,
                                    encoder_config=enc)
            name = f"r{r}_e{ep}"
            params = {"config": asdict(config), "recipe_version": recipe_version(config.strategy),
                      "protocol": CANARY_PROTOCOL, "private": private, "reference": reference, "repeats": r,
                      **sets, "models": str(out / "models"), "name": name,
                      "n_neighbours": n_neighbours, "n_boot": n_boot, "statistic": statistic, "seed": seed}
            if pool is not None:
                params.update(pool=str(pool), aux_file=str(data / "aux.smi"), attack=attack,
                              attack_options=dict(attack_options or {}))
            cells.append(Cell(name, "canary", params, () if pool is None else (str(pool), str(data / "aux.smi"))))
            grid.append((r, ep, name))
    done = _run_cells(out, cells, "canary control", executor)
    cells = [{"repeats": r, "epochs": ep, **done[name]} for r, ep, name in grid]
    holm = holm_over_cells(cells, CANARY_FAMILIES)
    for c in cells:
        for group, what in (("canaries", "canaries"), ("private_members", "ordinary private members")):
            audit = c[group]
            lead_verdicts(audit, f"{what} (r={c['repeats']}, {c['epochs']} epochs), {audit['n_members']} vs "
                                 f"{audit['n_nonmembers']} unplanted non-members ({statistic})")
    result = {"experiment": "canary", "protocol": CANARY_PROTOCOL, "statistic": statistic, "strategy": strategy,
              "encoder_config": enc, "n_private": len(private), "n_canaries": n_canaries, "seed": seed,
              "canary_source": "holdout" if pool is None else str(pool), "holm": holm, "cells": cells}
    write_json_atomic(out / "canary.json", result)
    return result


def run_sweep(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    sizes: list[int] | None = None,
    epochs: list[int] | None = None,
    cells: list[tuple[int, int]] | None = None,
    strategy: str = "attrmask",
    encoder_config: dict[str, Any] | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    n_members: int = 200,
    n_neighbours: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    statistic: str = DEFAULT_STATISTIC,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Memorisation sweep: private-set size x epochs; membership of private vs holdout molecules.

    For each cell a victim is trained on the first `size` molecules of `private.smi` and a
    reference victim on the first `size` of `reference.smi` with the same recipe. The cells are
    the grid `sizes` x `epochs`, or the (size, epochs) pairs in `cells` (a sparse grid: large sets
    for few epochs, small sets for many).
    """
    if cells is None:
        if not sizes or not epochs:
            raise MolleakError("sweep: give sizes and epochs, or cells")
        cells = [(size, ep) for size in sizes for ep in epochs]
    sizes = sorted({size for size, _ in cells})
    data, out = Path(data_dir), Path(out_dir)
    private_all = _read(data / "private.smi", "private set")
    reference_all = _read(data / "reference.smi", "reference set")
    holdout = _read(data / "holdout.smi", "holdout set")
    too_big = [s for s in sizes if s > min(len(private_all), len(reference_all))]
    if too_big:
        raise MolleakError(f"sweep sizes {too_big} exceed the tier's private/reference sets "
                           f"({len(private_all)}/{len(reference_all)} molecules); use a larger tier")
    enc = encoder_config or {"num_layers": 2, "emb_dim": 32}
    rng = np.random.default_rng(seed)
    nonmembers = _sample(holdout, n_members, rng)
    grid_cells, cells, grid = cells, [], []
    for size, ep in grid_cells:
        members = _sample(private_all[:size], n_members, np.random.default_rng([seed, size]))
        config = PretrainConfig(strategy=strategy, epochs=ep, batch_size=batch_size, lr=lr, seed=seed,
                                encoder_config=enc)
        name = f"n{size}_e{ep}"

        cells.append(Cell(name, "sweep", inputs=(str(data / "private.smi"), str(data / "reference.smi")), params={
            "config": asdict(config), "recipe_version": recipe_version(config.strategy),
            "protocol": MEMBERSHIP_PROTOCOL,
            "private_file": str(data / "private.smi"), "reference_file": str(data / "reference.smi"), "size": size,
            "members": members, "nonmembers": nonmembers, "models": str(out / "models"),
            "name": name, "n_neighbours": n_neighbours, "n_boot": n_boot, "statistic": statistic, "seed": seed}))
        grid.append((size, ep, name))
    finished = _run_cells(out, cells, "memorisation sweep", executor)
    done = [{"size": size, "epochs": ep, **finished[name]} for size, ep, name in grid]
    holm = holm_over_cells(done, SWEEP_FAMILIES)
    for c in done:
        audit = c["membership"]
        lead_verdicts(audit, f"membership after {c['epochs']} epochs on {c['size']} molecules, {audit['n_members']} "
                             f"private members vs {audit['n_nonmembers']} holdout non-members ({statistic})")
    result = {"experiment": "sweep", "protocol": MEMBERSHIP_PROTOCOL, "statistic": statistic, "strategy": strategy,
              "encoder_config": enc, "seed": seed, "holm": holm, "cells": done}
    write_json_atomic(out / "sweep.json", result)
    return result


# ---- the experiments' cell kinds (run by `molleak.plans.runner`) --------------------------------
def _membership_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    return {"n_neighbours": params["n_neighbours"], "seed": params["seed"], "n_boot": params["n_boot"],
            "statistic": params["statistic"]}


@CELL_KINDS.register("membership")
def membership_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """A victim's members vs non-members, raw and calibrated by each control model."""
    victim = Victim.from_checkpoint(params["victim"])
    refs = {name: Victim.from_checkpoint(path) for name, path in params["references"].items()}
    result = membership_audit(victim, params["members"], params["nonmembers"], refs, **_membership_kwargs(params))
    result["queries"] = {"victim": victim.queries}
    return to_jsonable(result)


@CELL_KINDS.register("canary")
def canary_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """One (repetitions, epochs) cell: a victim with the canaries planted, a reference victim with its
    own molecules planted as often (never a canary or a non-member), membership of canaries (and of
    ordinary members) vs the unplanted non-members, and with a pool the extraction attack through both.

    Each model's training list is written beside its checkpoint (`<name>_victim.train.smi`, one line
    per training example, repeats included) and named in its provenance (`train_file`), which also
    records its sha256: what each model saw can be checked from the checkpoint alone."""
    config, r, name, models = PretrainConfig(**params["config"]), params["repeats"], params["name"], Path(params["models"])
    scored = params["canaries"] + params["nonmembers"]
    lists = {"victim": plant_canaries(params["private"], params["canaries"], r, unseen=params["nonmembers"]),
             "reference": plant_canaries(params["reference"], params["reference_canaries"], r, unseen=scored)}
    paths = {}
    for role, smiles in lists.items():
        train_file = write_training_list(smiles, models / f"{name}_{role}.train.smi")
        paths[role] = train_victim(smiles, config, models / f"{name}_{role}.pt", train_name=str(train_file))
    vpath, rpath = paths["victim"], paths["reference"]
    victim = Victim.from_checkpoint(vpath)
    refs = {"reference": Victim.from_checkpoint(rpath)}
    kw = _membership_kwargs(params)
    n = len(params["canaries"])
    result: dict[str, Any] = {
        "canaries": membership_audit(victim, params["canaries"], params["nonmembers"], refs, **kw),
        "private_members": membership_audit(victim, params["private"][:n], params["nonmembers"], refs, **kw),
    }
    if params.get("pool"):
        from molleak.candidates.pool import read_pool

        # the attack's work directory (a shadow encoder) is shared by cells of one recipe: r is data
        result["extraction"] = canary_extraction(
            victim, refs["reference"], read_pool(params["pool"]), _read(Path(params["aux_file"]), "aux set"),
            params["canaries"], params["nonmembers"], attack=params["attack"], attack_options=params["attack_options"],
            work_dir=models / f"attack_e{config.epochs}", seed=params["seed"], n_boot=params["n_boot"])
    return to_jsonable(result)


@CELL_KINDS.register("sweep")
def sweep_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """One (size, epochs) cell of the sweep: victim and reference victim, members vs holdout."""
    config, name, models = PretrainConfig(**params["config"]), params["name"], Path(params["models"])
    size = params["size"]
    private = _read(Path(params["private_file"]), "private set")[:size]
    reference = _read(Path(params["reference_file"]), "reference set")[:size]
    vpath = train_victim(private, config, models / f"{name}_victim.pt", train_name="private.smi")
    rpath = train_victim(reference, config, models / f"{name}_reference.pt", train_name="reference.smi")
    victim = Victim.from_checkpoint(vpath)
    refs = {"reference": Victim.from_checkpoint(rpath)}
    return to_jsonable({"membership": membership_audit(victim, params["members"], params["nonmembers"], refs,
                                                       **_membership_kwargs(params))})
