"""Leakage attribution experiments: reference victims, membership audits, canaries, the sweep.

- `build_reference_victim`: the victim's own recipe (its checkpoint's `provenance["config"]`:
  strategy, encoder, epochs, batch size, learning rate, seed) trained on the disjoint
  `reference.smi`; `build_untrained`: the same encoder at its seeded random initialisation.
- `run_leakage`: whole-molecule membership (private sample vs holdout) for a victim, its
  reference victim and the untrained encoder, with the calibrated score.
- `run_canary`: the positive control. Canaries (held-out MOSES molecules) are planted r times into
  a private set; victims are trained for each (r, epochs); membership of canaries vs matched
  non-members is measured for the victim, a reference victim trained on equally many disjoint
  molecules with equally repeated decoys, and the calibrated score.
- `run_sweep`: private-set size x epochs for one strategy: where does membership leakage start?

Everything is resumable: checkpoints are reused when their provenance matches the recipe and data,
and each finished cell is a JSON file under `<out>/cells/` that a rerun reads instead of
recomputing. Canary and sweep victims are built here (they are the experimenter's victims); their
membership is evaluated through `molleak.attack.membership`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from molleak.attack.membership import DEFAULT_STATISTIC
from molleak.data.smiles_io import read_smiles
from molleak.errors import InputFileError, MolleakError
from molleak.evaluate.attribution import to_jsonable
from molleak.evaluate.membership import membership_audit
from molleak.models.base import build_encoder
from molleak.models.checkpoint import read_checkpoint_file, save_checkpoint
from molleak.models.victim import Victim
from molleak.pretrain.trainer import (
    PretrainConfig,
    built_with,
    pretrain,
    recipe_from_provenance,
    recipe_version,
)
from molleak.runs import sha256_lines, write_json_atomic

log = logging.getLogger(__name__)


def recipe_of(victim_path: str | Path) -> PretrainConfig:
    """The PretrainConfig a molleak victim checkpoint was trained with.

    Raises:
        MolleakError: the checkpoint carries no training config (e.g. an imported state_dict).
    """
    return recipe_from_provenance(Victim.from_checkpoint(victim_path).provenance, f"victim {victim_path}",
                                  "a reference victim",
                                  "train the victim with this molleak's `molleak pretrain`, or pass --reference")


def _matches(path: Path, config: PretrainConfig, smiles: list[str]) -> bool:
    if not path.exists():
        return False
    try:
        prov = read_checkpoint_file(path).get("provenance", {})
    except MolleakError:
        return False
    return built_with(prov, config) and prov.get("train_sha256") == sha256_lines(smiles)


def train_victim(
    smiles: list[str], config: PretrainConfig, out: str | Path, *, train_name: str = "",
    extra_provenance: dict[str, Any] | None = None, progress: bool = False,
) -> Path:
    """Pre-train (or reuse, when `out` already holds this recipe on this data) a victim checkpoint."""
    out = Path(out)
    if _matches(out, config, smiles):
        log.info("reusing %s", out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    pretrain(smiles, config, out, train_name=train_name, progress=progress, extra_provenance=extra_provenance)
    return out


def build_reference_victim(
    victim_path: str | Path, reference_smiles: list[str], out: str | Path, *, train_name: str = "reference.smi"
) -> Path:
    """Train the victim's recipe (same config and seed) on the disjoint reference set.

    The same seed gives the same initial weights, so the pair differs only by the training data.
    """
    config = recipe_of(victim_path)
    return train_victim(reference_smiles, config, out, train_name=train_name,
                        extra_provenance={"reference_of": str(victim_path)})


def build_regression_reference(regression_path: str | Path, base_reference_path: str | Path,
                               out: str | Path) -> Path:
    """The fine-tuned (regression) victim's reference: its fine-tune recipe applied to its base
    strategy's reference victim, so the pair differs only by the pre-training data.

    The fine-tuning set is the victim's own (B3DB logBB, checked by sha256): both models saw it, so
    it is not what the reference is a control for. Reused when `out` was made from the same base
    reference and recipe.
    """
    from molleak.models.checkpoint import load_encoder
    from molleak.pretrain.regression import load_b3db_logbb
    from molleak.runs import sha256_file

    regression_path, base_reference_path, out = Path(regression_path), Path(base_reference_path), Path(out)
    prov = read_checkpoint_file(regression_path).get("provenance", {})
    if "finetune_sha256" not in prov or "config" not in prov:
        raise MolleakError(f"{regression_path} is not a fine-tuned zoo victim (no fine-tuning provenance)")
    config = PretrainConfig(**prov["config"])
    ft_smiles, ft_targets = load_b3db_logbb()
    if sha256_lines(ft_smiles) != prov["finetune_sha256"]:
        raise MolleakError(f"{regression_path} was fine-tuned on another logBB set than the installed qc-b3db's")
    base_sha = sha256_file(base_reference_path)
    if out.exists():
        try:
            done = read_checkpoint_file(out).get("provenance", {})
        except MolleakError:
            done = {}
        if built_with(done, config) and done.get("base_checkpoint_sha256") == base_sha:
            log.info("reusing %s", out)
            return out
    encoder, base_prov = load_encoder(base_reference_path)
    pre = {"role": "pretraining", "file": base_prov.get("train_file", ""), "sha256": base_prov.get("train_sha256", ""),
           "n": base_prov.get("n_train")}
    finetune = next((s for s in prov.get("training_sets", []) if s.get("role") == "finetuning"), {})
    pretrain(ft_smiles, config, out, train_name="finetune (logBB)", progress=False, init_encoder=encoder,
             targets=ft_targets, resume=False, extra_provenance={
                 "reference_of": str(regression_path),
                 "base_checkpoint": str(base_reference_path),
                 "base_checkpoint_sha256": base_sha,
                 "finetune_sha256": prov["finetune_sha256"],
                 "training_sets": [pre, finetune],
             })
    return out


def build_untrained(victim_path_or_config: str | Path | PretrainConfig, out: str | Path) -> Path:
    """Save the victim's encoder at its seeded random initialisation as a checkpoint."""
    config = (victim_path_or_config if isinstance(victim_path_or_config, PretrainConfig)
              else recipe_of(victim_path_or_config))
    out = Path(out)
    prov = {"strategy": "untrained", "config": asdict(config), "untrained_of": config.strategy,
            "seed": config.seed}
    if out.exists():
        try:
            if read_checkpoint_file(out).get("provenance", {}) == prov:
                return out
        except MolleakError:
            pass
    torch.manual_seed(config.seed)  # the trainer seeds the same way before building the encoder
    encoder = build_encoder(config.encoder, config.encoder_config)
    save_checkpoint(out, encoder, prov)
    return out


