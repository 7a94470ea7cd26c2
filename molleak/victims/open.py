"""Open a victim from a spec: the one way attack code (and `molleak serve`) gets its victim.

A spec is one of:

- a checkpoint path (`victim.pt`): `molleak.models.victim.Victim`;
- `http://host:port` or `https://...`: a served victim (`molleak serve`), key from MOLLEAK_API_KEY
  (`molleak.victims.remote.RemoteVictim`);
- `module:callable`, or the name of an entry point in the group `molleak.victims`: a Python plug-in
  (`molleak.victims.plugin.PluginVictim`).

All give the same `embed` with the same counting, budget and cache (`QueryVictim`). An existing
file always wins; a spec that is none of these is reported as a missing checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from molleak import rundir
from molleak.errors import InputFileError
from molleak.models.victim import QueryVictim

SpecKind = Literal["checkpoint", "http", "plugin"]


def spec_kind(spec: str) -> SpecKind:
    """Which kind of victim a spec names (without opening it)."""
    from molleak.victims.plugin import PLUGIN_SPEC, entry_point

    text = str(spec)
    if Path(text).is_file():
        return "checkpoint"
    if text.startswith(("http://", "https://")):
        return "http"
    if PLUGIN_SPEC.match(text) or ("/" not in text and not Path(text).suffix and entry_point(text) is not None):
        return "plugin"
    return "checkpoint"


def check_spec(spec: str) -> str:
    """A spec's syntax, checked without opening anything (for configs: no key in a URL)."""
    if spec_kind(spec) == "http":
        from molleak.victims.remote import check_url

        check_url(spec)
    return spec


def open_victim(spec: str | Path, budget: int | None = None, **kwargs: Any) -> QueryVictim:
    """The victim a spec names, with `budget` (None: unlimited); `kwargs` go to its constructor
    (e.g. `batch_size`, `cache`, `name`)."""
    text = str(spec)
    kind = spec_kind(text)
    if kind == "http":
        from molleak.victims.remote import RemoteVictim

        return RemoteVictim(text, budget=budget, **kwargs)
    if kind == "plugin":
        from molleak.victims.plugin import PluginVictim

        return PluginVictim(text, budget=budget, **kwargs)
    from molleak.models.victim import Victim

    if not Path(text).exists():  # anything else (a directory, a corrupt file) is the checkpoint loader's error
        raise InputFileError(f"victim checkpoint not found: {text} (a victim is a checkpoint file, "
                             f"http://host:port or module:callable)")
    return Victim.from_checkpoint(text, budget=budget, **kwargs)


def victim_ref(spec: str | Path) -> rundir.VictimRef:
    """Who the victim is, for a run's record and reuse hash: a checkpoint's bytes' sha256 and what its
    provenance says; a served victim's published identity (its weights' sha256) and recipe; a
    plug-in's source file sha256."""
    text = str(spec)
    kind = spec_kind(text)
    if kind == "checkpoint":
        from molleak.models.checkpoint import read_checkpoint_file
        from molleak.runs import sha256_file

        path = Path(text)
        if not path.is_file():
            raise InputFileError(f"victim checkpoint not found: {path} (a victim is a checkpoint file, "
                                 f"http://host:port or module:callable)")
        prov = read_checkpoint_file(path).get("provenance", {}) or {}
        return rundir.VictimRef(path=str(path), sha256=sha256_file(path), name=prov.get("name"),
                                strategy=prov.get("strategy"), recipe_version=prov.get("recipe_version"),
                                train_sha256=prov.get("train_sha256"))
    victim = open_victim(text, cache=False)
    try:
        prov = victim.provenance
        return rundir.VictimRef(path=text, sha256=victim.identity_sha256(), name=victim.name,
                                strategy=prov.get("strategy"), recipe_version=prov.get("recipe_version"),
                                train_sha256=prov.get("train_sha256"))
    finally:
        close = getattr(victim, "close", None)
        if close is not None:
            close()

