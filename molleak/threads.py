"""The one thread policy: how many torch threads a molleak process computes with, set once.

Every entry point calls this module: the CLI at start-up (`apply_policy`, molleak.cli.main), each
worker process of a plan (`apply_threads`, molleak.plans.runner and ray_executor), and `molleak zoo
--threads`. What a run used is recorded in its `metadata.json` (`describe`, via molleak.runs).

Which count, in this order:

1. `--threads N` on the command line;
2. the `MOLLEAK_THREADS` environment variable: a positive integer, or `auto`;
3. `OMP_NUM_THREADS`, when the user set it (the commands in BENCHMARKS.md do);
4. the default: **one intra-op thread per process**, however many cores the machine has.

Why a fixed default rather than one read from the machine: a victim trained with 1 and with 2
intra-op threads is not bitwise the same (torch's parallel reductions sum in another order), while
reruns at one count are identical, quiet or loaded (tests/unit/test_thread_determinism.py). A count
chosen from the load would make a victim's weights depend on what else ran when it was trained. One
thread also never spins: on a shared machine torch's idle threads busy-wait for the thread that was
descheduled and burn CPU the other jobs needed (BENCHMARKS.md, "Threads under contention"); and it is
the count plan workers use, so a serial and a parallel build give the same weights.
Parallelism comes from worker processes (`--workers`), which do not change the numbers.

With more than one thread, idle OpenMP threads should sleep, not spin: `prepare_runtime` sets
OMP_WAIT_POLICY=PASSIVE (unless the user set it) at CLI entry, before torch is imported, and
`apply_threads` sets it too, so processes started afterwards inherit it. It changes no number; beside
two busy processes it cut a 2-thread embedding's CPU time 4-5x (BENCHMARKS.md). libgomp reads it once,
when torch loads: too late for a process that imported torch first, in time for those it starts.

`auto` asks for the cores actually free: the CPUs this process may run on (`os.sched_getaffinity`,
capped by a cgroup CPU quota) less the 1-minute load average, rounded, at least 1, divided among
`workers` processes. Faster on a quiet machine with many cores; the numbers then depend on the load.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from molleak.errors import MolleakError

ENV_VAR = "MOLLEAK_THREADS"
DEFAULT_THREADS = 1
#: the thread-count variables of the OpenMP / MKL runtimes torch links; exported for child processes
_RUNTIME_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_WAIT_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
_CGROUP_ROOT = Path("/sys/fs/cgroup")

_applied: dict[str, Any] = {}


def cgroup_cpu_limit(root: Path = _CGROUP_ROOT) -> float | None:
    """CPUs allowed by a cgroup quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None when unlimited."""
    try:
        v2 = (root / "cpu.max").read_text().split()
        if v2 and v2[0] != "max":
            return int(v2[0]) / int(v2[1])
        if v2:
            return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cpus(cgroup_root: Path = _CGROUP_ROOT) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota (rounded up)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def load_average() -> float:
    """The 1-minute load average (/proc/loadavg); 0 where the platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def free_threads(workers: int = 1, *, cpus: int | None = None, load: float | None = None) -> int:
    """The `auto` count: usable CPUs less the 1-minute load, rounded, shared by `workers`, at least 1."""
    cpus = usable_cpus() if cpus is None else cpus
    load = load_average() if load is None else load
    free = min(cpus, math.floor(cpus - load + 0.5))
    return max(1, free // max(1, workers))


def _parse(value: str, name: str, workers: int, cpus: int | None, load: float | None) -> int:
    text = value.strip().lower()
    if name == ENV_VAR and text == "auto":
        return free_threads(workers, cpus=cpus, load=load)
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        allowed = "a positive integer or 'auto'" if name == ENV_VAR else "a positive integer"
        raise MolleakError(f"{name}={value!r}: expected {allowed}")
    return n


def resolve_threads(cli: int | None = None, *, workers: int = 1, env: Mapping[str, str] | None = None,
                    cpus: int | None = None, load: float | None = None) -> tuple[int, str]:
    """(intra-op threads, where the count came from) by the policy above.

    `workers`: molleak processes computing at once (plan workers); only `auto` divides by it, an
    explicit count is the user's to choose. `cpus` / `load` stand in for the machine's (tests).
    """
    env = os.environ if env is None else env
    if cli is not None:
        if int(cli) < 1:
            raise MolleakError(f"--threads {cli}: expected a positive integer")
        return int(cli), "--threads"
    for name in (ENV_VAR, "OMP_NUM_THREADS"):
        if env.get(name, "").strip():
            return _parse(env[name], name, workers, cpus, load), name
    return DEFAULT_THREADS, "default"


def prepare_runtime() -> None:
    """Idle OpenMP threads sleep instead of spinning (unless OMP_WAIT_POLICY is set); call before torch loads."""
    os.environ.setdefault(*_WAIT_POLICY)


def apply_threads(n: int, source: str = "explicit") -> int:
    """Run this process's torch work on `n` intra-op threads (and as many inter-op threads).

    Also exports OMP_NUM_THREADS / MKL_NUM_THREADS, so that processes started from here (plan
    workers, Ray workers, subprocesses) size their thread pools the same before torch starts them.
    """
    n = max(1, int(n))
    prepare_runtime()
    for var in _RUNTIME_VARS:
        os.environ[var] = str(n)
    import torch

    torch.set_num_threads(n)
    # torch allows setting inter-op threads only once, before inter-op work: a later call keeps the first
    with contextlib.suppress(RuntimeError):
        if torch.get_num_interop_threads() != n:
            torch.set_num_interop_threads(n)
    _applied.update(threads=n, source=source)
    return n


def apply_policy(cli: int | None = None, *, workers: int = 1) -> int:
    """Resolve the count (`resolve_threads`) and apply it; the one call at an entry point."""
    n, source = resolve_threads(cli, workers=workers)
    return apply_threads(n, source)


def worker_threads(workers: int) -> int:
    """The count for each of `workers` plan worker processes started from this process.

    The count this process computes on (torch's, once torch is loaded; else the applied one or the
    default), so that workers compute the numbers of a serial run here; under `MOLLEAK_THREADS=auto`
    the free cores are shared among the workers instead.
    """
    if _applied.get("source") == ENV_VAR and os.environ.get(ENV_VAR, "").strip().lower() == "auto":
        return free_threads(workers)
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    return int(_applied.get("threads", DEFAULT_THREADS))


def describe() -> dict[str, Any]:
    """What this process computes with, for `metadata.json`: torch's actual counts and their source."""
    torch = sys.modules.get("torch")  # not imported: nothing ran on torch, and importing it here costs seconds
    intra = torch.get_num_threads() if torch is not None else None
    interop = torch.get_num_interop_threads() if torch is not None else None
    if _applied and intra == _applied["threads"]:
        source = _applied["source"]
    elif _applied:
        source = f"changed in-process after {_applied['source']}"  # e.g. a `torch_threads` block
    else:
        source = "torch default"
    return {"intra_op": intra, "interop": interop, "source": source, "usable_cpus": usable_cpus(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "OMP_WAIT_POLICY": os.environ.get(_WAIT_POLICY[0])}
