"""The one cell runner: a plan is a list of cells; each cell runs once, in any executor, resumably.

A **cell** is one unit of work with a registered kind (`CELL_KINDS`: train a victim, run and
evaluate an extraction, a membership audit, a canary cell...), its resolved parameters (JSON) and
the files it reads. Its **key** is the sha256 of (kind, parameters, sha256 of each input file):
the one resume rule. A cell whose `cell.json` holds the same key and a result is not run again; a
cell whose key changed (other parameters, a rebuilt victim, other data) is run again. Nothing is
decided by paths or file times.

An **executor** runs the pending cells: `LocalExecutor(workers)` in this process (workers=1) or in
a pool of spawned processes computing with this process's torch thread count (the same numbers as
a serial run: every cell is seeded by its parameters); `RayExecutor` (`molleak.plans.ray_executor`, the `ray` extra) as
Ray tasks on a local instance or a cluster. `make_executor` makes either from a verb's options.
Results come back through each cell's directory (`cell.json`), so a killed run loses only the
cells that were running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from molleak import rundir
from molleak.errors import MolleakError
from molleak.registry import Registry
from molleak.runs import sha256_file, write_json_atomic

log = logging.getLogger(__name__)

#: kind name -> fn(params: dict, cell_dir: Path) -> dict (the cell's result, JSON)
CELL_KINDS: Registry[Callable[[dict[str, Any], Path], dict[str, Any]]] = Registry("cell kind")


@dataclass(frozen=True)
class Cell:
    """One unit of a plan.

    Attributes:
        id: a readable name, unique in the plan; the cell's directory is `<cells_dir>/<id>`.
        kind: a name in `CELL_KINDS`.
        params: the resolved parameters (JSON values) the kind's function receives.
        inputs: files the cell reads whose content decides its result (their sha256 enters the key).
        resources: what one run of the cell needs (`cpus`, `memory_gb`, `gpus`), for executors that schedule.
    """

    id: str
    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...] = ()
    resources: dict[str, float] = field(default_factory=lambda: {"cpus": 1})

    def key(self) -> str:
        files = {}
        for f in self.inputs:
            p = Path(f)
            files[f] = sha256_file(p) if p.is_file() else None
        return rundir.inputs_sha256({"kind": self.kind, "params": self.params, "files": files})


def cell_done(cell: Cell, cell_dir: Path, key: str | None = None) -> dict[str, Any] | None:
    """The cell's stored result when its key still matches, else None."""
    path = cell_dir / rundir.CELL_FILE
    if not path.is_file():
        return None
    try:
        done = rundir.read_json(path, "cell record")
    except MolleakError:
        return None
    if done.get("key") != (key or cell.key()) or done.get("status") != "done":
        return None
    return done


def run_one(cell: Cell, cell_dir: str | Path, key: str) -> dict[str, Any]:
    """Run one cell and record it (`cell.json`, written last and atomically); used by every executor."""
    cell_dir = Path(cell_dir)
    fn = CELL_KINDS.get(cell.kind)
    t0 = time.perf_counter()
    try:
        result = fn(dict(cell.params), cell_dir)
        status, error = "done", None
    except MolleakError as exc:
        # a cell that cannot run (no receptor, no reference set...) is recorded and retried next time
        result, status, error = {}, "failed", str(exc)
        log.warning("cell %s failed: %s", cell.id, exc)
    record = {"cell": cell.id, "kind": cell.kind, "key": key, "status": status, "error": error,
              "params": cell.params, "seconds": round(time.perf_counter() - t0, 2), "result": result}
    write_json_atomic(cell_dir / rundir.CELL_FILE, record)
    return record


def _run_in_worker(cell: Cell, cell_dir: str, key: str, threads: int, modules: Sequence[str] = ()) -> dict[str, Any]:
    """A cell in a worker process, on the parent's thread count (one by default: workers do not fight over cores).

    `modules`: the caller's modules that registered extensions (`molleak.registry.registering_modules`),
    imported here so that a method the caller registered exists in the worker too.
    """
    import importlib
    import os

    from molleak.threads import apply_threads

    # the parent shows one progress line per plan; bars from several workers would interleave with it
    # (tqdm reads this when it is first imported, which in a fresh worker is after this line)
    os.environ.setdefault("TQDM_DISABLE", "1")
    apply_threads(threads, "plan worker")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [{cell.id}] %(message)s")
    _load_kinds()
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MolleakError(f"a plan worker cannot import {module!r}, which registered a method or kind in the "
                               f"calling process ({exc}); make it importable or run with one worker") from None
    return run_one(cell, cell_dir, key)


class Executor(Protocol):
    """Runs cells; yields (cell, record) as each finishes, in any order.

    `slots` (optional, default 1): how many cells it runs at once, read by `run_plan`'s progress
    display after each finished cell (an executor may learn it when it starts, e.g. a Ray cluster's CPUs).
    """

    def map(self, jobs: Sequence[tuple[Cell, Path, str]]) -> Iterator[tuple[Cell, dict[str, Any]]]: ...


