"""Seconds per epoch of every zoo strategy at full size, measured on a sample and extrapolated.

Runs each strategy for its real epoch loop (the one trainer) on `--n` molecules of a tier's
private set with the full-size encoders (5x300 GIN; GROVER defaults), and times featurisation +
`prepare` separately (paid once per run). CPU seconds are reported (wall seconds too) because the machine is shared: CPU time of a
single-threaded run is what the work costs on a dedicated core. Prints a table with the extrapolation to `--target`
molecules and the total for the default zoo epochs (molleak.victims.zoo.DEFAULT_EPOCHS).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_zoo.py --data /tmp/tiny --n 1024 --threads 1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from molleak.data.smiles_io import read_smiles
from molleak.pretrain.regression import load_b3db_logbb
from molleak.pretrain.trainer import featurize_all, pretrain
from molleak.victims.zoo import ZOO_STRATEGIES, ZooConfig, victim_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="tier directory (its private.smi is sampled)")
    ap.add_argument("--n", type=int, default=1024, help="molecules timed per strategy")
    ap.add_argument("--target", type=int, default=50_000, help="training-set size to extrapolate to")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--strategies", nargs="+", default=list(ZOO_STRATEGIES))
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--from-json", default=None, help="re-print (with the current default epochs) a saved run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        report(saved["rows"], saved["target"], saved["header"])
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    smiles = read_smiles(Path(args.data) / "private.smi").smiles[: args.n]
    zoo = ZooConfig()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.strategies:
            cfg = victim_config(name, zoo)
            cfg.epochs = 2 if name == "molebert" else 1  # molebert: one tokenizer epoch + one MAM epoch
            t0, c0 = time.perf_counter(), time.process_time()
            prov = pretrain(smiles, cfg, Path(tmp) / f"{name}.pt", progress=False, resume=False)
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
            # CPU seconds do not depend on how busy the shared machine is; wall seconds do
            per_epoch = [s * cpu / total for s in prov["seconds_per_epoch"]]
            prep = cpu - sum(per_epoch)  # featurise + prepare + build + save
            rows.append({"strategy": name, "n": len(smiles), "prep_s": prep, "seconds_per_epoch": per_epoch,
                         "wall_seconds_per_epoch": prov["seconds_per_epoch"]})
        # the regression fine-tune on B3DB logBB (1,058 molecules) from a 5x300 GIN, one epoch timed
        ft_smiles, ft_y = load_b3db_logbb()
        cfg = victim_config("attrmask", zoo)
        cfg.strategy, cfg.batch_size, cfg.epochs = "regression", zoo.finetune_batch_size, 1
        c0 = time.process_time()
        featurize_all(ft_smiles, "pretrain_gnns")
        feat_s = time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        prov = pretrain(ft_smiles, cfg, Path(tmp) / "regression.pt", progress=False, resume=False, targets=ft_y)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        per_epoch = [s * cpu / total for s in prov["seconds_per_epoch"]]
        rows.append({"strategy": "regression", "n": len(ft_smiles), "prep_s": feat_s,
                     "seconds_per_epoch": per_epoch, "wall_seconds_per_epoch": prov["seconds_per_epoch"]})
    header = (f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
              f"load average {tuple(round(x, 1) for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "target": args.target, "header": header}, indent=2))
    report(rows, args.target, header)


def estimate(row: dict, target: int) -> tuple[int, float]:
    """(epochs, CPU seconds) of one victim at `target` molecules with the zoo's default epochs."""
    zoo = ZooConfig()
    name, per_epoch = row["strategy"], row["seconds_per_epoch"]
    if name == "regression":  # the fine-tuning set does not grow with the tier
        return zoo.finetune_epochs, row["prep_s"] + zoo.finetune_epochs * per_epoch[0]
    epochs = victim_config(name, zoo).epochs
    scale = target / row["n"]
    if name == "molebert":  # a third of the epochs (at least one) train the tokenizer, the rest the encoder
        n_tok = max(1, round(epochs / 3))
        return epochs, scale * (row["prep_s"] + n_tok * per_epoch[0] + (epochs - n_tok) * per_epoch[1])
    return epochs, scale * (row["prep_s"] + epochs * per_epoch[0])


def report(rows: list[dict], target: int, header: str) -> None:
    print(header)
    print("all seconds are CPU seconds of this process (wall seconds per epoch in brackets)")
    print(f"{'strategy':<12} {'n':>6} {'prep s':>8} {'s/epoch (sample)':>18} {'wall':>14} {'mol/cpu-s':>9} "
          f"{'epochs':>6} {'est. cpu-s @ ' + str(target):>16}")
    total = 0.0
    for r in rows:
        spe = "/".join(f"{s:.1f}" for s in r["seconds_per_epoch"])
        wall = "/".join(f"{s:.1f}" for s in r["wall_seconds_per_epoch"])
        rate = r["n"] / r["seconds_per_epoch"][-1]
        epochs, est = estimate(r, target)
        total += est
        print(f"{r['strategy']:<12} {r['n']:>6} {r['prep_s']:>8.1f} {spe:>18} {'(' + wall + ')':>14} {rate:>9.0f} "
              f"{epochs:>6} {est:>16.0f}")
    print(f"estimated zoo total at {target} molecules: {total:.0f} CPU s = {total / 60:.1f} min of one core")


if __name__ == "__main__":
    main()
