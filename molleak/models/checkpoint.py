"""Checkpoints that carry their own encoder config and provenance.

Format (a plain dict, loadable with `torch.load(weights_only=True)`):

    {"format": "molleak.victim/1",
     "encoder": {"name": "gin", "config": {...}},
     "state_dict": {...},               # the encoder's weights
     "extra_state": {...},              # optional: heads a victim needs beyond the encoder
     "provenance": {"strategy": ..., "train_sha256": ..., "epochs": ..., "seed": ..., "versions": {...}}}

A raw pretrain-gnns state_dict (keys `x_embedding1.weight`, `gnns.0.mlp.0.weight`, ...; a `gnn.`
prefix is stripped) loads too: its depth and width are read from the tensor shapes, its architecture
from its keys (`gnns.0.mlp.0.weight`: GIN; `gnns.0.weight_linear.weight` + `gnns.0.att`: GAT;
`gnns.0.linear.weight`: GCN or GraphSAGE). GCN and GraphSAGE have the same keys; a trained one is
told apart by its BatchNorm statistics (`pretrain_gnns_config`), never by its file name, and
otherwise `arch` (`molleak import-victim --arch`) must say which.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from molleak.errors import CheckpointError
from molleak.models.base import GraphEncoder, build_encoder, load_encoders
from molleak.runs import write_atomic

FORMAT = "molleak.victim/1"

#: Most parameters an encoder config (a checkpoint's, or a pre-training run's) may ask for. 2e9
#: float32 parameters are 8 GB, about 1,000x the standard 5 x 300 GIN (1.9M); a config past this is
#: corrupt or hostile (emb_dim 10**9 x 10**6 layers would ask for ~32 TB), so it is refused before
#: anything is allocated.
MAX_ENCODER_PARAMETERS = 2_000_000_000
#: Most layers (or message-passing hops, or heads) a config may ask for: pretrain-gnns uses 5 layers,
#: GROVER a few; each is a Python module and a step of every forward pass, so 10**6 of them would
#: stall construction and every query even at a tiny width.
MAX_ENCODER_DEPTH = 1_000

#: per encoder: the integer config fields, their defaults (as in the constructors) and whether each
#: is a depth-like count (bounded by MAX_ENCODER_DEPTH)
_INT_FIELDS: dict[str, dict[str, tuple[int, bool]]] = {
    "gin": {"num_layers": (5, True), "emb_dim": (300, False)},
    "grover": {"hidden": (100, False), "heads": (2, True), "depth": (2, True), "num_layers": (1, True)},
    "gcn": {"num_layers": (5, True), "emb_dim": (300, False)},
    "graphsage": {"num_layers": (5, True), "emb_dim": (300, False)},
    "gat": {"num_layers": (5, True), "emb_dim": (300, False), "heads": (2, True)},
}


def encoder_parameter_count(name: str, config: dict[str, Any]) -> int | None:
    """Parameters an encoder config implies, in closed form, without building it (None: unknown encoder).

    Exact for the registered encoders (tests check it against built ones). Python ints, so a
    hostile config cannot overflow the estimate.
    """
    fields = _INT_FIELDS.get(name)
    if fields is None:
        return None
    v = {k: config.get(k, default) for k, (default, _) in fields.items()}
    if name in ("gin", "gcn", "graphsage", "gat"):
        from molleak.data.featurize import NUM_ATOM_TYPE, NUM_BOND_DIRECTION, NUM_BOND_TYPE, NUM_CHIRALITY_TAG

        e, n, bonds = v["emb_dim"], v["num_layers"], NUM_BOND_TYPE + NUM_BOND_DIRECTION
        if name == "gin":  # MLP e -> 2e -> e with biases, bond type/direction embeddings
            conv = (2 * e * e + 2 * e) + (2 * e * e + e) + bonds * e
        elif name == "gat":  # linear e -> heads*e, attention [1, heads, 2e], bias, bond embeddings of heads*e
            h = v["heads"]
            conv = (h * e * e + h * e) + 2 * h * e + e + bonds * h * e
        else:  # linear e -> e, bond embeddings
            conv = (e * e + e) + bonds * e
        return (NUM_ATOM_TYPE + NUM_CHIRALITY_TAG) * e + n * (conv + 2 * e)  # + BatchNorm weight and bias
    from molleak.models.grover import ATOM_FDIM, BOND_FDIM

    h, heads, n = v["hidden"], v["heads"], v["num_layers"]
    # per block: 3 * heads dyMPNs (h x h), output projection, two LayerNorms, FFN h -> 2h -> h
    block = 3 * heads * h * h + (heads * h * h + h) + 4 * h + (2 * h * h + 2 * h) + (2 * h * h + h)
    inputs = (ATOM_FDIM + 1) * h + (ATOM_FDIM + BOND_FDIM + 1) * h
    return inputs + 2 * n * block + (2 * h * h + h) + (h * h + h) + 2 * h


def check_encoder_config(name: str, config: dict[str, Any], source: str) -> None:
    """Refuse, before anything is allocated, an encoder config that is malformed or absurdly large.

    Raises:
        CheckpointError: a size field is not a positive integer, a depth-like field is over
            MAX_ENCODER_DEPTH, or the config implies over MAX_ENCODER_PARAMETERS parameters.
    """
    fields = _INT_FIELDS.get(name) if isinstance(name, str) else None
    if fields is None or not isinstance(config, dict):
        return  # an unknown encoder: build_encoder gives the error
    for key, (default, depth_like) in fields.items():
        value = config.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(f"{source}: {name} config {key} must be a positive integer, got {value!r}")
        if depth_like and value > MAX_ENCODER_DEPTH:
            raise CheckpointError(f"{source}: {name} config asks for {key}={value}, over the bound of "
                                  f"{MAX_ENCODER_DEPTH}; refusing to build it")
    count = encoder_parameter_count(name, config)
    if count is not None and count > MAX_ENCODER_PARAMETERS:
        size = _human_bytes(4 * count)
        raise CheckpointError(f"{source}: {name} config {config} implies {count:.3g} parameters ({size} of "
                              f"float32), over the bound of {MAX_ENCODER_PARAMETERS:.0e}; refusing to build it")


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1000 or unit == "EB":
            return f"{n:.0f} {unit}"
        n /= 1000
    return f"{n:.0f} EB"  # pragma: no cover


def non_finite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors of a state_dict holding NaN or inf."""
    return [k for k, v in state_dict.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def save_checkpoint(
    path: str | os.PathLike,
    encoder: GraphEncoder,
    provenance: dict[str, Any],
    extra_state: dict[str, Any] | None = None,
) -> None:
    """Atomically save an encoder with its config and provenance."""
    import io

    name = encoder_name(encoder)
    payload = {
        "format": FORMAT,
        "encoder": {"name": name, "config": encoder.config()},
        "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
        "provenance": provenance,
    }
    if extra_state:
        payload["extra_state"] = extra_state
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())


