"""Wall seconds of one plan on the local backend and on Ray (1 and 2 workers), Ray's per-task overhead,
and a projection of a large plan on N workers from measured per-cell seconds.

The plan: `--cells` victim cells (GIN, `--epochs` epochs on the first `--molecules` molecules of the
committed MOSES fixture, one seed per cell), each run in a fresh directory. Ray runs on a local
instance of 1 then 2 CPUs (started here; its start-up is reported apart). The overhead is the wall
time per task of `--noops` no-op cells on warm Ray workers (1 CPU, so one at a time).

The projection reads the seconds of every `cell.json` under `--project-from` (an existing plan's
cells directory, e.g. a zoo's `cells/`; default: this run's plan) or takes `--seconds`, and prints the
hours of a plan of `--project-cells` such cells (their costs cycled) on N workers: greedy list
scheduling, longest first, each cell costing its measured seconds plus the measured Ray overhead, no
slowdown from sharing a node (one worker per core or node) and no data transfer (shared filesystem).

    OMP_NUM_THREADS=1 python scripts/bench_plan.py --cells 4 --project-cells 1000
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.plans.cells import victim_cell_spec
from molleak.plans.runner import CELL_KINDS, Cell, LocalExecutor, run_plan
from molleak.pretrain.trainer import PretrainConfig
from molleak.runs import torch_threads

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "moses_train_3k.smi"


def noop_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    return {}


if "bench-noop" not in CELL_KINDS:  # a Ray worker gets this function by value (the driver's __main__)
    CELL_KINDS.register("bench-noop")(noop_cell)


def plan(root: Path, n: int, molecules: int, epochs: int, width: int) -> list[Cell]:
    data = root / "train.smi"
    if not data.is_file():
        write_smiles(data, read_smiles(FIXTURE, canonicalize=False).smiles[:molecules])
    recipe = PretrainConfig(strategy="attrmask", epochs=epochs, batch_size=64, seed=0,
                            encoder_config={"num_layers": 2, "emb_dim": width})
    return [victim_cell_spec(f"v{i}", "victim", replace(recipe, seed=i), root / "models" / f"v{i}.pt", data=data,
                             seed=i) for i in range(n)]


def weights(path: Path) -> list[torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    found: list[torch.Tensor] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            found.append(obj)
        elif isinstance(obj, dict):
            for k in sorted(obj):
                walk(obj[k])

    walk(ckpt)
    return found


def timed(root: Path, name: str, cells_args: tuple, executor) -> tuple[float, list[list[torch.Tensor]], Path]:
    d = root / name
    cells = plan(d, *cells_args)
    t0 = time.perf_counter()
    res = run_plan(cells, d / "cells", executor, what=name)
    wall = time.perf_counter() - t0
    assert res.ran == len(cells) and res.failed == 0, res
    return wall, [weights(d / "models" / f"{c.id}.pt") for c in cells], d / "cells"


def cell_seconds(cells_dir: Path) -> list[float]:
    found = [json.loads(p.read_text()).get("seconds") for p in sorted(cells_dir.glob("*/cell.json"))]
    return [float(s) for s in found if s is not None]


def makespan(costs: list[float], workers: int) -> float:
    """Greedy list scheduling, longest first: each cell goes to the worker that frees first."""
    free = [0.0] * workers
    for c in sorted(costs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + c)
    return max(free)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=4, help="victim cells in the timed plan")
    ap.add_argument("--molecules", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--width", type=int, default=64, help="GIN width (2 layers)")
    ap.add_argument("--noops", type=int, default=20, help="no-op cells timed for Ray's per-task overhead")
    ap.add_argument("--project-from", type=Path, help="a plan's cells directory whose cell.json seconds are projected")
    ap.add_argument("--seconds", help="comma-separated per-cell seconds to project instead")
    ap.add_argument("--project-cells", type=int, default=1000, help="cells of the projected plan")
    ap.add_argument("--workers", default="1,2,4,8,16,32,64,128", help="worker counts of the projection")
    args = ap.parse_args()

    import ray

    print(f"# {platform.node()}: {os.cpu_count()} CPUs, torch {torch.__version__}, ray {ray.__version__}; "
          f"load at start {os.getloadavg()[0]:.2f}")
    cells_args = (args.cells, args.molecules, args.epochs, args.width)
    root = Path(tempfile.mkdtemp(prefix="bench_plan_"))
    rows, ref, local_cells = [], None, None
    try:
        with torch_threads(1):
            for workers in (1, 2):
                wall, w, local_cells = timed(root, f"local{workers}", cells_args, LocalExecutor(workers))
                ref = ref or w
                rows.append(("local", workers, wall, all(map(torch.equal, sum(w, []), sum(ref, [])))))
            from molleak.plans.ray_executor import RayExecutor

            overhead = 0.0
            for cpus in (1, 2):
                t0 = time.perf_counter()
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                         _node_ip_address="127.0.0.1")
                start = time.perf_counter() - t0
                wall, w, _ = timed(root, f"ray{cpus}", cells_args, RayExecutor())
                rows.append(("ray", cpus, wall, all(map(torch.equal, sum(w, []), sum(ref, [])))))
                if cpus == 1:  # its worker is warm now: what a task costs beyond its work
                    noops = [Cell(f"n{i}", "bench-noop", {"i": i}) for i in range(args.noops)]
                    t0 = time.perf_counter()
                    run_plan(noops, root / "noop" / "cells", RayExecutor(), what="noop")
                    overhead = (time.perf_counter() - t0) / args.noops
                ray.shutdown()
                print(f"ray start-up ({cpus} CPU): {start:.1f} s (not in the walls below)")
    finally:
        projected = cell_seconds(args.project_from or local_cells) if (args.project_from or local_cells) else []
        shutil.rmtree(root, ignore_errors=True)

    print(f"\nplan: {args.cells} victim cells (GIN 2x{args.width}, {args.epochs} epochs, {args.molecules} molecules), "
          "one torch thread per cell")
    print("| backend | workers | wall s | speed-up | same weights as local 1 |\n|---|---|---|---|---|")
    base = {b: next(r[2] for r in rows if r[0] == b and r[1] == 1) for b in ("local", "ray")}
    for backend, workers, wall, same in rows:
        print(f"| {backend} | {workers} | {wall:.1f} | {base[backend] / wall:.2f}x | {'yes' if same else 'NO'} |")
    print("(walls include starting the workers: local 1 runs in this process, local 2 spawns 2 processes, "
          "Ray starts its workers in a fresh instance; each imports torch and molleak)")
    print(f"\nRay per-task overhead (no-op cells on a warm worker, 1 CPU, {args.noops} tasks, through run_plan): "
          f"{overhead:.3f} s")

    costs = [float(s) for s in args.seconds.split(",")] if args.seconds else projected
    source = "--seconds" if args.seconds else (str(args.project_from) if args.project_from else "this run's local plan")
    mean = sum(costs) / len(costs)
    costs = [c + overhead for c in costs]
    plan_costs = [costs[i % len(costs)] for i in range(args.project_cells)]
    print(f"\nprojection: {args.project_cells} cells, per-cell seconds from {source} "
          f"({len(costs)} measured, mean {mean:.1f} s, cycled), + {overhead:.3f} s "
          "Ray overhead each; greedy longest-first scheduling, no contention, shared filesystem")
    print("| workers | hours | efficiency |\n|---|---|---|")
    serial = sum(plan_costs)
    for n in (int(x) for x in args.workers.split(",")):
        span = makespan(plan_costs, n)
        print(f"| {n} | {span / 3600:.2f} | {serial / n / span:.0%} |")
    print(f"\n# load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
