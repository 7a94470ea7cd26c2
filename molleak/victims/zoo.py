"""The victim zoo: every registered pre-training strategy plus the fine-tuned regression victim, one command.

`build_zoo(data_dir, out_dir)` pre-trains one victim per strategy on the tier's private set and
writes `<out_dir>/<strategy>.pt`; a victim already built with the same config and training set
is skipped, a half-built one resumes from the trainer's resume file. The regression victim
(`regression.pt`) is the `regression_base` victim fine-tuned on B3DB's logBB set; its
fine-tuning SMILES are written beside it (`regression.finetune.smi`) and its provenance says
its training set for evaluation is the pre-training set plus that file. `zoo.json` lists what
was built. `remove_finetuning_set` takes those fine-tuning molecules out of a tier's attacker files
(a bench that prepares its own tier does), so the regression victim's attacker never holds them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.errors import MolleakError
from molleak.models.checkpoint import load_encoder, read_checkpoint_file
from molleak.plans.runner import Executor, LocalExecutor, run_plan
from molleak.pretrain.base import load_strategies
from molleak.pretrain.regression import B3DB_REGRESSION, load_b3db_logbb
from molleak.pretrain.trainer import PretrainConfig
from molleak.rundir import Role
from molleak.runs import sha256_file, sha256_lines, write_json_atomic

log = logging.getLogger(__name__)

REGRESSION = "regression"
#: the zoo's pre-training strategies, in build order (the regression victim is built last)
ZOO_STRATEGIES = ("attrmask", "contextpred", "edgepred", "infograph", "graphcl", "simgrace", "graphmae",
                  "molebert", "grover")
ZOO_VICTIMS = (*ZOO_STRATEGIES, REGRESSION)
#: strategies of an optional extra, outside the zoo: the chemprop D-MPNN (`pip install molleak[chemprop]`), audited
#: by `molleak audit --config molleak/configs/chemprop.toml`
OPTIONAL_STRATEGIES = {"chemprop": "chemprop"}

#: default epochs per strategy, chosen so the `standard` tier (50k molecules) zoo fits 90 minutes on
#: 2 CPU cores; measured seconds per epoch and the arithmetic are in BENCHMARKS.md
DEFAULT_EPOCHS = {"attrmask": 2, "contextpred": 2, "edgepred": 2, "infograph": 2, "graphcl": 2, "simgrace": 2,
                  "graphmae": 2, "molebert": 3, "grover": 2}
FINETUNE_EPOCHS = 30


@dataclass
class ZooConfig:
    """What decides every victim of a zoo (besides the training set).

    Args:
        epochs: epochs for every strategy (None: `DEFAULT_EPOCHS`; Mole-BERT gets at least 2).
        finetune_epochs: epochs of the regression fine-tune.
        regression_base: the strategy whose victim is fine-tuned into the regression victim.
    """

    epochs: int | None = None
    seed: int = 0
    batch_size: int = 256
    lr: float = 1e-3
    encoder_config: dict[str, Any] = field(default_factory=lambda: {"num_layers": 5, "emb_dim": 300})
    grover_config: dict[str, Any] = field(default_factory=dict)
    finetune_epochs: int = FINETUNE_EPOCHS
    finetune_batch_size: int = 32
    regression_base: str = "attrmask"


def victim_config(strategy: str, zoo: ZooConfig) -> PretrainConfig:
    """The pre-training config of one zoo victim."""
    cls = load_strategies().get(strategy)
    epochs = zoo.epochs if zoo.epochs is not None else DEFAULT_EPOCHS.get(strategy, 1)
    if strategy == "molebert":
        epochs = max(epochs, 2)  # tokenizer phase, then masked modelling
    if cls.encoder_name == "grover":
        return PretrainConfig(strategy=strategy, epochs=epochs, batch_size=zoo.batch_size, lr=zoo.lr, seed=zoo.seed,
                              encoder="grover", encoder_config=dict(zoo.grover_config))
    return PretrainConfig(strategy=strategy, epochs=epochs, batch_size=zoo.batch_size, lr=zoo.lr, seed=zoo.seed,
                          encoder_config=dict(zoo.encoder_config))


def _row(name: str, built: dict[str, Any], seconds: float, ran: bool) -> dict[str, Any]:
    if built.get("reused") or not ran:
        return {"victim": name, "file": Path(built["path"]).name, "status": "skipped", "seconds": 0.0}
    return {"victim": name, "file": Path(built["path"]).name, "status": "built", "seconds": seconds,
            "loss_per_epoch": built.get("loss_per_epoch"), "seconds_per_epoch": built.get("seconds_per_epoch"),
            "embedding_spread": built.get("embedding_spread"), "collapsed": built.get("collapsed", False)}


def _pretrained_cell(strategy: str, train_path: Path, train: list[str], zoo: ZooConfig, out: Path):
    from molleak.plans.cells import victim_cell_spec

    return victim_cell_spec(strategy, Role.VICTIM, victim_config(strategy, zoo), out / f"{strategy}.pt",
                            data=train_path, train_name=str(train_path), extra_provenance={
                                "zoo": True, "training_sets": [{"role": "pretraining", "file": str(train_path),
                                                                "sha256": sha256_lines(train), "n": len(train)}]})


def _regression_cell(zoo: ZooConfig, out: Path):
    """The regression victim: the base victim fine-tuned on B3DB logBB (a fresh fine-tune when the base
    changed: its sha256 is part of the reuse rule)."""
    from molleak.plans.cells import victim_cell_spec

    base_path = out / f"{zoo.regression_base}.pt"
    ft_smiles, _ = load_b3db_logbb()
    ft_file = out / f"{REGRESSION}.finetune.smi"
    write_smiles(ft_file, ft_smiles)
    encoder, base_prov = load_encoder(base_path)
    config = PretrainConfig(strategy=REGRESSION, epochs=zoo.finetune_epochs, batch_size=zoo.finetune_batch_size,
                            lr=zoo.lr, seed=zoo.seed, encoder=base_prov.get("config", {}).get("encoder", "gin"),
                            encoder_config=encoder.config())
    ft_sha = sha256_lines(ft_smiles)
    pre = next((s for s in base_prov.get("training_sets", []) if s.get("role") == "pretraining"),
               {"role": "pretraining", "file": base_prov.get("train_file", ""),
                "sha256": base_prov.get("train_sha256", ""), "n": base_prov.get("n_train")})
    training_sets = [pre, {"role": "finetuning", "file": ft_file.name, "source": f"qc-b3db {B3DB_REGRESSION}",
                           "target": "logBB", "sha256": ft_sha, "n": len(ft_smiles)}]
    return victim_cell_spec(REGRESSION, Role.VICTIM, config, out / f"{REGRESSION}.pt", init_from=base_path,
                            targets="b3db_logbb", train_name=str(ft_file), extra_provenance={
                                "zoo": True,
                                "base_strategy": zoo.regression_base,
                                "base_provenance": {k: base_prov.get(k) for k in (
                                    "strategy", "config", "train_file", "train_sha256", "n_train", "epochs")},
                                "finetune_file": ft_file.name,
                                "finetune_sha256": ft_sha,
                                "training_sets": training_sets,
                                "evaluation_training_set": "pre-training set + fine-tuning set (union of training_sets)",
                                "embedding": "mean-pooled last GIN layer: the penultimate layer, input of the logBB head",
                            })


def evaluation_training_set(victim_path: str | Path, search_dirs: tuple[str | Path, ...] = ()) -> list[str] | None:
    """The molecules a victim was trained on, for evaluation, when its provenance lists several sets.

    The regression victim's provenance lists its pre-training and fine-tuning sets
    (`training_sets`); its training set for evaluation is their union (the paper's Table 8). Each
    file is found as recorded (paths may be relative to where training ran), in one of
    `search_dirs` (e.g. the tier directory) or beside the checkpoint, and must still hash to the
    recorded sha256.

    Returns:
        Canonical SMILES of the union, in file order; None when the victim lists at most one set
        (evaluate against the private set as usual).

    Raises:
        MolleakError: a listed set is missing or no longer matches its recorded sha256.
    """
    path = Path(victim_path)
    sets = read_checkpoint_file(path).get("provenance", {}).get("training_sets") or []
    if len(sets) < 2:
        return None
    union: dict[str, None] = {}
    for entry in sets:
        recorded = Path(str(entry.get("file", "")))
        candidates = [recorded, *(Path(d) / recorded.name for d in search_dirs), path.parent / recorded.name]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise MolleakError(f"victim {path}: its {entry.get('role', 'training')} set {recorded} is not found "
                               f"(looked for {', '.join(str(c) for c in candidates)})")
        smiles = read_smiles(found, what=f"{entry.get('role', 'training')} set of {path.name}").smiles
        if entry.get("sha256") and sha256_lines(smiles) != entry["sha256"]:
            raise MolleakError(f"victim {path}: {found} no longer matches the {entry.get('role')} set it was "
                               f"trained on (sha256 differs)")
        union.update(dict.fromkeys(smiles))
    return list(union)


#: the attacker's files of a tier that may hold the regression victim's fine-tuning molecules
#: (aux_external.smi draws on B3DB, whose classification set holds most of the logBB set)
ATTACKER_FILES_WITH_FINETUNING = ("aux_external.smi",)


def remove_finetuning_set(data_dir: str | Path, files: tuple[str, ...] = ATTACKER_FILES_WITH_FINETUNING) -> dict[str, int]:
    """Remove the regression victim's fine-tuning molecules (B3DB logBB) from a tier's attacker files.

    On a tier prepared by `molleak data prepare`, `aux_external.smi` holds 995 of the 1,058 logBB
    molecules the zoo's regression victim is fine-tuned on: an attacker given them would be handed
    the victim's training set (`molleak.victims.overlap` refuses that). A bench that prepares its own
    tier calls this once: the molecules are removed by canonical SMILES and `manifest.json` records
    the file's new count and sha256 and what was removed (`removed_finetuning_molecules`). Files
    without them are left untouched, so a second call changes nothing. Returns name -> removed.
    """
    data = Path(data_dir)
    ft = set(load_b3db_logbb()[0])
    manifest_path = data / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    removed: dict[str, int] = {}
    for name in files:
        path = data / name
        if not path.is_file():
            continue
        smiles = read_smiles(path, what=f"attacker set {name}", canonicalize=False).smiles
        keep = [s for s in smiles if s not in ft]
        removed[name] = len(smiles) - len(keep)
        if not removed[name]:
            continue
        write_smiles(path, keep)
        log.info("%s: removed %d molecules of the regression victim's fine-tuning set", path, removed[name])
        if manifest:
            manifest.setdefault("files", {})[name] = {"count": len(keep), "sha256": sha256_file(path)}
            done = manifest.setdefault("removed_finetuning_molecules", {})
            done[name] = done.get(name, 0) + removed[name]
            manifest["removed_finetuning_molecules_why"] = (
                f"the zoo's regression victim is fine-tuned on these molecules (qc-b3db {B3DB_REGRESSION})")
            write_json_atomic(manifest_path, manifest)
    return removed


def build_zoo(data_dir: str | Path, out_dir: str | Path, strategies: list[str] | None = None,
              zoo: ZooConfig | None = None, *, progress: bool = True, workers: int = 1,
              executor: Executor | None = None) -> dict[str, Any]:
    """Build (or complete) a victim zoo; returns the manifest also written to `<out_dir>/zoo.json`.

    Args:
        data_dir: a tier directory from `molleak data prepare` (victims train on its private.smi).
        out_dir: where `<strategy>.pt` files go.
        strategies: victims to build (default: all of `ZOO_VICTIMS`); "regression" also builds its
            base victim when that is missing.
        zoo: epochs, seed, encoder sizes, fine-tune settings.
        workers: victims pre-trained at once, each in its own process with one torch thread (the
            victims are independent; a victim's weights do not depend on `workers`).
        executor: runs the victims' cells instead (e.g. `RayExecutor`; `runner.make_executor`).
    """
    zoo = zoo or ZooConfig()
    names = list(strategies or ZOO_VICTIMS)
    known = set(load_strategies().names())
    for n in names:
        if n not in known:
            raise MolleakError(f"unknown zoo victim {n!r}; choose from {', '.join(sorted(known))}")
    if zoo.regression_base == REGRESSION or zoo.regression_base not in known:
        raise MolleakError(f"regression base {zoo.regression_base!r} is not a pre-training strategy")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_path = Path(data_dir) / "private.smi"
    train = read_smiles(train_path, what="zoo training set")
    order = [n for n in names if n != REGRESSION]
    if REGRESSION in names and zoo.regression_base not in order and not (out / f"{zoo.regression_base}.pt").exists():
        order.append(zoo.regression_base)
    t_start = time.perf_counter()
    # scheduled slowest first (Mole-BERT trains two models), so the last worker does not finish alone;
    # reported in the order asked for
    # the victims are cells of one plan: built at once by `workers` processes (one torch thread each;
    # a victim's weights do not depend on `workers`), each reused while its recipe and data are unchanged
    cells = [_pretrained_cell(name, train_path, train.smiles, zoo, out) for name in order]
    scheduled = sorted(cells, key=lambda c: c.id != "molebert")
    plan = run_plan(scheduled, out / "cells", executor or LocalExecutor(workers), progress=progress, what="zoo victims")
    results = [_row(c.id, plan.result(c.id), plan.records[c.id]["seconds"], c.id in plan.ran_ids) for c in cells]
    if REGRESSION in names:
        reg = run_plan([_regression_cell(zoo, out)], out / "cells", executor, what="zoo: regression victim")
        results.append(_row(REGRESSION, reg.result(REGRESSION), reg.records[REGRESSION]["seconds"],
                            REGRESSION in reg.ran_ids))
    manifest = {"data": str(data_dir), "train_file": str(train_path), "train_sha256": sha256_lines(train.smiles),
                "n_train": len(train), "config": asdict(zoo), "victims": results,
                "seconds_total": sum(r["seconds"] for r in results), "workers": workers,
                "wall_seconds": time.perf_counter() - t_start}
    write_json_atomic(out / "zoo.json", manifest)
    return manifest
