"""A tiny name -> class registry, one per extension point (as chemprop's ClassRegistry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from molleak.errors import MolleakError

T = TypeVar("T")

_REGISTRIES: list[Registry] = []  # every extension point, for `registering_modules`


class Registry(Generic[T]):
    """Maps names to classes (or factories) of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        _REGISTRIES.append(self)

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise MolleakError(f"unknown {self.kind} {name!r}; choose from {', '.join(sorted(self._items))}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


def registering_modules() -> list[str]:
    """Modules outside molleak whose import registered something (a user's scoring method, cell kind...).

    A spawned plan worker imports them before it runs a cell, so that what the calling program
    registered (a method defined in the user's own module) exists there too.
    """
    modules = {getattr(obj, "__module__", None) for reg in _REGISTRIES for obj in reg._items.values()}
    return sorted(m for m in modules if m and m.split(".")[0] != "molleak" and m not in ("__main__", "__mp_main__"))
