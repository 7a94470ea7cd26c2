"""Run bookkeeping: seeds, atomic writes, versions and the run-directory layout.

Every run is seeded (a seed is drawn and recorded when none is given) and writes its resolved
config, versions and seed beside its results, as PyKEEN does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import random
import secrets
import socket
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_TRACKED_PACKAGES = ("molleak", "torch", "torch-geometric", "rdkit", "numpy", "scikit-learn", "fcd")


def resolve_seed(seed: int | None) -> int:
    """Return `seed`, or draw a fresh one (logged) when None, so no run is unseeded."""
    if seed is None:
        seed = secrets.randbelow(2**31 - 1)
        log.info("no seed given; drew seed %d", seed)
    return int(seed)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU) generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers."""
    out = {"python": sys.version.split()[0]}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_metadata(command: str | None = None) -> dict[str, Any]:
    """Versions, host, command line and torch threads (they decide the last bits of trained weights)."""
    from molleak.threads import describe

    return {
        "versions": package_versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "command": command if command is not None else " ".join(sys.argv),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "threads": describe(),
    }


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write a file so that readers see either the old or the complete new content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with __import__("contextlib").suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write `obj` as indented JSON."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_lines(lines: list[str]) -> str:
    """Hex sha256 of a list of strings joined by newlines (e.g. a set of canonical SMILES)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def start_run(out_dir: str | os.PathLike, config: dict[str, Any], seed: int) -> Path:
    """Create a run directory and write `config.json` (resolved config + seed) and `metadata.json`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from molleak.rundir import CONFIG_FILE, METADATA_FILE

    write_json_atomic(out / CONFIG_FILE, {**config, "seed": seed})
    write_json_atomic(out / METADATA_FILE, run_metadata())
    return out


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch ops with `n` intra-op threads, restoring the previous setting afterwards.

    Small models and full-batch fits run faster on one thread; on a busy machine a second thread
    only spins (5-15x slower measured; BENCHMARKS.md). The process-wide count is molleak.threads'.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
