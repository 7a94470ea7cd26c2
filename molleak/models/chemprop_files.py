"""Model files written by chemprop itself, turned into molleak victim checkpoints.

chemprop v2 writes two kinds of model file: `models.save_model` / `chemprop train`'s
`model_*/best.pt` (`{"hyper_parameters", "state_dict", "output_columns"}`) and Lightning's
`checkpoints/*.ckpt` (the same two keys plus the trainer's state). Both are read here with
`torch.load(weights_only=True)` only; nothing in them is ever unpickled as Python code.

chemprop stores its hyper-parameters as Python objects (Lightning's `AttributeDict`, chemprop's
classes, e.g. `{"cls": BondMessagePassing, "depth": 3, ...}`), which the weights-only loader refuses.
So the file's pickle is first scanned statically (`torch.serialization.get_unsafe_globals_in_checkpoint`,
which executes nothing) for the globals it names, and each is allowlisted for that one load as an
**inert stand-in** of molleak's (`_Opaque`, `_AttrDict`), never as the named class: a class reference
loads as a stand-in that carries its dotted name, a constructed object as a stand-in that holds its
arguments and state, an `AttributeDict` as a plain dict. No code named by the file runs (globals of
`os`, `sys`, ... are refused by torch before any allowlist is consulted), so a hostile file can at
worst fail to load. The plain values read back (depth, widths, aggregation, activation, batch norm)
rebuild the encoder, and `load_state_strict` checks every tensor against it.

A file that holds only a state_dict (`{"state_dict": ...}` or the bare dict of tensors) carries no
depth or aggregation, which the weights do not determine: the caller must give them (`depth=`,
`aggregation=`); everything else (widths, bias, batch norm, atom-feature mode) is read from the
tensor shapes and names.

The encoder is the fingerprint part of the model (`message_passing.*`, `agg.*`, `bn.*`); the
prediction head (`predictor.*`) is carried in the victim checkpoint's `extra_state`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from molleak.errors import CheckpointError
from molleak.models.checkpoint import FORMAT, load_state_strict, non_finite_tensors, read_checkpoint_file
from molleak.models.chemprop_mpnn import AGGREGATIONS, ATOM_FEATURES, ChempropEncoder

ENCODER_PREFIXES = ("message_passing.", "agg.", "bn.")
#: what may be given when the file does not say (a state_dict-only file), or to disambiguate
OVERRIDABLE = ("depth", "aggregation", "norm", "activation", "undirected", "atom_features")


class _Opaque:
    """An inert stand-in for a global a chemprop file names: records arguments and state, runs nothing."""

    dotted_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _AttrDict:
    """Lightning's AttributeDict (a dict subclass) loads as a plain dict."""

    def __new__(cls, *args: Any, **kwargs: Any):
        return {}


def _stand_ins(names: list[str]) -> list[tuple[Any, str]]:
    out: list[tuple[Any, str]] = []
    for name in names:
        if name.rsplit(".", 1)[-1] == "AttributeDict":
            out.append((_AttrDict, name))
        else:
            out.append((type(name.rsplit(".", 1)[-1], (_Opaque,), {"dotted_name": name}), name))
    return out


def read_chemprop_file(path: str | os.PathLike) -> dict[str, Any]:
    """A chemprop model file as plain data: tensors, dicts, numbers; its named globals as inert stand-ins.

    Raises:
        CheckpointError: missing, empty, not a torch file, corrupt, or holding globals torch refuses.
    """
    p = Path(path)
    names: list[str] = []
    if p.is_file() and p.stat().st_size > 0:
        with open(p, "rb") as fh:
            zipped = fh.read(2) == b"PK"
        if zipped:
            try:
                names = torch.serialization.get_unsafe_globals_in_checkpoint(str(p))
            except Exception:  # a corrupt zip or pickle: read_checkpoint_file names the problem below
                names = []
    with torch.serialization.safe_globals(_stand_ins(names)):
        return read_checkpoint_file(p)  # existence, emptiness, magic bytes and weights-only load, one error each


def _dotted(obj: Any) -> str:
    """The dotted name of a stand-in class or instance (or a real class), else ''."""
    cls = obj if isinstance(obj, type) else type(obj)
    if issubclass(cls, _Opaque):
        return cls.dotted_name
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(obj, type) else ""


def _activation(value: Any) -> str:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, _Opaque) and getattr(value, "args", None):  # chemprop's Activation enum, by value
        return str(value.args[0]).lower()
    name = _dotted(value).rsplit(".", 1)[-1].lower()  # a torch activation module
    return name if name else repr(value)


