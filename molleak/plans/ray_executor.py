"""Plans on Ray: `RayExecutor`, the `map` of `molleak.plans.runner` as Ray tasks (`pip install 'molleak[ray]'`).

Each pending cell is one Ray task running `run_one` with the cell's `resources` (`cpus` ->
num_cpus, `memory_gb` -> memory, `gpus` -> num_gpus, fractions allowed) and as many torch threads
as it reserves CPUs (one by default). A task whose worker dies (killed, out of memory, a lost node)
is retried `max_retries` times; results are yielded as tasks finish (`ray.wait`). Its `slots` (the
cluster's CPUs over a cell's, read when a plan starts) feed the plan's one progress display
(`molleak.plans.runner.progress_line`), as a local pool's workers do.

**Shared filesystem.** A cell writes its outputs and its record (`cell.json`) into its cell
directory on the node that runs it; the record also comes back as the task's return value. The plan
directory (and every input file a cell names) must therefore be the same path on every node (NFS,
a cluster filesystem, or a single machine): the driver reads the files of finished cells, and a
resumed plan finds them there. Every node needs molleak installed (the same version).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from molleak import rundir
from molleak.errors import MolleakError
from molleak.plans.runner import CELL_KINDS, Cell, _load_kinds, run_one

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'molleak[ray]'"


def _ray():
    try:
        import ray
    except ImportError:
        raise MolleakError(f"the ray backend needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def ray_options(cell: Cell, max_retries: int) -> dict[str, Any]:
    """The Ray task options of a cell, from its `resources`."""
    res = cell.resources
    opts: dict[str, Any] = {"num_cpus": float(res.get("cpus", 1)), "max_retries": max_retries}
    if res.get("memory_gb"):
        opts["memory"] = int(float(res["memory_gb"]) * 1024**3)
    if res.get("gpus"):
        opts["num_gpus"] = float(res["gpus"])
    return opts


def _task(cell: Cell, cell_dir: str, key: str, fn: Callable[..., dict[str, Any]], threads: int) -> dict[str, Any]:
    """One cell in a Ray worker: its torch threads, the cell kinds, then the one `run_one`."""
    from molleak.threads import apply_threads

    apply_threads(threads, "ray worker")
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s [{cell.id}] %(message)s")
    _load_kinds()
    if cell.kind not in CELL_KINDS:  # a kind registered outside molleak (a script, a test): the driver's function
        CELL_KINDS.register(cell.kind)(fn)
    return run_one(cell, cell_dir, key)


class RayExecutor:
    """Runs cells as Ray tasks on a local Ray instance or a running cluster.

    Args:
        address: None: a Ray already initialised in this process, else a new local instance bound to
            127.0.0.1; "auto": the cluster this machine belongs to (`ray start`); "HOST:PORT": that
            cluster's head.
        num_cpus: CPUs of a new local instance (None: all of this machine's); ignored with an address.
        max_retries: reruns of a cell whose worker died.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 3):
        _ray()  # not installed: the one clear error, before any work
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = int(max_retries)
        self._started = False
        self._warned_fs = False
        self.slots = 1  # cells at once, for the progress display: set from the cluster's CPUs when a plan starts

    def _init(self):
        ray = _ray()
        if ray.is_initialized():
            return ray
        if self.address is None:
            ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
        else:
            ray.init(address=self.address, log_to_driver=False)
        self._started = True
        log.info("ray: %s, %s CPUs", "local instance" if self.address is None else self.address,
                 ray.cluster_resources().get("CPU", "?"))
        return ray

    def close(self) -> None:
        """Shut down the Ray instance this executor started (a process exit does it too)."""
        if self._started:
            _ray().shutdown()
            self._started = False

    def map(self, jobs: Sequence[tuple[Cell, Path, str]]) -> Iterator[tuple[Cell, dict[str, Any]]]:
        if not jobs:
            return
        ray = self._init()
        remote = ray.remote(_task)
        pending: dict[Any, tuple[Cell, Path]] = {}
        options = [ray_options(cell, self.max_retries) for cell, _, _ in jobs]
        per_cell = max(opts["num_cpus"] for opts in options)
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1) // max(per_cell, 1e-9)))
        for (cell, cell_dir, key), opts in zip(jobs, options, strict=True):
            threads = max(1, int(opts["num_cpus"]))
            ref = remote.options(**opts).remote(cell, str(cell_dir), key, CELL_KINDS.get(cell.kind), threads)
            pending[ref] = (cell, Path(cell_dir))
        try:
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                cell, cell_dir = pending.pop(ref)
                try:
                    record = ray.get(ref)
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError) as exc:
                    raise MolleakError(f"cell {cell.id}: its Ray worker died {self.max_retries + 1} times "
                                       f"({type(exc).__name__}); rerun to resume the plan") from None
                if not self._warned_fs and not (cell_dir / rundir.CELL_FILE).is_file():
                    self._warned_fs = True
                    log.warning("ray: %s is not visible here: the plan directory must be on a filesystem shared "
                                "by every node, or resuming reruns its cells", cell_dir / rundir.CELL_FILE)
                yield cell, record
        finally:
            for ref in pending:  # an error or an abandoned plan: stop its other cells
                ray.cancel(ref)
