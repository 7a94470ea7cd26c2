"""The served victim over HTTP against the same victim in process: molecules/s, latency, errors, RSS.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_serve.py [--n 1536] [--clients 4] [--batch 256] [--reps 3]

One untrained 5x300 GIN (weights seed 0) saved as a checkpoint. Per repetition, a fresh sample of
`--n` MOSES train molecules (seed = repetition), embedded with a cold cache:

- in process: `Victim.embed` on chunks of `--batch` molecules, one after the other;
- over HTTP: `molleak serve` in its own process (torch threads 1) on 127.0.0.1, `--clients` threads
  each posting its own share in requests of `--batch` (raw httpx POSTs: the server's throughput);
- end to end: one `RemoteVictim` (client-side parsing, cache and batching) on another fresh sample.

Prints molecules/s both ways, the ratio, request latency p50/p99, errors, the server's RSS before and
after, and `uptime` before and after (the machine is shared: wall times move with its load).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q)) if values else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: Path, work: Path, n_keys: int) -> tuple[subprocess.Popen, str]:
    import httpx

    from molleak.serve.keys import key_sha256

    keys = work / "keys.toml"
    keys.write_text("".join(f'[keys.client{i}]\nsha256 = "{key_sha256(f"key-{i}")}"\n' for i in range(n_keys)))
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "molleak.cli.main", "-q", "serve", "--victim", str(checkpoint),
                             "--keys", str(keys), "--port", str(port)], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def http_run(url: str, smiles: list[str], clients: int, batch: int) -> tuple[float, list[float], int]:
    """`clients` threads, each posting its share in requests of `batch`; (seconds, latencies, errors)."""
    import httpx

    shares = [smiles[i::clients] for i in range(clients)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(i: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer key-{i}"}, timeout=300) as http:
            for start in range(0, len(shares[i]), batch):
                t = time.perf_counter()
                r = http.post(f"{url}/v1/embed", json={"smiles": shares[i][start : start + batch]})
                dt = time.perf_counter() - t
                ok = r.status_code == 200 and not r.json()["errors"]
                with lock:
                    latencies.append(dt)
                    errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, errors[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1536, help="molecules per repetition")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256, help="molecules per request / per in-process call")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    import torch

    from molleak.data.sources import read_moses
    from molleak.models.base import build_encoder, load_encoders
    from molleak.models.checkpoint import save_checkpoint
    from molleak.models.victim import Victim
    from molleak.victims.remote import RemoteVictim

    torch.set_num_threads(1)
    print(f"start: {uptime()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench_serve_"))
    load_encoders()
    torch.manual_seed(0)
    checkpoint = work / "gin.pt"
    save_checkpoint(checkpoint, build_encoder("gin", {"num_layers": 5, "emb_dim": 300}), {"strategy": "untrained"})
    raw = read_moses("train")
    samples = [[raw[i] for i in np.random.default_rng(rep).choice(len(raw), args.n, replace=False)]
               for rep in range(args.reps + 2)]  # the repetitions, the end-to-end run, the warm-up
    proc, url = start_server(checkpoint, work, args.clients + 1)
    try:
        rss0 = rss_mib(proc.pid)  # before any request
        warm = samples[-1][: args.batch]  # warm-up both ways: the first batches import and allocate
        http_run(url, warm, 1, args.batch)
        Victim.from_checkpoint(checkpoint).embed(warm)
        print(f"{args.n} MOSES train molecules per repetition, {args.clients} clients, {args.batch} per request, "
              f"torch threads 1; server RSS {rss0:.0f} MiB after start")
        local_rates, http_rates, local_lat, http_lat, errors, local_rss = [], [], [], [], 0, 0.0
        for rep in range(args.reps):
            smiles = samples[rep]
            victim = Victim.from_checkpoint(checkpoint)
            victim.embed(["CCO"])  # the same warm-up in process
            before = rss_mib(os.getpid())
            t0 = time.perf_counter()
            for start in range(0, len(smiles), args.batch):
                t = time.perf_counter()
                victim.embed(smiles[start : start + args.batch])
                local_lat.append(time.perf_counter() - t)
            local_rates.append(len(smiles) / (time.perf_counter() - t0))
            local_rss += rss_mib(os.getpid()) - before
            seconds, lat, err = http_run(url, smiles, args.clients, args.batch)
            http_rates.append(len(smiles) / seconds)
            http_lat += lat
            errors += err
            print(f"rep {rep}: in process {local_rates[-1]:7.0f} mol/s, HTTP {http_rates[-1]:7.0f} mol/s "
                  f"({http_rates[-1] / local_rates[-1]:.0%})", flush=True)
        remote = RemoteVictim(url, api_key=f"key-{args.clients}")
        t0 = time.perf_counter()
        remote.embed(samples[-2])
        e2e = args.n / (time.perf_counter() - t0)
        rss1 = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    loc, http = float(np.median(local_rates)), float(np.median(http_rates))
    print(f"in process : median {loc:7.0f} mol/s (reps {', '.join(f'{r:.0f}' for r in local_rates)}); "
          f"per call of {args.batch}: p50 {pct(local_lat, 50):.0f} ms, p99 {pct(local_lat, 99):.0f} ms")
    print(f"over HTTP  : median {http:7.0f} mol/s (reps {', '.join(f'{r:.0f}' for r in http_rates)}) = "
          f"{http / loc:.0%} of in process; per request: p50 {pct(http_lat, 50):.0f} ms, p99 {pct(http_lat, 99):.0f} ms; "
          f"{errors} errors in {len(http_lat)} requests")
    print(f"end to end : one RemoteVictim client, {args.n} molecules: {e2e:7.0f} mol/s ({remote.queries} charged, "
          f"requests of {remote.batch_size})")
    print(f"server RSS : {rss0:.0f} MiB after start, {rss1:.0f} MiB after {args.n * (args.reps + 1) + len(warm)} molecules "
          f"(in process, the same embedding grew this process by {local_rss:.0f} MiB over {args.n * args.reps})")
    print(f"end: {uptime()}")


if __name__ == "__main__":
    main()
