"""Continue a victim's pre-training for more epochs with its own recipe (does longer pre-training help?).

Loads the victim's encoder, rebuilds its recipe from the checkpoint's provenance
(`molleak.plans.leakage.recipe_of`), and trains `--epochs` more epochs on a SMILES file with a fresh
optimiser and `--seed`, writing a new checkpoint. Not for Mole-BERT (its tokenizer phase is not in
the encoder checkpoint) or the regression victim.

    OMP_NUM_THREADS=1 python scripts/continue_pretraining.py std/zoo/simgrace.pt --smiles std/data/private.smi \
        --epochs 2 --seed 1 --out longer/simgrace.pt
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace

import torch

from molleak.data.smiles_io import read_smiles
from molleak.models.checkpoint import load_encoder
from molleak.pretrain.trainer import pretrain
from molleak.victims.build import recipe_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("victim", help="a molleak victim checkpoint")
    ap.add_argument("--smiles", required=True, help="the molecules to continue on (normally its training set)")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True, help="seed of the continuation (use another than the victim's)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    config = recipe_of(args.victim)
    if config.strategy in {"molebert", "regression"}:
        ap.error(f"{config.strategy} victims cannot be continued by this script")
    encoder, _ = load_encoder(args.victim)
    prov = pretrain(read_smiles(args.smiles).smiles, replace(config, epochs=args.epochs, seed=args.seed), args.out,
                    train_name=args.smiles, progress=False, init_encoder=encoder,
                    extra_provenance={"continued_from": args.victim})
    print(f"{args.out}: loss per epoch {prov['loss_per_epoch']}, spread {prov['embedding_spread']:.3g}")


if __name__ == "__main__":
    main()
