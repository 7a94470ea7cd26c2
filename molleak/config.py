"""TOML configs, validated by pydantic (unknown keys are rejected), and the one loader for them.

An audit config says which data tier to build, which victim recipe to pre-train, and how to
attack it. `molleak audit --config FILE` runs one; `molleak demo` runs the shipped
`molleak/configs/demo.toml`. Every field has a default, so a config need only say what differs.

The other verbs (`extract`, `pretrain`, `zoo`, `bench`) take `--config FILE` too: a TOML file whose
keys are the verb's long option names with `_` (`PretrainFileConfig`, `ZooFileConfig`,
`BenchFileConfig`; extract's is `molleak.attack.run.ExtractConfig` less `force` and `role`).
Flags given on the command line win over the file (`molleak.cli.common.apply_config`).

Where the cells of a verb's plans run is settable the same way: `backend` and `address` keys in a
`zoo` or `bench` file (`_BackendFile`), and an audit config's `[backend]` section (`BackendConfig`,
read by `load_audit_file`, kept out of the audit's inputs).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from molleak.errors import InputFileError

M = TypeVar("M", bound=BaseModel)


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


class MembershipConfig(_Strict):
    """The shadow-model membership attack of an audit (`molleak.plans.shadows`); off when shadows = 0."""

    shadows: int = Field(0, ge=0, multiple_of=2, description="shadow models (even; 0 = no shadow attack)")
    targets: int = Field(200, ge=10, description="members and as many non-members tested")
    statistics: list[Literal["loss", "norm", "invariance"]] = ["loss", "norm", "invariance"]
    power_ladder: str | None = Field(None, description="a `molleak power` results file: the verdict quotes its "
                                                       "detection rates for the victim's strategy")


class AuditConfig(_Strict):
    data: DataConfig = DataConfig()
    victim: VictimConfig = VictimConfig()
    attack: AttackConfig = AttackConfig()
    membership: MembershipConfig = MembershipConfig()


# ---------------------------------------------------------------------------------------------
# where a verb's plans run: `backend`, `address`, `workers` (the `--backend`/`--address` flags win)

Backend = Literal["local", "ray"]


class BackendConfig(_Strict):
    """The `[backend]` section of an audit config (`molleak audit --config`, `molleak demo`).

    It decides where the cells run, never what they compute, so it is kept out of the audit's
    inputs (`load_audit_file` returns it beside the `AuditConfig`): the same audit resumes on
    either backend.
    """

    kind: Backend = "local"
    address: str | None = Field(None, min_length=1, description="kind = ray: the cluster head (HOST:PORT or auto)")
    workers: int | None = Field(None, ge=1, description="local: cells at once; ray without address: local CPUs")


class AuditFileConfig(AuditConfig):
    """An audit config file: the audit itself plus where it runs."""

    backend: BackendConfig = BackendConfig()


# ---------------------------------------------------------------------------------------------
# the verbs' --config files: keys are long option names with `_`; a key left out keeps the flag's default


class _StrictFile(BaseModel):
    """TOML gives typed values, so they are checked strictly: `epochs = "3"` or `epochs = 2.5` is an error."""

    model_config = ConfigDict(extra="forbid", strict=True)


_Seed = Field(None, ge=0, lt=2**32)


class PretrainFileConfig(_StrictFile):
    """`molleak pretrain --config FILE`."""

    strategy: str | None = None
    data: str | None = None
    smiles: str | None = None
    out: str | None = None
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    emb_dim: int = Field(300, ge=1)
    layers: int = Field(5, ge=1)
    seed: int | None = _Seed
    dp_epsilon: float | None = Field(None, gt=0, allow_inf_nan=False)
    dp_delta: float | None = Field(None, gt=0, lt=1)
    dp_max_grad_norm: float | None = Field(None, gt=0, allow_inf_nan=False)


class _BackendFile(_StrictFile):
    """`backend` and `address`: the keys of `molleak.cli.common.add_backend`'s flags in a verb's --config file."""

    backend: Backend | None = None
    address: str | None = Field(None, min_length=1)


class ZooFileConfig(_BackendFile):
    """`molleak zoo --config FILE` (None: the zoo's own default); `workers` with `backend = "ray"`: the CPUs
    of a local Ray instance."""

    data: str | None = None
    out: str | None = None
    strategies: list[str] | None = None
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)
    emb_dim: int = Field(300, ge=1)
    layers: int = Field(5, ge=1)
    grover_hidden: int | None = Field(None, ge=1)
    finetune_epochs: int | None = Field(None, ge=1)
    regression_base: str = "attrmask"
    seed: int = Field(0, ge=0, lt=2**32)
    threads: int | None = Field(None, ge=1)
    workers: int = Field(1, ge=1)


def _bench_file_config() -> type[BaseModel]:
    from molleak.plans.bench.suites import BenchConfig

    hints = get_type_hints(BenchConfig)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(BenchConfig):
        default = f.default if f.default is not dataclasses.MISSING else Field(default_factory=f.default_factory)
        fields[f.name] = (hints[f.name], default)
    return create_model(
        "BenchFileConfig", __base__=_BackendFile, __module__=__name__,
        suite=(str | None, None), out=(str | None, None), bootstrap=(int, Field(1000, ge=1)), **fields,
    )


#: `molleak bench --config FILE`: `suite`, `out`, `bootstrap` and every
#: `molleak.plans.bench.suites.BenchConfig` field (what `--set KEY=VALUE` sets)
BenchFileConfig = _bench_file_config()
BenchFileConfig.__doc__ = "`molleak bench --config FILE`: suite, out, bootstrap and the BenchConfig fields."


def optional_fields(model: type[BaseModel], exclude: tuple[str, ...] = (), name: str | None = None) -> type[BaseModel]:
    """`model` less `exclude`, with its required fields made optional (default None) and strict types: the
    shape of a --config file that may leave some options to the command line. Field constraints and
    extra="forbid" carry over."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        if key in exclude:
            continue
        if info.is_required():
            fields[key] = (info.annotation | None, FieldInfo.merge_field_infos(info, default=None))
        else:
            fields[key] = (info.annotation, info)
    return create_model(name or f"{model.__name__}File", __config__=ConfigDict(**{**model.model_config, "strict": True}),
                        __module__=model.__module__, **fields)


# ---------------------------------------------------------------------------------------------
# loading


def _problem_count(n: int) -> str:
    return f"{n} problem" + ("" if n == 1 else "s")


def load_toml(path: str | Path, model: type[M], what: str = "config") -> M:
    """Read a TOML file (JSON if it ends in `.json`) and validate it with `model`.

    Every failure is one `InputFileError` line that starts `{what} {path}`: the file is missing,
    a directory, unreadable, not UTF-8, not valid TOML, or does not fit `model` (the first problem,
    with its dotted location, and how many there are; unknown keys are problems when `model`
    forbids extra keys).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{what} {p}: no such file")
    if not p.is_file():
        raise InputFileError(f"{what} {p} is not a file" + (" (it is a directory)" if p.is_dir() else ""))
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(f"{what} {p} is not UTF-8 text (a binary file?)") from None
    except OSError as exc:
        raise InputFileError(f"{what} {p} cannot be read ({exc.strerror or exc})") from None
    return _validate(_parse(text, p.suffix.lower() == ".json", f"{what} {p}"), model, f"{what} {p}")


def _parse(text: str, is_json: bool, where: str) -> Any:
    if is_json:
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{where} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(f"{where} is not valid TOML: {exc}") from None


def _validate(raw: Any, model: type[M], where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
            if len(first["loc"]) == 1:
                msg += f" (known: {', '.join(model.model_fields)})"
        raise InputFileError(f"{where}: {loc + ': ' if loc else ''}{msg} ({_problem_count(exc.error_count())})") \
            from None


def load_config(path: str | Path | None = None) -> AuditConfig:
    """Read and validate an audit config; None gives the shipped demo config."""
    if path is None:
        text = resources.files("molleak.configs").joinpath("demo.toml").read_text()
        where = "config molleak/configs/demo.toml"
        return _validate(_parse(text, False, where), AuditConfig, where)
    return load_toml(path, AuditConfig, "config")


def load_audit_file(path: str | Path | None = None) -> tuple[AuditConfig, BackendConfig]:
    """An audit config file's audit (as `load_config` reads it) and its `[backend]` section."""
    if path is None:
        return load_config(None), BackendConfig()
    loaded = load_toml(path, AuditFileConfig, "config")
    return AuditConfig.model_validate(loaded.model_dump(exclude={"backend"})), loaded.backend