def _is_identity(obj: Any) -> bool:
    """Whether a stored transform does nothing: None, an `Identity`, or a `GraphTransform` of identities
    (`chemprop train` always stores one; it scales extra atom/bond features when there are any)."""
    if obj is None:
        return True
    name = _dotted(obj).rsplit(".", 1)[-1]
    if name == "Identity":
        return True
    if name == "GraphTransform":
        state = getattr(obj, "state", None)
        modules = state.get("_modules") if isinstance(state, dict) else None
        return isinstance(modules, dict) and all(_is_identity(m) for m in modules.values())
    return False


def _architecture(hp: dict[str, Any], source: str) -> tuple[dict[str, Any], tuple[Any, Any]]:
    """The encoder config from chemprop's hyper-parameters, refusing what the encoder cannot represent."""
    mp, agg = hp.get("message_passing"), hp.get("agg")
    if not isinstance(mp, dict) or not isinstance(agg, dict):
        raise CheckpointError(f"{source}: its hyper-parameters have no message_passing/agg tables; is it a "
                              "chemprop v2 MPNN file?")
    kind = _dotted(mp.get("cls")).rsplit(".", 1)[-1]
    if kind != "BondMessagePassing":
        raise CheckpointError(f"{source}: its message passing is {kind or 'unknown'}; molleak imports single-molecule "
                              "chemprop MPNNs with BondMessagePassing (chemprop's default) only")
    if mp.get("d_vd") or not _is_identity(mp.get("V_d_transform")) or not _is_identity(mp.get("graph_transform")):
        raise CheckpointError(f"{source}: the model takes extra atom or bond descriptors, which a victim queried "
                              "with SMILES alone cannot be given")
    if not _is_identity(hp.get("X_d_transform")) or (hp.get("predictor") or {}).get("input_dim", mp.get("d_h")) != mp.get("d_h"):
        raise CheckpointError(f"{source}: the model concatenates extra molecule descriptors to its fingerprint, "
                              "which a victim queried with SMILES alone cannot be given")
    agg_kind = _dotted(agg.get("cls")).rsplit(".", 1)[-1]
    aggregation = next((k for k, v in AGGREGATIONS.items() if v == agg_kind), None)
    if aggregation is None:
        raise CheckpointError(f"{source}: unknown chemprop aggregation {agg_kind or agg.get('cls')!r}")
    config = {"d_h": mp.get("d_h"), "depth": mp.get("depth"), "bias": mp.get("bias"),
              "undirected": mp.get("undirected"), "activation": _activation(mp.get("activation")),
              "aggregation": aggregation, "batch_norm": bool(hp.get("batch_norm", False)),
              "dropout": mp.get("dropout", 0.0)}
    if aggregation == "norm":
        config["norm"] = agg.get("norm", 100.0)
    return config, (mp.get("d_v"), mp.get("d_e"))


def _from_weights(sd: dict[str, Any], source: str) -> tuple[dict[str, Any], tuple[int, int]]:
    """What the tensors say: widths, bias, batch norm, attentive aggregation."""
    w_i, w_o = sd.get("message_passing.W_i.weight"), sd.get("message_passing.W_o.weight")
    if not (isinstance(w_i, torch.Tensor) and isinstance(w_o, torch.Tensor) and w_i.ndim == w_o.ndim == 2):
        raise CheckpointError(f"{source}: not a chemprop MPNN state_dict (no message_passing.W_i/W_o weights)")
    d_h = int(w_i.shape[0])
    d_v = int(w_o.shape[1]) - d_h
    config = {"d_h": d_h, "bias": "message_passing.W_i.bias" in sd, "batch_norm": "bn.weight" in sd}
    if "message_passing.tau.weight" in sd:
        config["activation"] = "prelu"
    if "agg.W.weight" in sd:
        config["aggregation"] = "attentive"
    return config, (d_v, int(w_i.shape[1]) - d_v)


def _atom_features(dims: tuple[Any, Any], given: str | None, source: str) -> str:
    modes = [m for m, (_, d_v, d_e) in ATOM_FEATURES.items() if (d_v, d_e) == tuple(dims)]
    if given is not None:
        if given not in ATOM_FEATURES:
            raise CheckpointError(f"unknown atom-feature mode {given!r}; choose from {', '.join(ATOM_FEATURES)}")
        if given not in modes:
            _, d_v, d_e = ATOM_FEATURES[given]
            raise CheckpointError(f"{source}: the model takes {dims[0]} atom / {dims[1]} bond features, chemprop's "
                                  f"{given} mode gives {d_v} / {d_e}")
        return given
    if not modes:
        raise CheckpointError(f"{source}: the model takes {dims[0]} atom / {dims[1]} bond features, which match none "
                              f"of chemprop's atom-feature modes ({', '.join(ATOM_FEATURES)}); extra atom features?")
    return modes[0]  # the modes' widths are all different


