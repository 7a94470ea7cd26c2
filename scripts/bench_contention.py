"""Torch threads under contention: the same jobs quiet and beside two busy processes, old and new policy.

Two jobs, each run in a fresh subprocess per cell (so each starts its own thread pool):
- pretrain: AttrMasking on the 5x300 GIN (zoo recipe, 1 epoch) over `--n-train` fixture molecules;
- embed: `Victim.embed` (untrained 5x300 GIN, weights seed 0, cold cache) over `--n-embed` molecules.
Each job runs quiet and beside two CPU-bound processes this script starts (`while True: pass`),
under each policy: `old` = torch's default (as many threads as cores, idle threads spinning: what
molleak did), `new` = molleak.threads' default (`apply_policy()` with no override: one thread), `two`
= the policy asked for 2 threads (MOLLEAK_THREADS=2: idle threads sleep, OMP_WAIT_POLICY=PASSIVE),
optionally `auto` (MOLLEAK_THREADS=auto). OMP_NUM_THREADS / MKL_NUM_THREADS / MOLLEAK_THREADS /
OMP_WAIT_POLICY are removed from every cell's environment before the cell sets its policy.

Prints per cell: threads used, wall seconds and CPU seconds of the job (time.process_time in the
cell: every thread of the process), the loaded/quiet ratios, the subprocess's whole CPU time
(resource.getrusage, imports included) and a digest of the output (weights / embeddings), which
shows whether a policy gives the same numbers quiet and loaded. Two busy processes on N cores leave
a job about N/(N+2) of a core per thread it can use (on 2 cores: half of each).

    .venv/bin/python scripts/bench_contention.py [--n-train 500] [--n-embed 3000] [--reps 1] [--policies old new two]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "moses_train_3k.smi"
_CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MOLLEAK_THREADS", "OMP_WAIT_POLICY")


def run_cell(job: str, policy: str, n_train: int, n_embed: int) -> dict:
    """One cell in this (fresh) process: set the policy, time the job, return figures as JSON."""
    if policy == "new":
        from molleak.threads import apply_policy

        apply_policy()
    elif policy in ("two", "auto"):
        os.environ["MOLLEAK_THREADS"] = "2" if policy == "two" else "auto"
        from molleak.threads import apply_policy

        apply_policy()
    import numpy as np
    import torch

    from molleak.data.smiles_io import read_smiles

    smiles = read_smiles(FIXTURE, canonicalize=False).smiles
    digest = hashlib.sha256()
    if job == "pretrain":
        from molleak.pretrain.trainer import pretrain
        from molleak.victims.zoo import ZooConfig, victim_config

        cfg = victim_config("attrmask", ZooConfig(seed=0))
        cfg.epochs = 1
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            pretrain(smiles[:n_train], cfg, Path(tmp) / "v.pt", progress=False, resume=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            state = torch.load(Path(tmp) / "v.pt", weights_only=True)["state_dict"]
        for k in sorted(state):
            digest.update(state[k].contiguous().numpy().tobytes())
    else:
        from molleak.models.gin import GINEncoder
        from molleak.models.victim import Victim

        torch.manual_seed(0)
        victim = Victim(GINEncoder(5, 300).eval())
        t0, c0 = time.perf_counter(), time.process_time()
        emb = victim.embed(smiles[:n_embed])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        digest.update(np.ascontiguousarray(emb).tobytes())
    return {"threads": torch.get_num_threads(), "wall": wall, "cpu": cpu, "digest": digest.hexdigest()[:12]}


def spawn_cell(job: str, policy: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, __file__, "--cell", job, policy, "--n-train", str(args.n_train),
                          "--n-embed", str(args.n_embed)], env=env, check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["process_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return row


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=500, help="pre-training molecules (fixture, first N)")
    ap.add_argument("--n-embed", type=int, default=3000, help="molecules embedded (fixture, first N)")
    ap.add_argument("--reps", type=int, default=1, help="runs per cell (medians printed)")
    ap.add_argument("--busy", type=int, default=2, help="CPU-bound processes started for the loaded cells")
    ap.add_argument("--policies", nargs="+", default=["old", "new", "two"], choices=["old", "new", "two", "auto"])
    ap.add_argument("--cell", nargs=2, metavar=("JOB", "POLICY"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(run_cell(*args.cell, args.n_train, args.n_embed)))
        return

    import torch

    from molleak.threads import usable_cpus

    print(f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC; {os.cpu_count()} cores "
          f"({usable_cpus()} usable); torch {torch.__version__}; {args.n_train} molecules pre-trained, "
          f"{args.n_embed} embedded (tests/fixtures/moses_train_3k.smi); seed 0; {args.reps} rep(s)/cell")
    print(f"load before: {uptime()}")
    t_start = time.perf_counter()
    results: dict[tuple[str, str, str], dict] = {}
    for load in ("quiet", "loaded"):
        busy = []
        if load == "loaded":
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
            time.sleep(1.0)  # let them be running before the cell starts
        try:
            for job in ("pretrain", "embed"):
                for policy in args.policies:
                    runs = [spawn_cell(job, policy, args) for _ in range(args.reps)]
                    row = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu", "process_cpu")}
                    row.update(threads=runs[0]["threads"], digest=",".join(sorted({r["digest"] for r in runs})))
                    results[(job, policy, load)] = row
        finally:
            for p in busy:
                p.kill()
                p.wait()
    print(f"load after:  {uptime()}; {time.perf_counter() - t_start:.0f} s in all")
    print(f"loaded = beside {args.busy} busy processes; job wall / CPU s measured inside the cell; "
          "process CPU = the whole subprocess (imports included)")
    print(f"{'job':<9} {'policy':<6} {'load':<7} {'threads':>7} {'wall s':>8} {'cpu s':>8} {'wall x':>7} "
          f"{'cpu x':>6} {'fair x':>6} {'proc cpu s':>10}  digest")
    cpus = usable_cpus()
    for job, policy, load in sorted(results, key=lambda k: (k[0] != "pretrain", args.policies.index(k[1]), k[2] != "quiet")):
        r, quiet = results[(job, policy, load)], results[(job, policy, "quiet")]
        # the slow-down if the job's threads and the busy processes shared the cores evenly
        busy = args.busy if load == "loaded" else 0
        fair = max(1.0, (r["threads"] + busy) / cpus) / max(1.0, r["threads"] / cpus)
        print(f"{job:<9} {policy:<6} {load:<7} {r['threads']:>7} {r['wall']:>8.2f} {r['cpu']:>8.2f} "
              f"{r['wall'] / quiet['wall']:>7.2f} {r['cpu'] / quiet['cpu']:>6.2f} {fair:>6.2f} {r['process_cpu']:>10.2f}  "
              f"{r['digest']}")
    print("wall x / cpu x: loaded over quiet for the same job and policy; fair x: the wall x of an even share "
          f"of {cpus} cores among the job's threads and the busy processes (no spinning, nothing else running)")


if __name__ == "__main__":
    main()
