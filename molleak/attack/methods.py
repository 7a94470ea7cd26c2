"""Extraction methods: the registry, what each method needs, and how one is run.

`--method NAME` is looked up in `METHODS` first (search strategies such as the policy network of
`molleak.attack.search` register there with `register_method`, declaring what they need), then in
`molleak.attack.scoring.base.SCORES`, where every score is the method "enumerate the pool and rank
it by that score". Modules under `molleak.attack.scoring` and `molleak.attack.search` are imported
on lookup, so registering there is enough: adding a method is one file.

Multi-record rule: a molecule reached by several records scores the max over its records
(see `molleak.attack.scoring.base`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from molleak.attack.scoring.base import build_score, load_scores, molecule_max
from molleak.errors import MolleakError
from molleak.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext

log = logging.getLogger(__name__)


@dataclass
class MethodOutput:
    """What an extraction method returns: the molecules it scored (unique canonical SMILES).

    Attributes:
        smiles: every molecule scored (for pool methods, the whole pool).
        scores: one per molecule, higher first; NaN = not scored.
        provenance: one line per molecule saying how it was built.
        alpha: per molecule, the alpha text of its best record, or None.
        info: what the method learned or measured (goes to `extract.json`).
    """

    smiles: list[str]
    scores: np.ndarray
    provenance: list[str]
    alpha: list[str] | None = None
    info: dict[str, Any] = field(default_factory=dict)


METHODS: Registry[Callable[..., MethodOutput]] = Registry("extraction method")


@dataclass(frozen=True)
class MethodNeeds:
    """What a method needs, declared where it is registered (nothing lists methods by hand).

    Attributes:
        victim: it queries the victim (False: a victim-free control that never loads one).
        candidates: `pool` (ranks an enumerated candidate pool) or `vocabulary` (assembles its
            own molecules from the vocabulary, e.g. the policy search).
        extends_budget: a rerun with a larger query budget continues the run from its checkpoint
            (the searches); the budget is then not one of the run's identifying inputs.
    """

    victim: bool = True
    candidates: Literal["pool", "vocabulary"] = "pool"
    extends_budget: bool = False


def register_method(name: str, *, victim: bool = True, candidates: Literal["pool", "vocabulary"] = "pool",
                    extends_budget: bool = False):
    """Register `fn(ctx, options) -> MethodOutput` as extraction method `name`, with what it needs."""

    def deco(fn: Callable[..., MethodOutput]) -> Callable[..., MethodOutput]:
        fn.needs = MethodNeeds(victim=victim, candidates=candidates,  # type: ignore[attr-defined]
                               extends_budget=extends_budget)
        METHODS.register(name)(fn)
        return fn

    return deco


def load_methods() -> Registry[Callable[..., MethodOutput]]:
    """Import the scoring and search modules so their methods and scores register themselves."""
    load_scores()
    try:
        import molleak.attack.search as pkg
    except ImportError:  # pragma: no cover
        return METHODS
    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"molleak.attack.search.{info.name}")
        except ImportError as exc:
            log.warning("search module %s not loaded: %s", info.name, exc)
    return METHODS


def method_names() -> list[str]:
    """Every name `--method` accepts."""
    return sorted(set(load_methods().names()) | set(load_scores().names()))


def method_needs(name: str) -> MethodNeeds:
    """What method `name` needs (unknown name: one clear error listing the known ones)."""
    if name in load_methods():
        return getattr(METHODS.get(name), "needs", MethodNeeds())
    return MethodNeeds(victim=bool(load_scores().get(name).uses_victim), candidates="pool")


def method_uses_victim(name: str) -> bool:
    return method_needs(name).victim


def options_model(name: str) -> type[BaseModel] | None:
    """The pydantic model of a score's options, made from its constructor's signature (unknown keys
    rejected); None for methods that validate their own options (the searches)."""
    if name in load_methods():
        return getattr(METHODS.get(name), "options_model", None)
    cls = load_scores().get(name)
    hints = typing.get_type_hints(cls.__init__)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(cls.__init__).parameters.items():
        if pname == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints.get(pname, Any), default)
    return create_model(f"{cls.__name__}Options", __config__=ConfigDict(extra="forbid"), **fields)


def validate_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Options checked against the method's model before any work (one clear error), as given."""
    model = options_model(name)
    options = dict(options or {})
    if model is not None:
        try:
            model.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            what = "method" if name in load_methods() else "score"
            raise MolleakError(f"bad options for {what} {name}: {'.'.join(map(str, first['loc']))}: "
                               f"{first['msg']}") from None
    return options


def rank_pool(ctx: AttackContext, score_name: str, options: dict[str, Any] | None = None) -> MethodOutput:
    """The enumerate-and-rank method: score the whole pool with a registered score."""
    score = build_score(score_name, options)
    result = score(ctx)
    n_rec = np.bincount(ctx.record_molecule, minlength=len(ctx.smiles))
    if result.best_record is None:  # molecule-level score: name the first record reaching the molecule
        _, best = molecule_max(np.zeros(len(ctx.records)), ctx.record_molecule, len(ctx.smiles))
    else:
        best = result.best_record
    provenance = [f"{ctx.provenance(int(b))};records={int(n)}" for b, n in zip(best, n_rec, strict=True)]
    return MethodOutput(list(ctx.smiles), np.asarray(result.values, dtype=np.float64), provenance,
                        result.alpha, result.info)


def run_method(ctx: AttackContext, method: str, options: dict[str, Any] | None = None) -> MethodOutput:
    """Run a registered method (or rank the pool by a registered score)."""
    if method in load_methods():
        return METHODS.get(method)(ctx, dict(options or {}))
    return rank_pool(ctx, method, options)
