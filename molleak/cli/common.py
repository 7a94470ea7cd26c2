"""Argument helpers shared by the verbs."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from molleak.errors import InputFileError, MolleakError

#: seeds are fed to NumPy's legacy generator, which takes 0 .. 2**32 - 1
MAX_SEED = 2**32 - 1


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def seed_int(text: str) -> int:
    """A seed: an integer from 0 to MAX_SEED."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be a non-negative integer up to {MAX_SEED}, got {value}")
    return value


def finite_float(text: str) -> float:
    """A finite number (no nan / inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number above zero (e.g. a learning rate)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _parent_problem(p: Path) -> str | None:
    for parent in p.parents:  # nearest first: the first one that exists must be a directory
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is not a directory, so {p} cannot be written"
    return None


def output_file(text: str) -> str:
    """A file to write: refused at parse time if it is a directory or lies under a non-directory."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file to write")
    if problem := _parent_problem(p):
        raise argparse.ArgumentTypeError(problem)
    return text


def output_dir(text: str) -> str:
    """A directory to write into: refused at parse time if it is an existing file (or under one)."""
    p = Path(text)
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    if problem := _parent_problem(p):
        raise argparse.ArgumentTypeError(problem)
    return text


def add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=seed_int, default=None, help="random seed (drawn and recorded if omitted)")


def add_backend(parser: argparse.ArgumentParser) -> None:
    """`--backend local|ray` and `--address`: where the verb's plans run (read with `plan_executor`).

    Both default to None (= local) so that a `--config` file's `backend` / `address` keys, or an audit
    config's `[backend]` section, apply unless the command line gives the flag.
    """
    g = parser.add_argument_group("where the cells run")
    g.add_argument("--backend", choices=["local", "ray"], default=None,
                   help="local: this machine (default); ray: Ray tasks, on a local Ray instance or the cluster "
                        "at --address (needs pip install 'molleak[ray]' and a plan directory every node sees)")
    g.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --backend ray: a running Ray cluster's head (HOST:PORT, or auto); "
                        "default: start a local Ray instance on 127.0.0.1")


def plan_executor(args: argparse.Namespace, workers: int | None = None, config: Any = None):
    """The executor `add_backend`'s options ask for: None for `local` without workers (the verb's own
    local executor), else `molleak.plans.runner.make_executor`.

    Args:
        args: the parsed options; `--backend` / `--address` given there win over `config`.
        workers: local: cells at once; ray: CPUs of a local Ray instance (no address).
        config: a `molleak.config.BackendConfig` (an audit config's `[backend]`), or None; its
            `workers` apply when `workers` is None.
    """
    backend, address = getattr(args, "backend", None), getattr(args, "address", None)
    from_file = getattr(args, "_config_keys", set())
    if backend not in (None, "ray") and "address" in from_file and "backend" not in from_file:
        address = None  # `--backend local` on the command line replaces the file's backend and its address
    if config is not None:
        backend = backend or config.kind
        # a config's address belongs to its backend: `--backend local` on the command line drops it
        if address is None and backend == config.kind:
            address = config.address
        workers = workers if workers is not None else config.workers
    backend = backend or "local"
    if address is not None and backend != "ray":
        raise MolleakError("--address is for --backend ray")
    if backend == "local" and (config is None or workers is None):
        return None
    from molleak.plans.runner import make_executor

    return make_executor(backend, workers, address)


# ---------------------------------------------------------------------------------------------
# --config FILE: a verb's options from TOML; flags given on the command line win