def _encoder_classes() -> dict[str, type]:
    registry = load_encoders()
    return {n: registry.get(n) for n in registry.names()}


def encoder_name(encoder: GraphEncoder) -> str:
    """The name an encoder's class is registered under in `ENCODERS` (`build_encoder(name, encoder.config())`
    rebuilds the architecture)."""
    name = next((n for n, cls in _encoder_classes().items() if type(encoder) is cls), None)
    if name is None:
        raise CheckpointError(f"encoder class {type(encoder).__name__} is not registered")
    return name


def read_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file safely (weights only), with one clear error on failure."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {p} is a directory, not a file")
    if not p.is_file() or p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty or not a file: {p}")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {p} cannot be read ({exc.strerror or exc})") from None
    # torch.save writes a zip archive (PK..); files from torch < 1.6 are a bare pickle (0x80 = PROTO)
    if not (magic.startswith(b"PK") or magic.startswith(b"\x80")):
        raise CheckpointError(f"checkpoint {p} is not a torch file (it does not start like one)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        text = str(exc).strip()
        if "Weights only load failed" in text:
            reason = "it holds Python objects other than tensors, which are never unpickled"
        else:
            reason = text.splitlines()[0].split(". ")[0][:160] if text else type(exc).__name__
        raise CheckpointError(f"checkpoint {p} is corrupt, truncated or not a torch weights file ({reason})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {p} holds a {type(obj).__name__}, not a dict of weights")
    return obj


#: the architectures a raw pretrain-gnns state_dict may hold (`chem/model.py`, `gnn_type`)
PRETRAIN_GNNS_ARCHS = ("gin", "gcn", "graphsage", "gat")
#: a layer's first weight names its family; GCN and GraphSAGE share "linear"
_PG_LAYER = re.compile(r"^gnns\.(\d+)\.(mlp\.0|weight_linear|linear)\.weight$")
_PG_FAMILY = {"mlp.0": "gin", "weight_linear": "gat", "linear": "gcn/graphsage"}


def _gcn_or_graphsage(state_dict: dict[str, Any], num_layers: int) -> str | None:
    """"graphsage", "gcn", or None (undecided), from the BatchNorm statistics of a trained model.

    A GraphSAGE layer L2-normalises its output, and `batch_norms.L` follows it, so its running
    statistics estimate the moments of unit vectors: sum(running_var + running_mean^2) = E|h|^2 = 1
    (1.000 in all 15 layers of the three published GraphSAGE files; 215 to 3.5e6 in the GCN and GAT
    ones). Untrained statistics (mean 0, variance 1, or no batch tracked) decide nothing.
    """
    totals = []
    for layer in range(num_layers):
        mean, var = (state_dict.get(f"batch_norms.{layer}.running_{k}") for k in ("mean", "var"))
        tracked = state_dict.get(f"batch_norms.{layer}.num_batches_tracked")
        if not (isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)) or mean.shape != var.shape:
            return None
        untracked = isinstance(tracked, torch.Tensor) and tracked.numel() == 1 and int(tracked) == 0
        if untracked or (not mean.any() and bool((var == 1).all())):
            return None
        totals.append(float((var.double() + mean.double() ** 2).sum()))
    if all(abs(t - 1) <= 0.1 for t in totals):
        return "graphsage"
    if all(abs(t - 1) > 0.5 for t in totals):
        return "gcn"
    return None


