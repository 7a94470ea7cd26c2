"""The cell kinds every plan is made of (registered in `molleak.plans.runner.CELL_KINDS`).

- `victim`: build or reuse one model by recipe (`molleak.victims.build.ensure_victim`);
- `extract`: one extraction run and, when asked, its evaluation against the owner's training set;
- `membership`: a membership audit of a victim against its controls (private sample vs holdout);
- `canary`: one (repetitions, epochs) cell of the canary positive control;
- `sweep`: one (size, epochs) cell of the memorisation sweep.

Each function takes the cell's resolved parameters and its directory, and returns JSON. This module
belongs to the owner's side (plans): it may read training sets to train and to evaluate; the attack
code it calls never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molleak import rundir
from molleak.plans.runner import CELL_KINDS, Cell
from molleak.runs import sha256_file


def _recipe(params: dict[str, Any]):
    from molleak.pretrain.trainer import PretrainConfig

    return PretrainConfig(**params)


def _smiles(path: str, what: str, first: int | None = None) -> list[str]:
    from molleak.data.smiles_io import read_smiles

    smiles = read_smiles(path, what=what, canonicalize=False).smiles
    return smiles if first is None else smiles[:first]


@CELL_KINDS.register("victim")
def victim_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """params: role, recipe (PretrainConfig fields), out, and for trained roles data (a SMILES file),
    optionally first (use its first N molecules), seed, init_from, targets ("b3db_logbb"),
    extra_provenance, train_name."""
    from molleak.victims.build import ensure_victim

    data = targets = None
    if params.get("data"):
        data = _smiles(params["data"], f"{params['role']} training set", params.get("first"))
    if params.get("targets") == "b3db_logbb":
        from molleak.pretrain.regression import load_b3db_logbb

        data, targets = load_b3db_logbb()
    built = ensure_victim(params["role"], _recipe(params["recipe"]), data, params.get("seed"), params["out"],
                          train_name=params.get("train_name") or str(params.get("data") or ""),
                          init_from=params.get("init_from"), targets=targets,
                          extra_provenance=params.get("extra_provenance"))
    prov = built.provenance
    return {"path": str(built.path), "reused": built.reused, "sha256": sha256_file(built.path),
            "loss_per_epoch": prov.get("loss_per_epoch"), "seconds_per_epoch": prov.get("seconds_per_epoch"),
            "embedding_spread": prov.get("embedding_spread"), "collapsed": prov.get("collapsed", False)}


def victim_cell_spec(cell_id: str, role: str, recipe: Any, out: str | Path, *, data: str | Path | None = None,
                     first: int | None = None, seed: int | None = None, init_from: str | Path | None = None,
                     targets: str | None = None, extra_provenance: dict[str, Any] | None = None,
                     train_name: str = "") -> Cell:
    """A `victim` cell; its key covers the recipe, the code's recipe version and the data's bytes."""
    from dataclasses import asdict

    from molleak.pretrain.trainer import recipe_version

    params = {"role": str(role), "recipe": asdict(recipe), "recipe_version": recipe_version(recipe.strategy),
              "out": str(out), "data": None if data is None else str(data), "first": first, "seed": seed,
              "init_from": None if init_from is None else str(init_from), "targets": targets,
              "extra_provenance": extra_provenance, "train_name": train_name}
    inputs = tuple(str(p) for p in (data, init_from) if p is not None)
    return Cell(cell_id, "victim", params, inputs)


@CELL_KINDS.register("extract")
def extract_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """params: extract (ExtractConfig fields; `out` is the cell directory) and evaluate (None, or
    training_set, banks {name: file}, fcd, fcd_seeds, fcd_max_reference)."""
    from molleak.attack.run import extract_config, run_extract

    summary = run_extract(extract_config(**{**params["extract"], "out": str(cell_dir)}), on_conflict="replace")
    out: dict[str, Any] = {"inputs_sha256": summary.get("inputs_sha256"), "queries": summary.get("queries"),
                           "n_scored": summary.get("n_scored")}
    ev = params.get("evaluate")
    if ev:
        from molleak.evaluate.evaluate import evaluate_run

        # compared by the file's bytes: re-reading and canonicalising a 50,000-molecule set per cell
        # only to hash it would cost more than the check saves
        current = rundir.results_current(cell_dir)
        if current:
            current = rundir.read_results(cell_dir).private.get("file_sha256") == sha256_file(ev["training_set"])
        if not current:
            evaluate_run(cell_dir, ev["training_set"], extra_banks=ev.get("banks") or None,
                         fcd=ev.get("fcd", True), fcd_seeds=ev.get("fcd_seeds", 5),
                         fcd_max_reference=ev.get("fcd_max_reference", 5000))
        res = rundir.read_results(cell_dir)
        out.update({key: res.value(key) for key in (rundir.precision_key("substructure", 200), rundir.AUC)})
    return out


def extract_cell_spec(cell_id: str, extract: dict[str, Any], evaluate: dict[str, Any] | None = None) -> Cell:
    """An `extract` cell; its key covers the config and the bytes of the victim, aux set, pool,
    vocabulary and training set it reads (a rebuilt victim re-runs the cell)."""
    files = [extract.get(k) for k in ("victim", "aux", "pool")]
    if extract.get("vocab"):
        files += [str(Path(extract["vocab"]) / f) for f in ("templates.smi", "motifs.smi")]
    if evaluate:
        files += [evaluate.get("training_set"), *(evaluate.get("banks") or {}).values()]
    return Cell(cell_id, "extract", {"extract": extract, "evaluate": evaluate},
                tuple(str(f) for f in files if f))
