"""Argument helpers shared by the verbs."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

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
