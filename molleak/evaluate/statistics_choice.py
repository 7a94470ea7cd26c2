"""Which membership statistic has power? Every statistic on the same canary victims (`molleak leakage statistics`).

For each strategy: a victim pre-trained on the first `n_private` molecules of `private.smi` plus
`n_canaries` holdout molecules repeated `repeats` times, and its reference victim (same recipe and
seed) on as many `reference.smi` molecules plus as many decoys (other holdout molecules) repeated
as often. Canaries vs matched non-members (further holdout molecules) are then scored by every
statistic in `molleak.attack.membership.STATISTICS`, raw and calibrated against the reference
victim (AUC with a 95% stratified-bootstrap interval).

This is how the default statistic was chosen (BENCHMARKS.md, leakage section); the canary grid
(`molleak leakage canary`) then measures the chosen one on a fresh draw.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from molleak.attack.membership import STATISTICS
from molleak.data.smiles_io import read_smiles
from molleak.errors import InputFileError, MolleakError
from molleak.evaluate.attribution import to_jsonable
from molleak.evaluate.membership import membership_audit
from molleak.models.victim import Victim
from molleak.pretrain.trainer import PretrainConfig

log = logging.getLogger(__name__)

ROWS = ("victim", "reference", "victim-minus-reference")


def _read(path: Path) -> list[str]:
    if not path.is_file():
        raise InputFileError(f"{path} not found (a tier directory from `molleak data prepare`)")
    return read_smiles(path).smiles


def compare_statistics(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    strategies: list[str],
    n_private: int = 300,
    n_canaries: int = 50,
    repeats: int = 30,
    epochs: int = 30,
    encoder_config: dict[str, Any] | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    n_neighbours: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every membership statistic on one canary victim and its reference victim per strategy.

    Victims are written to `out_dir/<strategy>_victim.pt` and `<strategy>_reference.pt` and reused
    when they hold the same recipe on the same data.

    Returns:
        {"n_private", "n_canaries", "repeats", "epochs", "encoder_config", "seed",
         "rows": [{"strategy", "statistic", "membership": membership_audit(...)}]}
    """
    from molleak.victims.controls import plant_canaries, train_victim

    data, out = Path(data_dir), Path(out_dir)
    holdout = _read(data / "holdout.smi")
    n = n_canaries
    if len(holdout) < 3 * n:
        raise MolleakError(f"{data / 'holdout.smi'} has {len(holdout)} molecules; {3 * n} needed for {n} canaries, "
                           "non-members and decoys")
    canaries, nonmembers, decoys = holdout[:n], holdout[n : 2 * n], holdout[2 * n : 3 * n]
    private = _read(data / "private.smi")[:n_private]
    reference = _read(data / "reference.smi")[:n_private]
    enc = encoder_config or {"num_layers": 3, "emb_dim": 128}
    rows = []
    for strategy in strategies:
        config = PretrainConfig(strategy=strategy, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                encoder_config=enc)
        vpath = train_victim(plant_canaries(private, canaries, repeats), config, out / f"{strategy}_victim.pt",
                             train_name="private+canaries")
        rpath = train_victim(plant_canaries(reference, decoys, repeats), config, out / f"{strategy}_reference.pt",
                             train_name="reference+decoys")
        victim, refs = Victim.from_checkpoint(vpath), {"reference": Victim.from_checkpoint(rpath)}
        for statistic in STATISTICS:
            audit = membership_audit(victim, canaries, nonmembers, refs, n_neighbours=n_neighbours, seed=seed,
                                     n_boot=n_boot, statistic=statistic)
            rows.append({"strategy": strategy, "statistic": statistic, "membership": to_jsonable(audit)})
            log.info("%s / %s done", strategy, statistic)
    return {"n_private": len(private), "n_canaries": n, "repeats": repeats, "epochs": epochs,
            "encoder_config": enc, "seed": seed, "rows": rows}


def statistics_table(res: dict[str, Any]) -> list[str]:
    """The Markdown table of `compare_statistics`: one row per strategy x statistic."""
    enc = res["encoder_config"]
    n = res["n_canaries"]
    lines = [f"{res['n_private']} private + {n} canaries x {res['repeats']}, {res['epochs']} epochs, GIN "
             f"{enc.get('num_layers')}x{enc.get('emb_dim')}, seed {res['seed']}; {n} canaries vs {n} non-members "
             "(holdout)",
             "| strategy | statistic | victim AUC | reference AUC (null) | calibrated AUC |",
             "|---|---|---|---|---|"]
    for row in res["rows"]:
        rows = row["membership"]["rows"]
        cells = [f"{rows[k]['auc']['value']:.3f} [{rows[k]['auc']['lo']:.3f}, {rows[k]['auc']['hi']:.3f}]"
                 for k in ROWS]
        lines.append(f"| {row['strategy']} | {row['statistic']} | " + " | ".join(cells) + " |")
    return lines