def chemprop_encoder(path: str | os.PathLike, **given: Any) -> tuple[ChempropEncoder, dict[str, Any]]:
    """The encoder (fingerprint) of a chemprop model file, and what was read about the model.

    Args:
        path: a chemprop `.pt` (save_model) or Lightning `.ckpt` file, or a file holding its state_dict.
        given: `OVERRIDABLE` settings, needed when the file holds no hyper-parameters (depth,
            aggregation); when it does, a given value must agree with it.

    Raises:
        CheckpointError: one line naming the file and what is wrong with it.
    """
    source = f"chemprop model file {path}"
    unknown = sorted(set(given) - set(OVERRIDABLE))
    if unknown:
        raise CheckpointError(f"unknown chemprop setting(s) {', '.join(unknown)}; known: {', '.join(OVERRIDABLE)}")
    given = {k: v for k, v in given.items() if v is not None}
    obj = read_chemprop_file(path)
    if obj.get("format") == FORMAT:
        raise CheckpointError(f"{path} is already a molleak victim checkpoint; use it directly")
    sd = obj.get("state_dict", obj)
    if not isinstance(sd, dict) or not sd:
        raise CheckpointError(f"{source}: its state_dict is a {type(sd).__name__}, not a dict of tensors")
    weights_config, dims = _from_weights(sd, source)
    hp = obj.get("hyper_parameters")
    if isinstance(hp, dict):
        config, hp_dims = _architecture(hp, source)
        if tuple(hp_dims) != tuple(dims):
            raise CheckpointError(f"{source}: its hyper-parameters say {hp_dims[0]} atom / {hp_dims[1]} bond features, "
                                  f"its weights {dims[0]} / {dims[1]}")
        for key, value in given.items():
            if key != "atom_features" and config.get(key) != value:
                raise CheckpointError(f"{source} says {key} = {config.get(key)!r}; the given {value!r} disagrees")
        kind = "lightning checkpoint" if "pytorch-lightning_version" in obj else "save_model file"
    else:
        missing = [k for k in ("depth", "aggregation") if k not in given]
        if missing:
            raise CheckpointError(f"{source} holds weights only, without chemprop's hyper-parameters; give its "
                                  f"{' and '.join(missing)} (chemprop's defaults are depth 3, mean aggregation)")
        config = {**weights_config, **{k: v for k, v in given.items() if k != "atom_features"}}
        kind = "state_dict"
    config["atom_features"] = _atom_features(dims, given.get("atom_features"), source)
    try:
        encoder = ChempropEncoder(**config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: its chemprop settings {config} are invalid: {exc}") from None
    load_state_strict(encoder, {k: v for k, v in sd.items() if k.startswith(ENCODER_PREFIXES)}, str(path))
    if bad := non_finite_tensors(encoder.state_dict()):
        raise CheckpointError(f"{source} has NaN/inf weights in {len(bad)} tensors (e.g. {bad[0]})")
    encoder.eval()
    predictor = (hp or {}).get("predictor") if isinstance(hp, dict) else None
    info = {"file_kind": kind, "config": encoder.config(),
            "predictor": _dotted((predictor or {}).get("cls")).rsplit(".", 1)[-1] or None,
            "n_tasks": (predictor or {}).get("n_tasks"),
            "output_columns": obj.get("output_columns") if isinstance(obj.get("output_columns"), list) else None}
    head = {k: v.detach().cpu() for k, v in sd.items() if k.startswith("predictor.") and isinstance(v, torch.Tensor)}
    return encoder, {**info, "_head": head}


def import_chemprop(path: str | os.PathLike, out: str | os.PathLike, *, strategy: str = "imported",
                    training_set: str = "unknown", **given: Any) -> dict[str, Any]:
    """Save a chemprop model file's encoder as a molleak victim checkpoint at `out`; returns its provenance."""
    from molleak.models.checkpoint import save_checkpoint
    from molleak.runs import package_versions, sha256_file

    encoder, info = chemprop_encoder(path, **given)
    head = info.pop("_head")
    provenance = {
        "strategy": strategy,
        "source": f"chemprop {info['file_kind']}",
        "source_file": str(Path(path).resolve()),
        "source_sha256": sha256_file(path),
        "chemprop": info,
        "training_set": training_set,
        "embedding": "chemprop MPNN.fingerprint: aggregated BondMessagePassing output (the head's input)",
        "imported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": package_versions(),
    }
    save_checkpoint(out, encoder, provenance, {"chemprop_head": {"predictor": head}} if head else None)
    return provenance