class MolleakParser(argparse.ArgumentParser):
    """An ArgumentParser that keeps, on the namespace, the words a `--config` verb was parsed from
    (so `apply_config` can tell which options the command line gave)."""

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 (argparse's signature)
        words = list(sys.argv[1:] if args is None else args)
        ns, extras = super().parse_known_args(words, namespace)
        spec = getattr(ns, "_config_spec", None)
        if spec is not None and spec.parser is self:
            ns._config_argv = words
        return ns, extras


@dataclass(frozen=True)
class ConfigSpec:
    parser: argparse.ArgumentParser
    model: type[BaseModel]
    required: tuple[str | tuple[str, ...], ...]


def add_config(parser: argparse.ArgumentParser, model: type[BaseModel],
               required: Sequence[str | tuple[str, ...]] = ()) -> None:
    """Give `parser` a `--config FILE` option read with `model` (see `apply_config`).

    `required`: options (dests) that must end up set, from the command line or the file; a tuple
    means one of them. Declare them here instead of `required=True`, which argparse would check
    before the file is read.
    """
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file of this command's options (keys: the long option names with _, "
                             "e.g. batch_size = 64); options given on the command line override it")
    parser.set_defaults(_config_spec=ConfigSpec(parser, model, tuple(required)))


def explicit_options(parser: argparse.ArgumentParser, words: Sequence[str]) -> set[str]:
    """The dests that `words` set explicitly: `words` re-parsed with every default suppressed."""
    saved = [(action, action.default) for action in parser._actions]
    saved_defaults = dict(parser._defaults)
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        ns, _ = argparse.ArgumentParser.parse_known_args(parser, list(words))
    finally:
        for action, default in saved:
            action.default = default
        parser._defaults.update(saved_defaults)
    return set(vars(ns))


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return max(action.option_strings, key=len)
    return f"--{dest.replace('_', '-')}"


def _file_value(action: argparse.Action, key: str, value: Any, where: str) -> Any:
    """A value from the file, put through the flag's parse-time checks (its type on text, its choices)."""
    if isinstance(value, str) and action.type is not None and action.type is not str:
        try:
            value = action.type(value)
        except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
            raise InputFileError(f"{where}: {key}: {exc}") from None
    if action.choices is not None:
        for item in value if isinstance(value, list) else [value]:
            if item not in action.choices:
                raise InputFileError(f"{where}: {key}: {item!r} is not one of: "
                                     f"{', '.join(map(str, action.choices))}")
    return value


def apply_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill `args` from its `--config` file, where the command line did not give the option, then check
    the required options. A no-op for verbs without `add_config`, and when already applied.

    File keys are dests (`batch_size`); a key with no flag of its own (extract's `options`, bench's
    settings) is set on `args` for the verb to read. Of a mutually exclusive group the file may name
    one, and a flag of the group on the command line replaces it.
    """
    spec: ConfigSpec | None = getattr(args, "_config_spec", None)
    if spec is None or getattr(args, "_config_applied", False):
        return args
    args._config_applied = True
    parser = spec.parser
    explicit = explicit_options(parser, getattr(args, "_config_argv", []))
    if args.config is not None:
        from molleak.config import load_toml

        where = f"config {args.config}"
        loaded = load_toml(args.config, spec.model, "config")
        given = {key: getattr(loaded, key) for key in loaded.model_fields_set}
        for group in parser._mutually_exclusive_groups:
            dests = [action.dest for action in group._group_actions]
            in_file = [d for d in dests if d in given]
            if len(in_file) > 1:
                raise InputFileError(f"{where}: {in_file[0]} and {in_file[1]} cannot both be given")
            if in_file and explicit & set(dests):
                del given[in_file[0]]
        actions = {action.dest: action for action in parser._actions}
        from_file = set()
        for key, value in given.items():
            if key in explicit:
                continue
            if key in actions:
                value = _file_value(actions[key], key, value, where)
            setattr(args, key, value)
            from_file.add(key)
        args._config_keys = from_file  # what the file set (plan_executor lets a flag's backend drop its address)
    for need in spec.required:
        names = (need,) if isinstance(need, str) else need
        if all(getattr(args, name, None) is None for name in names):
            flags = " or ".join(_flag(parser, name) for name in names)
            keys = " or ".join(f"`{name}`" for name in names)
            raise MolleakError(f"{flags} is required (on the command line, or as {keys} in the --config file)")
    return args