def pretrain_gnns_config(state_dict: dict[str, Any], arch: str | None = None) -> tuple[str, dict[str, Any], str]:
    """The architecture, config and how the architecture was known, of a raw pretrain-gnns state_dict.

    Args:
        state_dict: the weights (`gnn.` prefix already stripped).
        arch: the architecture the user says it is (one of PRETRAIN_GNNS_ARCHS), checked against the
            keys and, for GCN / GraphSAGE, against the BatchNorm statistics when they decide.

    Returns:
        (encoder name, {"num_layers", "emb_dim"[, "heads"]}, "keys" | "batchnorm statistics" | "arch").

    Raises:
        CheckpointError: not a pretrain-gnns state_dict, mixed layer types, `arch` contradicts the
            weights, or a GCN / GraphSAGE that neither its statistics nor `arch` identifies.
    """
    if arch is not None and arch not in PRETRAIN_GNNS_ARCHS:
        raise CheckpointError(f"unknown architecture {arch!r}; choose from {', '.join(PRETRAIN_GNNS_ARCHS)}")
    layers: dict[str, list[int]] = {}
    for k in state_dict:
        if isinstance(k, str) and (m := _PG_LAYER.match(k)):
            layers.setdefault(_PG_FAMILY[m.group(2)], []).append(int(m.group(1)))
    emb = state_dict.get("x_embedding1.weight")
    if emb is None or not layers:
        raise CheckpointError("not a pretrain-gnns state_dict (no x_embedding1.weight / "
                              "gnns.0.{mlp.0,linear,weight_linear}.weight)")
    if len(layers) > 1:
        raise CheckpointError(f"mixes pretrain-gnns layer types ({', '.join(sorted(layers))})")
    if not isinstance(emb, torch.Tensor) or emb.ndim != 2:
        raise CheckpointError("not a pretrain-gnns state_dict (x_embedding1.weight is not a 2-d tensor)")
    (family, idx), = layers.items()
    if arch is not None and arch not in family.split("/"):
        raise CheckpointError(f"is not a {arch}: its keys are a {family}'s")
    config: dict[str, Any] = {"num_layers": max(idx) + 1, "emb_dim": int(emb.shape[1])}
    name, known = family, "keys"
    if family == "gat":
        att = state_dict.get("gnns.0.att")
        if not isinstance(att, torch.Tensor) or att.ndim != 3:
            raise CheckpointError("a pretrain-gnns GAT state_dict without a 3-d gnns.0.att")
        config["heads"] = int(att.shape[1])
    elif family == "gcn/graphsage":
        seen = _gcn_or_graphsage(state_dict, config["num_layers"])
        if seen is not None and arch is not None and arch != seen:
            raise CheckpointError(f"is not a {arch}: its BatchNorm statistics are a {seen}'s (the mean square norm "
                                  "of every layer's output is 1 in a GraphSAGE, whose layers L2-normalise, and only there)")
        if seen is None and arch is None:
            raise CheckpointError("is a GCN or a GraphSAGE (gnns.*.linear), which its keys cannot tell apart and its "
                                  "BatchNorm statistics do not decide (untrained?); say which with --arch gcn or "
                                  "--arch graphsage (molleak import-victim)")
        name, known = (seen, "batchnorm statistics") if seen is not None else (arch, "arch")
    return name, config, known


