"""`molleak pretrain`: pre-train one victim with a registered strategy."""

from __future__ import annotations

import argparse
from pathlib import Path

from molleak.cli.common import add_config, add_seed, output_file, positive_float, positive_int
from molleak.config import PretrainFileConfig
from molleak.data.smiles_io import read_smiles
from molleak.errors import MolleakError
from molleak.pretrain.base import load_strategies
from molleak.pretrain.trainer import PretrainConfig, pretrain
from molleak.runs import resolve_seed, seed_everything


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pre-train one victim encoder",
        description="Pre-train an encoder on a SMILES set with a registered strategy; resumable.",
    )
    p.add_argument("--strategy", choices=load_strategies().names(), help="pre-training strategy; required")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="a tier directory from `molleak data prepare` (trains on its private.smi)")
    src.add_argument("--smiles", help="a SMILES file to train on (this or --data is required)")
    p.add_argument("--out", type=output_file, help="checkpoint file to write (e.g. victim.pt); required")
    p.add_argument("--epochs", type=positive_int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--emb-dim", type=positive_int, default=300)
    p.add_argument("--layers", type=positive_int, default=5)
    g = p.add_argument_group("DP-SGD (per-molecule clipping and Gaussian noise; needs the `dp` extra)")
    g.add_argument("--dp-epsilon", type=positive_float, default=None,
                   help="train by DP-SGD to this epsilon (over the whole run; noise calibrated by dp-accounting)")
    g.add_argument("--dp-delta", type=positive_float, default=None, help="DP delta (default 1e-5)")
    g.add_argument("--dp-max-grad-norm", type=positive_float, default=None,
                   help="clip each molecule's gradient to this norm (default 1.0)")
    add_seed(p)
    add_config(p, PretrainFileConfig, required=("strategy", ("data", "smiles"), "out"))
    p.set_defaults(func=run)


def _dp(args: argparse.Namespace) -> dict[str, float] | None:
    """The DP-SGD target from --dp-*, or None (ordinary training)."""
    if args.dp_epsilon is None:
        if args.dp_delta is not None or args.dp_max_grad_norm is not None:
            raise MolleakError("--dp-delta and --dp-max-grad-norm need --dp-epsilon (the privacy target)")
        return None
    dp = {"epsilon": args.dp_epsilon, "delta": args.dp_delta, "max_grad_norm": args.dp_max_grad_norm}
    return {k: v for k, v in dp.items() if v is not None}


def run(args: argparse.Namespace) -> int:
    seed = resolve_seed(args.seed)
    seed_everything(seed)
    path = Path(args.data) / "private.smi" if args.data else Path(args.smiles)
    train = read_smiles(path, what="training set")
    config = PretrainConfig(
        strategy=args.strategy, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
        encoder_config={"num_layers": args.layers, "emb_dim": args.emb_dim}, dp=_dp(args),
    )
    prov = pretrain(train.smiles, config, args.out, train_name=str(path),
                    extra_provenance={"train_invalid": train.n_invalid, "train_duplicate": train.n_duplicate})
    losses = " -> ".join(f"{x:.3f}" for x in prov["loss_per_epoch"])
    private = ""
    if "dp" in prov:
        d = prov["dp"]
        private = (f"; DP-SGD epsilon {d['epsilon_spent']:.3g} (target {d['epsilon']:g}) at delta {d['delta']:g}, "
                   f"noise multiplier {d['noise_multiplier']:.3g}, clip {d['max_grad_norm']:g}")
    print(f"pre-trained {args.strategy} on {len(train)} molecules ({train.summary()}); loss {losses}{private}; "
          f"wrote {args.out}")
    return 0
