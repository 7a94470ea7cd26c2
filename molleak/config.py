"""TOML configs for whole audits, validated by pydantic (unknown keys are rejected).

An audit config says which data tier to build, which victim recipe to pre-train, and how to
attack it. `molleak audit --config FILE` runs one; `molleak demo` runs the shipped
`molleak/configs/demo.toml`. Every field has a default, so a config need only say what differs.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from molleak.errors import InputFileError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    tier: Literal["tiny", "small", "standard", "full"] = "small"
    seed: int = Field(0, ge=0, lt=2**32)


class VictimConfig(_Strict):
    strategy: str = "attrmask"
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(256, ge=2)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    layers: int = Field(5, ge=1)
    emb_dim: int = Field(300, ge=1)
    seed: int = Field(0, ge=0, lt=2**32)
    reference: bool = True  # also pre-train the same recipe on reference.smi (the leakage control)


class AttackConfig(_Strict):
    n_templates: int = Field(84, ge=1)
    n_motifs: int = Field(91, ge=1)
    one_step_methods: list[str] = ["adapter", "eq1", "mlp", "prior_fp", "qed", "sa", "random"]
    two_step: bool = True
    two_step_templates: int = Field(3, ge=1, description="how many templates two-step extraction starts from")
    two_step_max_points: int = Field(
        1, ge=1, le=4, description="two-step uses the most frequent templates with at most this many points"
    )
    two_step_methods: list[str] = ["policy", "adapter-budget", "random-search"]
    budget: int = Field(4000, ge=1, description="victim queries per two-step method")
    k: int = Field(200, ge=1)
    seed: int = Field(0, ge=0, lt=2**32)


class AuditConfig(_Strict):
    data: DataConfig = DataConfig()
    victim: VictimConfig = VictimConfig()
    attack: AttackConfig = AttackConfig()


def load_config(path: str | Path | None = None) -> AuditConfig:
    """Read and validate an audit config; None gives the shipped demo config."""
    if path is None:
        text = resources.files("molleak.configs").joinpath("demo.toml").read_text()
        where = "molleak/configs/demo.toml"
    else:
        p = Path(path)
        if not p.exists():
            raise InputFileError(f"config file not found: {p}")
        if not p.is_file():
            raise InputFileError(f"config {p} is not a file")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise InputFileError(f"config {p} is not UTF-8 text (a binary file?)") from None
        except OSError as exc:
            raise InputFileError(f"config {p} cannot be read ({exc.strerror or exc})") from None
        where = str(p)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(f"config {where} is not valid TOML: {exc}") from None
    try:
        return AuditConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputFileError(f"config {where}: {loc}: {first['msg']} ({exc.error_count()} problem(s))") from None
