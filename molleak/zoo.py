"""The victim zoo: every registered pre-training strategy plus the fine-tuned regression victim, one command.

`build_zoo(data_dir, out_dir)` pre-trains one victim per strategy on the tier's private set and
writes `<out_dir>/<strategy>.pt`; a victim already built with the same config and training set
is skipped, a half-built one resumes from the trainer's resume file. The regression victim
(`regression.pt`) is the `regression_base` victim fine-tuned on B3DB's logBB set; its
fine-tuning SMILES are written beside it (`regression.finetune.smi`) and its provenance says
its training set for evaluation is the pre-training set plus that file. `zoo.json` lists what
was built.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.errors import CheckpointError, MolleakError
from molleak.models.checkpoint import load_encoder, read_checkpoint_file
from molleak.pretrain.base import load_strategies
from molleak.pretrain.regression import B3DB_REGRESSION, load_b3db_logbb
from molleak.pretrain.trainer import PretrainConfig, built_with, pretrain
from molleak.runs import sha256_file, sha256_lines, write_json_atomic

log = logging.getLogger(__name__)

REGRESSION = "regression"
#: the zoo's pre-training strategies, in build order (the regression victim is built last)
ZOO_STRATEGIES = ("attrmask", "contextpred", "edgepred", "infograph", "graphcl", "simgrace", "graphmae",
                  "molebert", "grover")
ZOO_VICTIMS = (*ZOO_STRATEGIES, REGRESSION)

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


def _built_provenance(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return dict(read_checkpoint_file(path).get("provenance", {}))
    except CheckpointError as exc:
        log.warning("rebuilding %s: %s", path, exc)
        return None


def _build_pretrained(strategy: str, train: list[str], train_name: str, zoo: ZooConfig, out: Path,
                      progress: bool) -> dict[str, Any]:
    config = victim_config(strategy, zoo)
    path = out / f"{strategy}.pt"
    prov = _built_provenance(path)
    if prov and built_with(prov, config) and prov.get("train_sha256") == sha256_lines(train):
        log.info("%s: already built for this data and config; skipped", path)
        return {"victim": strategy, "file": path.name, "status": "skipped", "seconds": 0.0}
    t0 = time.perf_counter()
    prov = pretrain(train, config, path, train_name=train_name, progress=progress,
                    extra_provenance={"zoo": True, "training_sets": [{"role": "pretraining", "file": train_name,
                                                                      "sha256": sha256_lines(train),
                                                                      "n": len(train)}]})
    return {"victim": strategy, "file": path.name, "status": "built", "seconds": time.perf_counter() - t0,
            "loss_per_epoch": prov["loss_per_epoch"], "seconds_per_epoch": prov["seconds_per_epoch"],
            "embedding_spread": prov.get("embedding_spread"), "collapsed": prov.get("collapsed", False)}


def _build_regression(zoo: ZooConfig, out: Path, progress: bool) -> dict[str, Any]:
    base_path = out / f"{zoo.regression_base}.pt"
    base_sha = sha256_file(base_path)
    ft_smiles, ft_targets = load_b3db_logbb()
    path = out / f"{REGRESSION}.pt"
    ft_file = out / f"{REGRESSION}.finetune.smi"
    encoder, base_prov = load_encoder(base_path)
    config = PretrainConfig(strategy=REGRESSION, epochs=zoo.finetune_epochs, batch_size=zoo.finetune_batch_size,
                            lr=zoo.lr, seed=zoo.seed, encoder=base_prov.get("config", {}).get("encoder", "gin"),
                            encoder_config=encoder.config())
    ft_sha = sha256_lines(ft_smiles)
    prov = _built_provenance(path)
    if (prov and built_with(prov, config) and prov.get("base_checkpoint_sha256") == base_sha
            and prov.get("finetune_sha256") == ft_sha and ft_file.exists()):
        log.info("%s: already built for this base victim and config; skipped", path)
        return {"victim": REGRESSION, "file": path.name, "status": "skipped", "seconds": 0.0}
    write_smiles(ft_file, ft_smiles)
    pre = next((s for s in base_prov.get("training_sets", []) if s.get("role") == "pretraining"),
               {"role": "pretraining", "file": base_prov.get("train_file", ""),
                "sha256": base_prov.get("train_sha256", ""), "n": base_prov.get("n_train")})
    training_sets = [pre, {"role": "finetuning", "file": ft_file.name, "source": f"qc-b3db {B3DB_REGRESSION}",
                           "target": "logBB", "sha256": ft_sha, "n": len(ft_smiles)}]
    t0 = time.perf_counter()
    # a fresh fine-tune each time: it is short, and a resume file cannot tell which base it started from
    prov = pretrain(ft_smiles, config, path, train_name=str(ft_file), progress=progress, init_encoder=encoder,
                    targets=ft_targets, resume=False, extra_provenance={
                        "zoo": True,
                        "base_strategy": zoo.regression_base,
                        "base_checkpoint": base_path.name,
                        "base_checkpoint_sha256": base_sha,
                        "base_provenance": {k: base_prov.get(k) for k in ("strategy", "config", "train_file",
                                                                          "train_sha256", "n_train", "epochs")},
                        "finetune_file": ft_file.name,
                        "finetune_sha256": ft_sha,
                        "training_sets": training_sets,
                        "evaluation_training_set": "pre-training set + fine-tuning set (union of training_sets)",
                        "embedding": "mean-pooled last GIN layer: the penultimate layer, input of the logBB head",
                    })
    return {"victim": REGRESSION, "file": path.name, "status": "built", "seconds": time.perf_counter() - t0,
            "loss_per_epoch": prov["loss_per_epoch"], "seconds_per_epoch": prov["seconds_per_epoch"],
            "embedding_spread": prov.get("embedding_spread"), "collapsed": prov.get("collapsed", False)}


def _build_in_worker(strategy: str, train: list[str], train_name: str, zoo: ZooConfig, out: Path,
                     threads: int) -> dict[str, Any]:
    """One victim in a worker process: one torch thread each, so workers do not fight over cores."""
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [{strategy}] %(message)s")
    return _build_pretrained(strategy, train, train_name, zoo, out, progress=False)


def _progress_iter(futures: dict[str, Any], progress: bool):
    """Names of finished victims, in completion order, with a bar over victims."""
    from concurrent.futures import as_completed

    from tqdm.auto import tqdm

    names = {f: n for n, f in futures.items()}
    for fut in tqdm(as_completed(names), total=len(names), desc="zoo victims", unit="victim",
                    disable=not progress):
        yield names[fut]


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


def build_zoo(data_dir: str | Path, out_dir: str | Path, strategies: list[str] | None = None,
              zoo: ZooConfig | None = None, *, progress: bool = True, workers: int = 1) -> dict[str, Any]:
    """Build (or complete) a victim zoo; returns the manifest also written to `<out_dir>/zoo.json`.

    Args:
        data_dir: a tier directory from `molleak data prepare` (victims train on its private.smi).
        out_dir: where `<strategy>.pt` files go.
        strategies: victims to build (default: all of `ZOO_VICTIMS`); "regression" also builds its
            base victim when that is missing.
        zoo: epochs, seed, encoder sizes, fine-tune settings.
        workers: victims pre-trained at once, each in its own process with one torch thread (the
            victims are independent; a victim's weights do not depend on `workers`).
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
    results = []
    t_start = time.perf_counter()
    if workers > 1 and len(order) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # slowest first (Mole-BERT trains two models), so the last worker does not finish alone
        order.sort(key=lambda n: n != "molebert")
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {name: pool.submit(_build_in_worker, name, train.smiles, str(train_path), zoo, out, 1)
                       for name in order}
            for name in _progress_iter(futures, progress):
                results.append(futures[name].result())
                log.info("zoo: %s %s in %.0f s", name, results[-1]["status"], results[-1]["seconds"])
    else:
        for name in order:
            log.info("zoo: %s", name)
            results.append(_build_pretrained(name, train.smiles, str(train_path), zoo, out, progress))
    if REGRESSION in names:
        results.append(_build_regression(zoo, out, progress))
    manifest = {"data": str(data_dir), "train_file": str(train_path), "train_sha256": sha256_lines(train.smiles),
                "n_train": len(train), "config": asdict(zoo), "victims": results,
                "seconds_total": sum(r["seconds"] for r in results), "workers": workers,
                "wall_seconds": time.perf_counter() - t_start}
    write_json_atomic(out / "zoo.json", manifest)
    return manifest