def _read(path: Path, what: str) -> list[str]:
    if not path.exists():
        raise InputFileError(f"{what} not found: {path} (make it with `molleak data prepare`)")
    return read_smiles(path, what=what, canonicalize=False).smiles


def _sample(smiles: list[str], n: int, rng: np.random.Generator) -> list[str]:
    if n >= len(smiles):
        return list(smiles)
    return [smiles[i] for i in sorted(rng.choice(len(smiles), size=n, replace=False))]


def _cell(out: Path, name: str, compute, params: dict[str, Any]) -> dict[str, Any]:
    """Read a finished cell's JSON when it was made with the same `params`, else compute and save it."""
    import json

    path = out / "cells" / f"{name}.json"
    params = to_jsonable(params)
    if path.exists():
        done = json.loads(path.read_text())
        if done.get("params") == params:
            log.info("cell %s done already; reading %s", name, path)
            return done
        log.warning("cell %s was made with other settings; recomputing", name)
    t0 = time.perf_counter()
    result = to_jsonable(compute())
    result["params"] = params
    result["seconds"] = round(time.perf_counter() - t0, 2)
    write_json_atomic(path, result)
    return result


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
) -> dict[str, Any]:
    """Membership audit of a victim against its reference victim and untrained encoder.

    Builds the reference victim from `data_dir/reference.smi` unless `reference_path` is given,
    and the untrained encoder, under `out_dir/models/`.
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

    def compute() -> dict[str, Any]:
        victim = Victim.from_checkpoint(victim_path)
        refs = {"reference": Victim.from_checkpoint(reference_path),
                "untrained": Victim.from_checkpoint(untrained_path)}
        result = membership_audit(victim, members, nonmembers, refs, n_neighbours=n_neighbours, seed=seed,
                                  n_boot=n_boot, statistic=statistic)
        result["queries"] = {"victim": victim.queries}
        return result

    result = {"victim": str(victim_path), "reference": str(reference_path), "untrained": str(untrained_path),
              "membership": _cell(out, "membership", compute, {
                  "victim": str(victim_path), "reference": str(reference_path), "n_members": n_members,
                  "n_neighbours": n_neighbours, "n_boot": n_boot, "seed": seed, "statistic": statistic})}
    write_json_atomic(out / "leakage.json", result)
    return result


def plant_canaries(private: list[str], canaries: list[str], repeats: int) -> list[str]:
    """The training list: the private molecules plus each canary `repeats` times."""
    if repeats < 1:
        raise MolleakError(f"canary repetition must be at least 1, got {repeats}")
    overlap = set(private) & set(canaries)
    if overlap:
        raise MolleakError(f"{len(overlap)} canaries are already in the private set")
    return list(private) + list(canaries) * repeats


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
) -> dict[str, Any]:
    """Canary positive control over a grid of repetition counts and epochs.

    Canaries, their matched non-members and the reference victim's decoys are disjoint draws
    from `holdout.smi` (MOSES molecules no victim of the tier saw); the private part is the first
    `n_private` molecules of `private.smi`, the reference's part the first of `reference.smi`.
    Also reports ordinary private members (seen once per epoch) vs the same non-members.

    With `pool` (a candidate pool file, `molleak candidates`), the three sets are drawn from the
    pool's molecules instead (none of them in any set of the tier), so the extraction attack can
    produce them exactly: each cell then also runs the attack (`attack`, on the tier's aux set)
    through the victim and through the reference victim and reports canary recovery
    (`canary_extraction`).
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
        aux = _read(data / "aux.smi", "aux set")  # the attacker's auxiliary set, for the attack
        taken = set(aux)
        for name in ("private", "reference", "holdout"):
            if (data / f"{name}.smi").exists():
                taken.update(_read(data / f"{name}.smi", f"{name} set"))
        source = [s for s in unique_smiles(records) if s not in taken]
        what = f"candidate pool {pool} (molecules in no set of the tier)"
    if len(source) < 3 * n_canaries:
        raise MolleakError(f"{what} has {len(source)} molecules; {3 * n_canaries} needed for "
                           f"{n_canaries} canaries, non-members and decoys")
    drawn = [source[i] for i in rng.permutation(len(source))[: 3 * n_canaries]]
    canaries, nonmembers, decoys = (drawn[:n_canaries], drawn[n_canaries : 2 * n_canaries],
                                    drawn[2 * n_canaries :])
    enc = encoder_config or {"num_layers": 2, "emb_dim": 32}
    cells = []
    for r in repeats:
        for ep in epochs:
            config = PretrainConfig(strategy=strategy, epochs=ep, batch_size=batch_size, lr=lr, seed=seed,
                                    encoder_config=enc)
            name = f"r{r}_e{ep}"

            # the attack's work directory (a shadow encoder) is shared by cells of one recipe: r is data
            def compute(r=r, config=config, name=name, ep=ep) -> dict[str, Any]:
                vpath = train_victim(plant_canaries(private, canaries, r), config,
                                     out / "models" / f"{name}_victim.pt", train_name=f"private+canaries x{r}")
                rpath = train_victim(plant_canaries(reference, decoys, r), config,
                                     out / "models" / f"{name}_reference.pt", train_name=f"reference+decoys x{r}")
                victim = Victim.from_checkpoint(vpath)
                refs = {"reference": Victim.from_checkpoint(rpath)}
                kw = {"n_neighbours": n_neighbours, "seed": seed, "n_boot": n_boot, "statistic": statistic}
                result = {
                    "canaries": membership_audit(victim, canaries, nonmembers, refs, **kw),
                    "private_members": membership_audit(victim, private[:n_canaries], nonmembers, refs, **kw),
                }
                if records is not None:
                    result["extraction"] = canary_extraction(
                        victim, refs["reference"], records, aux, canaries, decoys, attack=attack,
                        attack_options=attack_options, work_dir=out / "models" / f"attack_e{ep}", seed=seed,
                        n_boot=n_boot)
                return result

            params = {"config": asdict(config), "recipe_version": recipe_version(config.strategy), "n_private": len(private), "canaries": canaries,
                      "n_neighbours": n_neighbours, "n_boot": n_boot, "statistic": statistic}
            if pool is not None:
                params.update(pool=str(pool), attack=attack, attack_options=dict(attack_options or {}))
            cell = _cell(out, name, compute, params)
            cells.append({"repeats": r, "epochs": ep, **cell})
    result = {"experiment": "canary", "statistic": statistic, "strategy": strategy, "encoder_config": enc, "n_private": len(private),
              "n_canaries": n_canaries, "seed": seed, "canary_source": "holdout" if pool is None else str(pool),
              "cells": cells}
    write_json_atomic(out / "canary.json", result)
    return result


def canary_extraction(
    victim: Victim,
    reference: Victim,
    records: list,
    aux_smiles: list[str],
    canaries: list[str],
    decoys: list[str],
    *,
    attack: str = "adapter",
    attack_options: dict[str, Any] | None = None,
    work_dir: str | Path | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    k_list: tuple[int, ...] = (50, 100, 200),
) -> dict[str, Any]:
    """Does the extraction attack recover planted canaries? The same attack through victim and reference.

    The victim was trained with the canaries planted, the reference victim with the decoys; both are
    candidates of the same pool. Reported per model: the canaries' and decoys' ranks among the
    pool's molecules, their mean exposure (log2 of pool size over rank; 0 = ranked last, log2(e) =
    1.44 at chance, log2(N) = ranked first), how many sit in the top-K; and the private-only test with
    "canary" as the victim's private hit and "decoy" as the reference's: AUC of each model's score
    for canary vs decoy and the paired-bootstrap difference. A difference above 0 is recovery caused
    by training on the canaries.
    """
    from molleak.attack.context import AttackContext
    from molleak.attack.methods import run_method
    from molleak.evaluate.attribution import private_only_difference
    from molleak.ranking import rank_order

    ctx = AttackContext(aux_smiles=aux_smiles, seed=seed, records=records, victim=victim, work_dir=work_dir)
    outputs = {"victim": run_method(ctx, attack, attack_options)}
    # the same pool, weak labels and work directory (a shadow encoder depends on the recipe only)
    outputs["reference"] = run_method(ctx.for_victim(reference), attack, attack_options)
    smiles = outputs["victim"].smiles
    if outputs["reference"].smiles != smiles:
        raise MolleakError("canary extraction: the two runs scored different molecules")
    n = len(smiles)
    is_canary = np.isin(smiles, canaries)
    is_decoy = np.isin(smiles, decoys)
    result: dict[str, Any] = {"attack": attack, "attack_options": dict(attack_options or {}), "pool_molecules": n, "n_canaries": int(is_canary.sum()),
                              "n_decoys": int(is_decoy.sum())}
    for role, output in outputs.items():
        scores = np.where(np.isfinite(output.scores), output.scores, -np.inf)
        rank = np.empty(n, dtype=np.int64)
        rank[rank_order(scores, seed)] = np.arange(1, n + 1)
        row: dict[str, Any] = {}
        for group, mask in (("canaries", is_canary), ("decoys", is_decoy)):
            ranks = rank[mask]
            row[group] = {"median_rank": float(np.median(ranks)),
                          "mean_exposure": float(np.mean(np.log2(n / ranks))),
                          **{f"in_top{k}": int(np.sum(ranks <= k)) for k in k_list}}
        result[role] = row
    result["canary_vs_decoy"] = private_only_difference(outputs["victim"].scores, outputs["reference"].scores,
                                                        is_canary, is_decoy, n_boot=n_boot, seed=seed)
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
    done = []
    for size, ep in cells:
        private, reference = private_all[:size], reference_all[:size]
        members = _sample(private, n_members, np.random.default_rng([seed, size]))
        config = PretrainConfig(strategy=strategy, epochs=ep, batch_size=batch_size, lr=lr, seed=seed,
                                encoder_config=enc)
        name = f"n{size}_e{ep}"

        def compute(private=private, reference=reference, members=members, config=config, name=name):
            vpath = train_victim(private, config, out / "models" / f"{name}_victim.pt", train_name="private.smi")
            rpath = train_victim(reference, config, out / "models" / f"{name}_reference.pt",
                                 train_name="reference.smi")
            victim = Victim.from_checkpoint(vpath)
            refs = {"reference": Victim.from_checkpoint(rpath)}
            return {"membership": membership_audit(victim, members, nonmembers, refs, n_neighbours=n_neighbours,
                                                   seed=seed, n_boot=n_boot, statistic=statistic)}

        cell = _cell(out, name, compute, {"config": asdict(config), "recipe_version": recipe_version(config.strategy),
                                          "n_members": n_members,
                                          "n_neighbours": n_neighbours, "n_boot": n_boot, "statistic": statistic})
        done.append({"size": size, "epochs": ep, **cell})
    result = {"experiment": "sweep", "statistic": statistic, "strategy": strategy, "encoder_config": enc, "seed": seed,
              "cells": done}
    write_json_atomic(out / "sweep.json", result)
    return result


def attribute_runs(
    victim_run: str | Path,
    reference_run: str | Path,
    data_dir: str | Path,
    *,
    ks: tuple[int, ...] = (50, 100, 200),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Attribution of an extraction: the victim's run vs its reference victim's run, same attack settings.

    Reads both runs' `scores.tsv` (every unique pool molecule's score), keeps the molecules scored in
    both, labels them (substructure and exact) against `private.smi` (P) and `reference.smi` (P') with
    the oracle, and returns `attribution_report` per label kind.
    """
    from molleak.evaluate.attribution import attribution_report
    from molleak.evaluate.evaluate import bank_labels, read_scores

    data = Path(data_dir)
    victim, reference = read_scores(victim_run), read_scores(reference_run)
    ref_index = {s: i for i, s in enumerate(reference.smiles)}
    shared = [(i, ref_index[s]) for i, s in enumerate(victim.smiles) if s in ref_index]
    if not shared:
        raise MolleakError(f"runs {victim_run} and {reference_run} share no scored molecule; "
                           f"attribution needs both scored over the same pool")
    vi, ri = (np.array(x) for x in zip(*shared, strict=True))
    smiles = [victim.smiles[i] for i in vi]
    lab_p = bank_labels(smiles, _read(data / "private.smi", "private set"), "private")
    lab_r = bank_labels(smiles, _read(data / "reference.smi", "reference set"), "reference")
    out: dict[str, Any] = {"victim_run": str(victim_run), "reference_run": str(reference_run),
                           "n_shared": len(smiles), "n_victim_only": len(victim.smiles) - len(smiles)}
    for kind in ("substructure", "exact"):
        out[kind] = attribution_report(victim.scores[vi], reference.scores[ri],
                                       np.asarray(getattr(lab_p, kind), bool), np.asarray(getattr(lab_r, kind), bool),
                                       ks=ks, n_boot=n_boot, seed=seed)
    return to_jsonable(out)
