"""Cell kinds of the Ray tests, in a module Ray workers import by name (the tests put this directory
on the workers' PYTHONPATH): `test-noop` returns its parameters; `test-crash-once` kills its worker
process the first time it runs (a marker file remembers), then succeeds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from molleak.plans.runner import CELL_KINDS


def noop_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    return {"echo": params}


def crash_once_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    marker = Path(params["marker"])
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the worker dies mid-task, as a killed or out-of-memory worker would
    return {"first_pid": int(marker.read_text()), "pid": os.getpid()}


for _name, _fn in (("test-noop", noop_cell), ("test-crash-once", crash_once_cell)):
    if _name not in CELL_KINDS:
        CELL_KINDS.register(_name)(_fn)
