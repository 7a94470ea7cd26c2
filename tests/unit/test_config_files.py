"""`molleak.config.load_toml` (the one TOML loader) and `molleak.cli.common`'s --config plumbing."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from molleak.config import AuditConfig, PretrainFileConfig, load_config, load_toml, optional_fields
from molleak.errors import InputFileError


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(1, ge=1)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "x"
    inner: Inner = Inner()


def test_load_toml_returns_the_model(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('name = "y"\n[inner]\nn = 3\n')
    assert load_toml(path, Outer) == Outer(name="y", inner=Inner(n=3))


def test_a_json_file_is_read_as_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"inner": {"n": 2}}')
    assert load_toml(path, Outer).inner.n == 2
    path.write_text("{nope")
    with pytest.raises(InputFileError, match=r"c.json is not valid JSON"):
        load_toml(path, Outer)


@pytest.mark.parametrize(("text", "match"), [
    ("[inner]\nn = 0\nm = 1\n", r"^cfg .*c.toml: inner.n: Input should be greater than or equal to 1 \(2 problems\)$"),
    ("[inner]\nm = 1\n", r"^cfg .*c.toml: inner.m: unknown key \(1 problem\)$"),
    ("other = 1\n", r"^cfg .*c.toml: other: unknown key \(known: name, inner\) \(1 problem\)$"),
    ("name = \n", r"^cfg .*c.toml is not valid TOML: "),
])
def test_load_toml_errors_are_one_line_with_the_location(tmp_path, text, match):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InputFileError, match=match) as exc:
        load_toml(path, Outer, "cfg")
    assert "\n" not in str(exc.value)


def test_the_audit_config_goes_through_the_same_loader(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[victim]\nepochs = 2\n")
    assert load_config(path).victim.epochs == 2
    assert isinstance(load_config(), AuditConfig)  # the shipped demo
    with pytest.raises(InputFileError, match=r"no such file"):
        load_config(tmp_path / "missing.toml")


def test_file_models_are_strict_and_reject_unknown_keys():
    assert PretrainFileConfig.model_validate({"lr": 1}).lr == 1.0  # a TOML integer is a fine float
    for bad in ({"epochs": "3"}, {"epochs": 2.5}, {"epochs": True}, {"emb": 3}):
        with pytest.raises(ValueError):
            PretrainFileConfig.model_validate(bad)


def test_optional_fields_keeps_constraints_and_drops_excluded_fields():
    class Req(BaseModel):
        model_config = ConfigDict(extra="forbid")
        out: str
        k: int = Field(200, ge=1)
        force: bool = False

    File = optional_fields(Req, exclude=("force",))
    assert File().model_dump() == {"out": None, "k": 200}
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        File(k=0)
    with pytest.raises(ValueError, match="Extra inputs"):
        File(force=True)


def test_explicit_options_sees_only_what_the_command_line_gave():
    import argparse

    from molleak.cli.common import explicit_options

    p = argparse.ArgumentParser()
    p.add_argument("--a", type=int, default=3)
    p.add_argument("--b-c", default="x")
    p.add_argument("--flag", action="store_true")
    p.add_argument("--many", action="append")
    p.set_defaults(func=print)
    assert explicit_options(p, ["--a", "3", "--many", "1"]) == {"a", "many"}
    assert explicit_options(p, ["--flag", "--b-c", "x"]) == {"flag", "b_c"}
    assert explicit_options(p, []) == set()
    assert p.parse_args([]).a == 3 and p.parse_args([]).func is print  # the defaults are back
