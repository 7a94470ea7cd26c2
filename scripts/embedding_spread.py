"""Embedding spread (the trainer's collapse check) of existing victim checkpoints.

Prints, per checkpoint, `molleak.pretrain.trainer.embedding_spread` of the eval-mode embeddings of
the first 256 molecules of a SMILES file (one batch), the same figure every pre-training run now
records in its provenance; below 1e-4 the encoder has collapsed.

    python scripts/embedding_spread.py --smiles std/data/private.smi std/zoo/*.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from molleak.data.smiles_io import read_smiles
from molleak.models.checkpoint import load_encoder
from molleak.pretrain.trainer import COLLAPSE_SAMPLE, COLLAPSE_SPREAD, encoder_spread, featurize_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", help="victim checkpoints")
    ap.add_argument("--smiles", required=True, help="molecules to embed (the first 256 are used)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    smiles = read_smiles(args.smiles).smiles[:COLLAPSE_SAMPLE]
    print(f"embedding spread over the first {len(smiles)} molecules of {args.smiles} (collapsed below {COLLAPSE_SPREAD:g})")
    print("| checkpoint | spread | collapsed |")
    print("|---|---|---|")
    for path in args.checkpoints:
        encoder, _ = load_encoder(path)
        encoder.eval()
        spread = encoder_spread(encoder, featurize_all(smiles, encoder.featurizer, what=Path(path).name))
        print(f"| {Path(path).name} | {spread:.3g} | {'yes' if spread < COLLAPSE_SPREAD else 'no'} |")


if __name__ == "__main__":
    main()
