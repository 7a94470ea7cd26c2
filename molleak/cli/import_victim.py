"""`molleak import-victim`: turn a published pretrain-gnns state_dict into a victim checkpoint with provenance.

GIN, GCN, GraphSAGE and GAT state_dicts are recognised from their keys (a GCN from a GraphSAGE by
its BatchNorm statistics, or `--arch`: `molleak.models.checkpoint.pretrain_gnns_config`). The
training set of a published model is unknown to us: the provenance says so (`training_set:
"unknown"` unless `--training-set` says otherwise) and, when the file name is one of the released
`chem/model_architecture/<arch>_<recipe>.pth` names and the weights are that architecture, adds
what the publisher says it trained on (`published_training_data`, from `PUBLISHED_RECIPES`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from molleak.cli.common import output_file
from molleak.errors import CheckpointError
from molleak.models.checkpoint import (
    FORMAT,
    PRETRAIN_GNNS_ARCHS,
    load_encoder,
    read_checkpoint_file,
    save_checkpoint,
)
from molleak.runs import package_versions, sha256_file

ARCH_LABELS = {"gin": "GIN", "gcn": "GCN", "graphsage": "GraphSAGE", "gat": "GAT"}
_ZINC = "ZINC-2M (zinc_standard_agent: 2M molecules from ZINC15)"
_CHEMBL = "chembl_filtered (about 456k ChEMBL molecules, 1,310 assays)"
#: the recipes of pretrain-gnns' released `chem/model_architecture/{gcn,graphsage,gat}_<recipe>.pth`
#: (Hu et al. 2020; its README): recipe -> what the publisher says it was trained on
PUBLISHED_RECIPES = {
    "contextpred": f"ContextPred (self-supervised), 100 epochs, on {_ZINC}",
    "supervised": f"supervised multi-task, 100 epochs, on {_CHEMBL}",
    "supervised_contextpred": f"ContextPred on {_ZINC}, then supervised multi-task on {_CHEMBL}",
}


def published_recipe(source: Path, arch: str) -> str | None:
    """The recipe a released file name `<arch>_<recipe>.pth` names, when `arch` is the weights' architecture."""
    head, _, recipe = source.stem.partition("_")
    return recipe if source.suffix == ".pth" and head == arch and recipe in PUBLISHED_RECIPES else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-victim",
        help="import a published pretrain-gnns checkpoint as a victim",
        description="Load a pretrain-gnns GIN, GCN, GraphSAGE or GAT state_dict (e.g. supervised_contextpred.pth, "
                    "gat_contextpred.pth) unchanged and save it as a molleak victim checkpoint that records where it "
                    "came from. Its training set is recorded as unknown unless --training-set says otherwise.",
    )
    p.add_argument("source", help="the pretrain-gnns .pth file (a state_dict; a `gnn.` prefix is stripped)")
    p.add_argument("--out", required=True, type=output_file, help="victim checkpoint to write (e.g. zoo/contextpred_published.pt)")
    p.add_argument("--arch", choices=(*PRETRAIN_GNNS_ARCHS, "chemprop"), default=None,
                   help="the architecture; read from the keys (GCN vs GraphSAGE from the BatchNorm statistics of a "
                        "trained model), and checked against them when given. Needed only for a GCN or GraphSAGE "
                        "whose statistics do not decide (untrained)")
    p.add_argument("--strategy", default=None,
                   help="the pre-training strategy the publisher used (default: the recipe a released file name "
                        "names, else `imported`)")
    p.add_argument("--training-set", default="unknown",
                   help="what the publisher trained on (free text, recorded in the provenance; default unknown)")
    add_chemprop_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.arch == "chemprop":
        return run_chemprop(args)
    refuse_chemprop_options(args)
    src = Path(args.source)
    if read_checkpoint_file(src).get("format") == FORMAT:
        raise CheckpointError(f"{src} is already a molleak victim checkpoint; use it directly")
    encoder, loaded = load_encoder(src, arch=args.arch)
    arch = loaded["architecture"]
    recipe = published_recipe(src, arch)
    provenance = {
        "strategy": args.strategy or recipe or "imported",
        "source": "pretrain-gnns state_dict",
        "source_file": str(src.resolve()),
        "source_sha256": sha256_file(src),
        "architecture": arch,
        "architecture_from": loaded["architecture_from"],
        "training_set": args.training_set,
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
    }
    if recipe:
        provenance["published_training_data"] = PUBLISHED_RECIPES[recipe]
    save_checkpoint(args.out, encoder, provenance)
    cfg = encoder.config()
    shape = f"{cfg['num_layers']}x{cfg['emb_dim']} {ARCH_LABELS[arch]}" + (
        f" ({cfg['heads']} heads)" if "heads" in cfg else "")
    print(f"imported {src} ({shape}, strategy {provenance['strategy']}, training set {args.training_set}"
          + (f"; published: {PUBLISHED_RECIPES[recipe]}" if recipe else "") + f") -> {args.out}")
    return 0


def add_chemprop_options(p: argparse.ArgumentParser) -> None:
    """`--arch chemprop`: a model file written by chemprop v2 (`molleak.models.chemprop_files`)."""
    g = p.add_argument_group(
        "chemprop models (--arch chemprop)",
        "a chemprop v2 model file (`chemprop train`'s model_*/best.pt or checkpoints/*.ckpt, or models.save_model), "
        "read weights-only; the victim is its fingerprint (message passing + aggregation). A file holding only a "
        "state_dict needs --depth and --aggregation")
    g.add_argument("--depth", type=int, default=None, help="message-passing depth (chemprop's default: 3)")
    g.add_argument("--aggregation", choices=("mean", "sum", "norm", "attentive"), default=None,
                   help="aggregation (chemprop's default: mean)")
    g.add_argument("--atom-features", choices=("v2", "v1", "organic", "rigr"), default=None,
                   help="chemprop's --multi-hot-atom-featurizer-mode (default: read from the model's input width)")


def refuse_chemprop_options(args: argparse.Namespace) -> None:
    given = [f"--{k.replace('_', '-')}" for k in ("depth", "aggregation", "atom_features") if getattr(args, k) is not None]
    if given:
        raise CheckpointError(f"{' and '.join(given)} apply to chemprop models only (--arch chemprop)")


def run_chemprop(args: argparse.Namespace) -> int:
    from molleak.models.chemprop_files import import_chemprop

    prov = import_chemprop(args.source, args.out, strategy=args.strategy or "imported", training_set=args.training_set,
                           depth=args.depth, aggregation=args.aggregation, atom_features=args.atom_features)
    cfg = prov["chemprop"]["config"]
    print(f"imported {args.source} (chemprop {prov['chemprop']['file_kind']}: D-MPNN d_h {cfg['d_h']}, depth "
          f"{cfg['depth']}, {cfg['aggregation']} aggregation, {cfg['atom_features']} atom features; training set "
          f"{args.training_set}) -> {args.out}")
    return 0
