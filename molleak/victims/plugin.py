"""A victim from Python: `module:callable`, or a name in the entry-point group `molleak.victims`.

The plug-in maps a list of SMILES to a float array [n, d]. It may be a function, an object with an
`embed(list[str])` method or a callable object, or a class (instantiated with no arguments, then one
of the former). It is called with the canonical SMILES of the molecules not cached yet, in chunks of
at most `batch_size`; counting, budget and cache are those of every victim
(`molleak.models.victim.QueryVictim`), and what it returns is checked (numbers, shape [n, d] with the
same d every call, finite) with one error naming the plug-in. Optional attributes of the object:
`dim` (its width, known before the first call) and `provenance` (a dict: its published recipe).

A package makes a plug-in known by name with an entry point:

    [project.entry-points."molleak.victims"]
    my-model = "my_package.victim:embed"
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import re
import sys
from typing import Any

from molleak.errors import MolleakError
from molleak.models.victim import Query, QueryVictim

#: the entry-point group that names plug-in victims
ENTRY_POINT_GROUP = "molleak.victims"
#: `module:attr` with dotted module and attribute paths
PLUGIN_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def entry_point(name: str) -> importlib.metadata.EntryPoint | None:
    """The installed entry point of that name in the `molleak.victims` group, if any."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _import(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # an import error, or anything the module raised while importing
        raise MolleakError(f"victim plug-in {spec}: cannot import module {module_name} "
                           f"({type(exc).__name__}: {exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MolleakError(f"victim plug-in {spec}: {module_name} has no attribute {attr}")
        obj = getattr(obj, part)
    return obj


def _source_sha256(spec: str, obj: Any) -> str:
    """sha256 of the spec and the source file of the plug-in's module (what identifies it for reuse)."""
    h = hashlib.sha256(spec.encode())
    module = sys.modules.get(getattr(obj, "__module__", "") or spec.partition(":")[0])
    path = getattr(module, "__file__", None)
    if path:
        try:
            with open(path, "rb") as fh:
                h.update(fh.read())
        except OSError:
            pass
    return h.hexdigest()


class PluginVictim(QueryVictim):
    """A victim computed by a Python callable (see the module docstring).

    Args:
        spec: `module:callable` or an entry-point name (how errors and reports name the plug-in).
        fn: the loaded object (None: imported from `spec`).
        budget, cache, batch_size: as for every victim.
    """

    kind = "victim plug-in"

    def __init__(self, spec: str, fn: Any = None, *, budget: int | None = None, cache: bool = True,
                 batch_size: int = 256, name: str | None = None):
        if fn is None:
            if PLUGIN_SPEC.match(spec):
                target = spec
            else:
                ep = entry_point(spec)
                if ep is None:
                    raise MolleakError(f"victim plug-in {spec}: not module:callable and no {ENTRY_POINT_GROUP} "
                                       f"entry point of that name")
                target = ep.value
            fn = _import(target)
        if inspect.isclass(fn):
            try:
                fn = fn()
            except Exception as exc:
                raise MolleakError(f"victim plug-in {spec}: the class cannot be built with no arguments "
                                   f"({type(exc).__name__}: {exc})") from None
        call = getattr(fn, "embed", None) if not inspect.isroutine(fn) else None
        call = call if callable(call) else fn
        if not callable(call):
            raise MolleakError(f"victim plug-in {spec} is a {type(fn).__name__}, not a callable or an object with "
                               f"an embed() method")
        provenance = getattr(fn, "provenance", None)
        super().__init__(name=name or spec, provenance=provenance if isinstance(provenance, dict) else {},
                         batch_size=batch_size, budget=budget, cache=cache)
        self.provenance.setdefault("plugin", spec)
        self.spec, self._call = spec, call
        dim = getattr(fn, "dim", None)
        self._dim = int(dim) if isinstance(dim, int) and dim > 0 else None
        self._sha = _source_sha256(spec, fn)

    def identity_sha256(self) -> str:
        return self._sha

    def _compute(self, items: list[Query]) -> tuple[Any, int]:
        try:
            rows = self._call([q.key for q in items])
        except Exception as exc:
            raise MolleakError(f"{self.label} raised {type(exc).__name__}: {exc}") from None
        return rows, len(items)
