"""Checkpoints that carry their own encoder config and provenance.

Format (a plain dict, loadable with `torch.load(weights_only=True)`):

    {"format": "molleak.victim/1",
     "encoder": {"name": "gin", "config": {...}},
     "state_dict": {...},               # the encoder's weights
     "extra_state": {...},              # optional: heads a victim needs beyond the encoder
     "provenance": {"strategy": ..., "train_sha256": ..., "epochs": ..., "seed": ..., "versions": {...}}}

A raw pretrain-gnns state_dict (keys `x_embedding1.weight`, `gnns.0.mlp.0.weight`, ...; a `gnn.`
prefix is stripped) loads too: its depth and width are read from the tensor shapes.
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


def save_checkpoint(
    path: str | os.PathLike,
    encoder: GraphEncoder,
    provenance: dict[str, Any],
    extra_state: dict[str, Any] | None = None,
) -> None:
    """Atomically save an encoder with its config and provenance."""
    import io

    name = next((n for n, cls in _encoder_classes().items() if type(encoder) is cls), None)
    if name is None:
        raise CheckpointError(f"encoder class {type(encoder).__name__} is not registered")
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


def read_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file safely (weights only), with one clear error on failure."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if not p.is_file() or p.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty or not a file: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {p} is corrupt or not a torch weights file ({reason})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {p} holds a {type(obj).__name__}, not a dict of weights")
    return obj


_PG_LAYER = re.compile(r"^gnns\.(\d+)\.mlp\.0\.weight$")


def pretrain_gnns_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Infer GIN depth and width from a pretrain-gnns state_dict."""
    layers = [int(m.group(1)) for k in state_dict if (m := _PG_LAYER.match(k))]
    if "x_embedding1.weight" not in state_dict or not layers:
        raise CheckpointError("not a pretrain-gnns GIN state_dict (no x_embedding1.weight / gnns.*.mlp.0.weight)")
    return {"num_layers": max(layers) + 1, "emb_dim": int(state_dict["x_embedding1.weight"].shape[1])}


def _strip_prefix(sd: dict[str, Any]) -> dict[str, Any]:
    if sd and all(k.startswith("gnn.") for k in sd):
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


def load_encoder(path: str | os.PathLike, expect: dict[str, Any] | None = None) -> tuple[GraphEncoder, dict[str, Any]]:
    """Load an encoder from a molleak checkpoint or a raw pretrain-gnns state_dict.

    Args:
        path: the checkpoint file.
        expect: optional encoder config the checkpoint must match (e.g. `{"emb_dim": 300}`).

    Returns:
        The encoder in eval mode and the checkpoint's provenance (for raw state_dicts, a note).
    """
    obj = read_checkpoint_file(path)
    if obj.get("format") == FORMAT:
        try:
            name, config = obj["encoder"]["name"], dict(obj["encoder"]["config"])
            state_dict, provenance = obj["state_dict"], dict(obj.get("provenance", {}))
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} is missing field {exc}") from None
    elif "format" in obj:
        raise CheckpointError(f"checkpoint {path} has unknown format {obj['format']!r}; expected {FORMAT!r}")
    else:
        state_dict = _strip_prefix(obj)
        name, config = "gin", pretrain_gnns_config(state_dict)
        provenance = {"strategy": "imported", "source": "pretrain-gnns state_dict", "file": str(path)}
    if expect:
        for key, want in expect.items():
            if config.get(key) != want:
                raise CheckpointError(f"checkpoint {path} has {key}={config.get(key)}, expected {want}")
    try:
        encoder = build_encoder(name, config)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint {path} has an invalid {name} config {config}: {exc}") from None
    load_state_strict(encoder, state_dict, str(path))
    encoder.eval()
    return encoder, provenance