def _strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    if sd and all(isinstance(k, str) and k.startswith("gnn.") for k in sd):
        return {k[4:]: v for k, v in sd.items()}
    return sd


def load_state_strict(encoder: GraphEncoder, state_dict: dict[str, Any], source: str) -> None:
    """`load_state_dict(strict=True)` with a one-line error naming the first mismatch."""
    own = encoder.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {source} does not fit the encoder: {len(missing)} missing keys "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:2]})"
        )
    for k, v in own.items():
        got = state_dict[k]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(v.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckpointError(
                f"checkpoint {source} does not fit the encoder: {k} has shape {shape}, expected {tuple(v.shape)}"
            )
    encoder.load_state_dict(state_dict, strict=True)


def load_encoder(path: str | os.PathLike, expect: dict[str, Any] | None = None,
                 arch: str | None = None) -> tuple[GraphEncoder, dict[str, Any]]:
    """Load an encoder from a molleak checkpoint or a raw pretrain-gnns state_dict.

    Args:
        path: the checkpoint file.
        expect: optional encoder config the checkpoint must match (e.g. `{"emb_dim": 300}`).
        arch: optional encoder name the checkpoint must hold; for a raw GCN / GraphSAGE state_dict
            whose BatchNorm statistics do not decide, it says which (`pretrain_gnns_config`).

    Returns:
        The encoder in eval mode and the checkpoint's provenance (for raw state_dicts, a note).
    """
    obj = read_checkpoint_file(path)
    if obj.get("format") == FORMAT:
        try:
            name, config = obj["encoder"]["name"], dict(obj["encoder"]["config"])
            state_dict, provenance = obj["state_dict"], dict(obj.get("provenance", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} is missing field {exc}") from None
    elif "format" in obj:
        raise CheckpointError(f"checkpoint {path} has unknown format {obj['format']!r}; expected {FORMAT!r}")
    else:
        state_dict = _strip_prefix(obj)
        try:
            name, config, known = pretrain_gnns_config(state_dict, arch)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {path} {exc}" if str(exc).startswith("is ")
                                  else f"checkpoint {path}: {exc}") from None
        provenance = {"strategy": "imported", "source": "pretrain-gnns state_dict", "file": str(path),
                      "architecture": name, "architecture_from": known}
    if arch is not None and name != arch:
        raise CheckpointError(f"checkpoint {path} holds a {name} encoder, not a {arch}")
    if expect:
        for key, want in expect.items():
            if config.get(key) != want:
                raise CheckpointError(f"checkpoint {path} has {key}={config.get(key)}, expected {want}")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"checkpoint {path}: state_dict is a {type(state_dict).__name__}, not a dict of tensors")
    check_encoder_config(name, config, f"checkpoint {path}")
    try:
        encoder = build_encoder(name, config)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid {name} config {config}: {exc}") from None
    load_state_strict(encoder, state_dict, str(path))
    # Refused rather than warned about: a victim with NaN/inf weights answers every query with
    # NaN (or overflows), which no score, attack or probe can use.
    if bad := non_finite_tensors(encoder.state_dict()):
        raise CheckpointError(f"checkpoint {path} has NaN/inf weights in {len(bad)} tensors (e.g. {bad[0]}): "
                              "the model is broken (training diverged?)")
    encoder.eval()
    return encoder, provenance
