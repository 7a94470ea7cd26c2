"""The one pre-training loop for every strategy: seeded, resumable, with progress.

After each epoch a resume file (`<out>.resume.pt`) holds the strategy's weights, the optimiser
and the loss history; a rerun with the same config and data continues from it and, because every
epoch is seeded from (seed, epoch), ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import io
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from molleak.chem import rdkit_quiet, shorten, size_problem
from molleak.data.featurize import FEATURIZERS
from molleak.errors import MolleakError
from molleak.models.base import GraphEncoder, build_encoder
from molleak.models.checkpoint import check_encoder_config, read_checkpoint_file, save_checkpoint
from molleak.pretrain.base import PretrainStrategy, load_strategies
from molleak.runs import package_versions, sha256_lines, write_atomic

if TYPE_CHECKING:
    from molleak.pretrain.dp import DPConfig

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    """Everything that decides a pre-trained victim's weights."""

    strategy: str
    epochs: int = 3
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    encoder: str = "gin"
    encoder_config: dict[str, Any] = field(default_factory=lambda: {"num_layers": 5, "emb_dim": 300})
    hparams: dict[str, Any] = field(default_factory=dict)
    #: DP-SGD target (`molleak.pretrain.dp.DPConfig` as a dict); None: ordinary training
    dp: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        def integer(name: str, low: int, high: int | None = None) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise MolleakError(f"pre-training config: {name} must be an integer, got {value!r}")
            if value < low or (high is not None and value > high):
                bound = f"from {low} to {high}" if high is not None else f"at least {low}"
                raise MolleakError(f"pre-training config: {name} must be {bound}, got {value}")

        def number(name: str, *, positive: bool) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise MolleakError(f"pre-training config: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise MolleakError(f"pre-training config: {name} must be a finite number, got {value}")
            if (value <= 0) if positive else (value < 0):
                word = "positive" if positive else "non-negative"
                raise MolleakError(f"pre-training config: {name} must be {word}, got {value}")

        integer("epochs", 1)
        integer("batch_size", 2)
        integer("seed", 0, 2**32 - 1)  # NumPy's legacy seeding takes 0 .. 2**32 - 1
        number("lr", positive=True)
        number("weight_decay", positive=False)
        if not isinstance(self.encoder_config, dict) or not isinstance(self.hparams, dict):
            raise MolleakError("pre-training config: encoder_config and hparams must be tables of settings")
        if self.dp is not None:
            from molleak.pretrain.dp import dp_config

            self.dp = dp_config(self.dp).model_dump()


class _FieldsWithoutNoneDP:
    """`PretrainConfig.__dataclass_fields__` as seen by an instance: without `dp` while it is None.

    So `asdict` and `replace` (the recipe hashed into cell keys and compared by `built_with`) leave
    `dp` out of a config without DP, every recipe from before DP existed keeps its dict, and its victims
    stay reusable. The class itself (and `dataclasses.fields(PretrainConfig)`) sees every field.
    """

    def __init__(self, fields: dict[str, Any]):
        self.all = fields
        self.without_dp = {k: f for k, f in fields.items() if k != "dp"}

    def __get__(self, obj: Any, cls: type | None = None) -> dict[str, Any]:
        return self.all if obj is None or getattr(obj, "dp", None) is not None else self.without_dp


PretrainConfig.__dataclass_fields__ = _FieldsWithoutNoneDP(PretrainConfig.__dataclass_fields__)  # type: ignore[misc]


def build_strategy(config: PretrainConfig, encoder: GraphEncoder | None = None) -> PretrainStrategy:
    """The strategy module (encoder + heads) for a config."""
    cls = load_strategies().get(config.strategy)
    if encoder is None:
        encoder_name = config.encoder if cls.encoder_name == "gin" else cls.encoder_name
        encoder_config = config.encoder_config if encoder_name == config.encoder else {}
        check_encoder_config(encoder_name, encoder_config, f"pre-training {config.strategy}")  # before allocating
        try:
            encoder = build_encoder(encoder_name, encoder_config)
        except (TypeError, ValueError) as exc:
            raise MolleakError(f"bad encoder config for {encoder_name}: {encoder_config} ({exc})") from None
    try:
        return cls(encoder, **config.hparams)
    except TypeError as exc:
        raise MolleakError(f"bad hyperparameters for strategy {config.strategy}: {exc}") from None


def recipe_version(strategy: str) -> int:
    """The current recipe version of a registered strategy (see `PretrainStrategy.recipe_version`)."""
    return load_strategies().get(strategy).recipe_version


def built_with(provenance: dict[str, Any], config: PretrainConfig) -> bool:
    """Whether a checkpoint's provenance says it was trained with `config` by the current recipe.

    Checkpoints from before recipe versions were recorded count as version 1.
    """
    return (provenance.get("config") == asdict(config)
            and provenance.get("recipe_version", 1) == recipe_version(config.strategy))


def recipe_from_provenance(provenance: dict[str, Any], victim: str, what: str, fix: str) -> PretrainConfig:
    """The recipe a victim checkpoint was trained with, to train `what` (a reference, a shadow) from it.

    Args:
        provenance: the victim checkpoint's provenance.
        victim: how to name the victim in errors.
        what: the model about to be trained from the recipe ("a reference victim", "a shadow").
        fix: what the user can do instead.

    Raises:
        MolleakError: no readable config (e.g. an imported state_dict), or this molleak trains another
            version of the strategy's recipe than the victim's, so `what` would not share it.
    """
    cfg = provenance.get("config")
    if not isinstance(cfg, dict) or "strategy" not in cfg:
        raise MolleakError(f"{victim} carries no pre-training config in its provenance; {what} needs the recipe ({fix})")
    try:
        config = PretrainConfig(**cfg)
        current = recipe_version(config.strategy)
    except (TypeError, MolleakError) as exc:
        raise MolleakError(f"{victim} has an unreadable pre-training config: {exc}") from None
    built = provenance.get("recipe_version", 1)
    if built != current:
        raise MolleakError(
            f"{victim} was trained by version {built} of the {config.strategy} recipe and this molleak trains "
            f"version {current}, so {what} would not share its recipe ({fix})"
        )
    return config


def feature_cache_dir() -> Path:
    """Where featurised training sets are kept: `$MOLLEAK_CACHE_DIR/features`, else `~/.cache/molleak/features`."""
    env = os.environ.get("MOLLEAK_CACHE_DIR")
    return (Path(env) if env else Path.home() / ".cache" / "molleak") / "features"


def _featurize_fresh(smiles: list[str], featurizer: str, what: str) -> list[Any]:
    from rdkit import Chem

    feat = FEATURIZERS.get(featurizer).featurize
    graphs = []
    with rdkit_quiet():
        for s in tqdm(smiles, desc=f"featurise {what}", unit="mol", leave=False, mininterval=1.0):
            if problem := size_problem(s):
                raise MolleakError(f"{what}: SMILES {shorten(s)} {problem}")
            mol = Chem.MolFromSmiles(s)
            if mol is None:
                raise MolleakError(f"{what}: invalid SMILES {shorten(s)}")
            graphs.append(feat(mol, s))
    return graphs


def featurize_all(smiles: list[str], featurizer: str, what: str = "training set",
                  cache_dir: str | os.PathLike | bool | None = None) -> list[Any]:
    """Featurise a whole training set, failing with one line naming the first bad molecule.

    For the pretrain-gnns featuriser the graphs are kept in a feature cache (`cache_dir`; None: the
    default `feature_cache_dir()`, False: none) as one .npz of integer arrays per set, keyed by the
    sha256 of the SMILES in order, `FEATURIZER_VERSION` and RDKit's version: the epochs of one run and every victim
    built from the same set (shadows, reference victims, seeds) featurise it once. Arrays read back
    are the ones featurisation makes, so training from the cache gives bitwise the same weights.
    """
    if cache_dir is False or featurizer != "pretrain_gnns" or not smiles:
        return _featurize_fresh(smiles, featurizer, what)
    from rdkit import rdBase

    from molleak.data.featurize import FEATURE_FALLBACKS, FEATURIZER_VERSION, graphs_from_npz, graphs_to_npz

    root = feature_cache_dir() if cache_dir is None or cache_dir is True else Path(cache_dir)
    # RDKit's version too: its perception (aromaticity, stereo) decides the features
    path = root / f"{featurizer}-v{FEATURIZER_VERSION}-rdkit{rdBase.rdkitVersion}-{sha256_lines(smiles)}.npz"
    if path.is_file():
        try:
            graphs, fallbacks = graphs_from_npz(path)
        except (OSError, ValueError) as exc:
            log.warning("ignoring feature cache %s (%s); featurising afresh", path, exc)
        else:
            if len(graphs) == len(smiles):
                FEATURE_FALLBACKS.update(fallbacks)
                log.info("%s: %d graphs read from the feature cache %s", what, len(graphs), path)
                return graphs
            log.warning("ignoring feature cache %s (%d graphs for %d SMILES)", path, len(graphs), len(smiles))
    before = Counter(FEATURE_FALLBACKS)
    graphs = _featurize_fresh(smiles, featurizer, what)
    fallbacks = {k: v - before[k] for k, v in FEATURE_FALLBACKS.items() if v - before[k]}
    try:
        write_atomic(path, graphs_to_npz(graphs, fallbacks))
    except OSError as exc:  # a read-only or full cache directory costs the reuse, not the run
        log.warning("could not write the feature cache %s: %s", path, exc)
    return graphs


#: molecules whose eval-mode embeddings the collapse check compares
COLLAPSE_SAMPLE = 256
#: below this spread (mean per-dimension std across molecules / mean |embedding|) a victim has collapsed
COLLAPSE_SPREAD = 1e-4


def embedding_spread(emb: np.ndarray) -> float:
    """How much embeddings differ between molecules, relative to their size (0 = one point for all).

    Mean over dimensions of the standard deviation across molecules, divided by the mean absolute
    embedding value; scale-free, so a small-norm encoder is not flagged. NaN if any embedding holds
    NaN or inf (a broken encoder; `pretrain` flags it as collapsed).
    """
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or len(emb) < 2:
        raise MolleakError(f"embedding_spread needs at least two embeddings, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        return float("nan")
    scale = float(np.abs(emb).mean())
    return 0.0 if scale == 0.0 else float(emb.std(axis=0).mean() / scale)


@torch.inference_mode()
def encoder_spread(encoder: GraphEncoder, graphs: list[Any]) -> float:
    """Eval-mode embedding spread of (up to) the first `COLLAPSE_SAMPLE` training graphs, in one batch."""
    sample = graphs[:COLLAPSE_SAMPLE]
    if len(sample) < 2:
        return float("nan")
    batch = FEATURIZERS.get(encoder.featurizer).collate(sample)
    return embedding_spread(encoder.graph_embeddings(batch).float().numpy())


def _resume_path(out: Path) -> Path:
    return out.with_name(out.name + ".resume.pt")


def pretrain(
    smiles: list[str],
    config: PretrainConfig,
    out: str | Path,
    *,
    train_name: str = "",
    resume: bool = True,
    progress: bool = True,
    init_encoder: GraphEncoder | None = None,
    extra_provenance: dict[str, Any] | None = None,
    targets: Sequence[float] | None = None,
    dp: DPConfig | None = None,
    feature_cache: str | Path | bool | None = None,
) -> dict[str, Any]:
    """Pre-train an encoder on `smiles` and save it as a victim checkpoint at `out`.

    `targets` (one per SMILES) is for supervised strategies (`needs_targets`, e.g. the
    regression fine-tune): each prepared graph is then paired with its target.
    `dp` (a `molleak.pretrain.dp.DPConfig`, or `config.dp`) trains by DP-SGD (see `molleak.pretrain.dp`).
    `feature_cache`: where featurised training sets are kept (see `featurize_all`; False: not kept).

    Returns the checkpoint's provenance (loss per epoch, seconds per epoch, ...).
    """
    out = Path(out)
    if dp is not None:
        dp = dp if isinstance(dp, dict) else dp.model_dump()
        if config.dp is not None and config.dp != replace(config, dp=dp).dp:
            raise MolleakError("pretrain: dp given both as an argument and in the config, differently")
        config = replace(config, dp=dp)
    torch.manual_seed(config.seed)
    strategy = build_strategy(config, init_encoder)
    if strategy.needs_targets != (targets is not None):
        need = "needs" if strategy.needs_targets else "takes no"
        raise MolleakError(f"strategy {config.strategy} {need} training targets")
    if targets is not None and len(targets) != len(smiles):
        raise MolleakError(f"{len(targets)} targets for {len(smiles)} training molecules")
    dp_run = None
    if config.dp is not None:  # DP-SGD: per-molecule clipping, Gaussian noise, Poisson sampling
        from molleak.pretrain.dp import DPTraining

        dp_run = DPTraining(strategy, config.dp, len(smiles), config.batch_size, config.epochs, config.seed)
    train_sha = sha256_lines(smiles if targets is None else [f"{s}\t{float(t)!r}" for s, t in zip(smiles, targets, strict=False)])
    optimizer = torch.optim.Adam(
        [p for p in strategy.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    losses: list[float] = []
    seconds: list[float] = []
    start_epoch = 0
    rpath = _resume_path(out)
    cfg_dict = asdict(config)
    if resume and rpath.exists():
        state = read_checkpoint_file(rpath)
        if built_with(state, config) and state.get("train_sha256") == train_sha:
            strategy.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            losses, seconds = list(state["losses"]), list(state["seconds"])
            start_epoch = int(state["epoch"])
            log.info("resuming %s from epoch %d", out, start_epoch)
        else:
            log.warning("ignoring %s: it was made with another config or training set", rpath)

    raw_graphs = featurize_all(smiles, strategy.encoder.featurizer, cache_dir=feature_cache)
    spread_sample = raw_graphs[:COLLAPSE_SAMPLE]  # kept for the collapse check; the rest is not needed again
    graphs = [strategy.prepare(g) for g in raw_graphs]
    del raw_graphs
    if targets is not None:
        graphs = [(g, float(t)) for g, t in zip(graphs, targets, strict=True)]
    n_batches = (len(graphs) + config.batch_size - 1) // config.batch_size
    strategy.train()
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(config.seed * 100_003 + epoch)
        strategy.begin_epoch(epoch, config.epochs)
        order = np.random.default_rng([config.seed, epoch]).permutation(len(graphs))
        total, count = 0.0, 0
        bar = tqdm(range(0 if dp_run else n_batches), desc=f"{config.strategy} epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for b in bar:
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            if len(idx) < 2:  # BatchNorm needs two graphs
                continue
            batch = strategy.collate([graphs[i] for i in idx])
            loss = strategy.loss(batch)
            if not torch.isfinite(loss):
                raise MolleakError(f"{config.strategy}: loss became {loss.item()} at epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
            bar.set_postfix(loss=f"{total / count:.4f}")
        if dp_run is not None:
            total, count = dp_run.epoch(graphs, optimizer, epoch)
        losses.append(total / max(count, 1))
        seconds.append(time.perf_counter() - t0)
        log.info("%s epoch %d/%d: loss %.4f (%.1f s)", config.strategy, epoch + 1, config.epochs, losses[-1], seconds[-1])
        buf = io.BytesIO()
        torch.save(
            {"format": "molleak.resume/1", "config": cfg_dict, "recipe_version": strategy.recipe_version,
             "train_sha256": train_sha, "epoch": epoch + 1,
             "model": strategy.state_dict(), "optimizer": optimizer.state_dict(), "losses": losses,
             "seconds": seconds},
            buf,
        )
        write_atomic(rpath, buf.getvalue())

    strategy.eval()
    # A victim whose embedding is one point for every molecule (dead ReLUs after an unstable
    # step; seen once for EdgePred) must not pass silently into an audit or a probe.
    spread = encoder_spread(strategy.encoder, spread_sample)
    # NaN spread with two or more molecules means NaN/inf embeddings: as broken as a collapse
    non_finite = len(spread_sample) >= 2 and not math.isfinite(spread)
    collapsed = bool(spread < COLLAPSE_SPREAD) or non_finite
    if non_finite:
        log.warning("%s: the trained encoder returns NaN/inf embeddings for its training molecules (weights "
                    "or activations overflowed); this victim is broken (try a lower --lr)", config.strategy)
    elif collapsed:
        log.warning("%s: the trained encoder's embeddings have collapsed (spread %.2g across %d training "
                    "molecules): every molecule embeds to nearly the same point; this victim is degenerate",
                    config.strategy, spread, len(spread_sample))
    provenance = {
        "strategy": config.strategy,
        "config": cfg_dict,
        "recipe_version": strategy.recipe_version,
        "train_file": train_name,
        "train_sha256": train_sha,
        "n_train": len(smiles),
        "epochs": config.epochs,
        "seed": config.seed,
        "loss_per_epoch": losses,
        "seconds_per_epoch": seconds,
        "embedding_spread": spread,
        "collapsed": collapsed,
        "versions": package_versions(),
        **({"dp": dp_run.provenance()} if dp_run is not None else {}),
        **(extra_provenance or {}),
    }
    save_checkpoint(out, strategy.encoder, provenance, strategy.extra_state())
    rpath.unlink(missing_ok=True)
    return provenance