class LocalExecutor:
    """This machine: in-process with `workers=1`, else a pool of spawned worker processes.

    Each worker computes with the thread count this process applied (`molleak.threads`; one by
    default), so a parallel run gives the numbers of a serial one. The pool lives until `close()`
    (or interpreter exit) and serves every plan given to this executor: an audit's stages share
    the workers' start-up and their in-memory caches (parsed sets, ChemNet activations) instead of
    paying for them once per stage.
    """

    def __init__(self, workers: int = 1, threads: int | None = None):
        if workers < 1:
            raise MolleakError(f"workers must be at least 1, got {workers}")
        self.workers = int(workers)
        self.threads = threads
        self._pool: Any = None

    @property
    def slots(self) -> int:
        return self.workers

    def _worker_threads(self) -> int:
        if self.threads is not None:
            return int(self.threads)
        from molleak.threads import worker_threads

        return worker_threads(self.workers)

    def map(self, jobs: Sequence[tuple[Cell, Path, str]]) -> Iterator[tuple[Cell, dict[str, Any]]]:
        if self.workers == 1 or len(jobs) < 2:
            for cell, cell_dir, key in jobs:
                yield cell, run_one(cell, cell_dir, key)
            return
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        from molleak.registry import registering_modules

        threads, modules = self._worker_threads(), registering_modules()
        futures = {self._pool.submit(_run_in_worker, cell, str(cell_dir), key, threads, modules): cell
                   for cell, cell_dir, key in jobs}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BrokenProcessPool:
            self.close()  # a worker died (killed, out of memory): the next plan starts a fresh pool
            raise
        finally:
            for fut in futures:
                fut.cancel()  # a consumer that stopped early leaves nothing queued

    def close(self) -> None:
        """Stop the worker processes (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BACKENDS = ("local", "ray")


def make_executor(backend: str = "local", workers: int | None = None, address: str | None = None) -> Executor:
    """The executor of a verb's plans.

    Args:
        backend: "local" (this machine, `LocalExecutor`) or "ray" (`RayExecutor`).
        workers: local: cells at once (default 1); ray: CPUs of the local Ray instance it starts
            when no address is given (default: all); ignored with an address (the cluster decides).
        address: ray only: "auto" or the head's "HOST:PORT" (default: a local Ray instance).
    """
    if backend not in BACKENDS:
        raise MolleakError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "local":
        if address is not None:
            raise MolleakError("an address is for the ray backend (--backend ray)")
        return LocalExecutor(workers or 1)
    from molleak.plans.ray_executor import RayExecutor

    return RayExecutor(address, num_cpus=workers if address is None else None)


def _load_kinds() -> None:
    """Import the modules that register cell kinds (spawned workers start with none)."""
    import importlib

    for module in ("molleak.plans.cells", "molleak.plans.leakage", "molleak.plans.shadows", "molleak.plans.dock"):
        importlib.import_module(module)


def progress_line(what: str, done: int, total: int, running: int, failed: int, seconds_left: float) -> str:
    """The one progress line of a plan, on every backend.

    `running` is what the executor has room for (`min(slots, cells left)`): cells queued on a Ray
    cluster count as running once the cluster has CPUs for them.
    """
    return (f"{what}: {done}/{total} cells done, {running} running, {failed} failed; "
            f"about {seconds_left:.0f} s left")


@dataclass
class PlanResult:
    records: dict[str, dict[str, Any]]
    resumed: int
    ran: int
    failed: int
    seconds: float
    ran_ids: frozenset[str] = frozenset()  # the cells run this time (the others were reused)

    def result(self, cell_id: str) -> dict[str, Any]:
        rec = self.records[cell_id]
        if rec["status"] != "done":
            raise MolleakError(f"cell {cell_id} failed: {rec.get('error')}")
        return rec["result"]


def run_plan(cells: Iterable[Cell], cells_dir: str | Path, executor: Executor | None = None, *,
             progress: bool = False, what: str = "plan") -> PlanResult:
    """Run every cell whose key changed or that has no result; returns every cell's record.

    Progress (cells done, running, failed, estimated time left) is logged as cells finish, and shown
    as a bar with `progress`: one display whatever the executor (`progress_line`).
    """
    _load_kinds()
    cells = list(cells)
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise MolleakError(f"{what}: duplicate cell ids")
    cells_dir = Path(cells_dir)
    executor = executor or LocalExecutor(1)
    t0 = time.perf_counter()
    records: dict[str, dict[str, Any]] = {}
    jobs = []
    for cell in cells:
        CELL_KINDS.get(cell.kind)  # unknown kind: one clear error before any work
        key = cell.key()
        done = cell_done(cell, cells_dir / cell.id, key)
        if done is not None:
            records[cell.id] = done
        else:
            jobs.append((cell, cells_dir / cell.id, key))
    resumed = len(records)
    if jobs:
        log.info("%s: %d cells, %d done already, %d to run", what, len(cells), resumed, len(jobs))
    failed = 0
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc=what, unit="cell", disable=not progress or not jobs)
    for i, (cell, record) in enumerate(executor.map(jobs), start=1):
        records[cell.id] = record
        failed += record["status"] != "done"
        elapsed = time.perf_counter() - t0
        running = min(int(getattr(executor, "slots", 1)), len(jobs) - i)
        left = elapsed / i * (len(jobs) - i)
        log.info("%s; %s %s", progress_line(what, i, len(jobs), running, failed, left), cell.id, record["status"])
        bar.set_postfix(running=running, failed=failed, refresh=False)
        bar.update(1)
    bar.close()
    return PlanResult({c.id: records[c.id] for c in cells}, resumed, len(jobs), failed,
                      round(time.perf_counter() - t0, 2), frozenset(c.id for c, _, _ in jobs))
