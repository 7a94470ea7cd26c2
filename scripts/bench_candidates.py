"""Benchmark the candidate space and the membership oracle (issue 3). Prints every figure it measures.

    .venv/bin/python scripts/bench_candidates.py --small /tmp/bench/small --standard /tmp/bench/standard

Tiers are built first if missing (`molleak data prepare --tier small|standard --seed SEED`).
Figures:

1. vocabulary mined from the small tier's aux set (84 templates, 91 motifs);
2. its full one-step pool: records, unique, rejected at finalisation, time; plus every record rebuilt the
   plain way (`apply_actions` + `finalize`) with exceptions caught and counted (crashes);
3. two-step enumeration of the largest 4-site template (most records; ties: most frequent), written to
   disk, against the public reference (552k records in 296 s on one core);
4. substructure labels of 20,000 candidates (all one-step molecules, then a seeded sample of two-step
   molecules) against the standard tier's private set (50,000), bank index built cold, then labels with
   counts off (the boolean stops at the first match) and with counts on.

Wall times depend on what else runs on the machine: `uptime` is printed before and after, and CPU
seconds (workers + parent) are printed beside each wall time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REFERENCE_RECORDS, REFERENCE_SECONDS = 552_000, 296.0  # public code, one 4-site template, one core


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def ensure_tier(path: Path, tier: str, seed: int) -> Path:
    if not (path / "aux.smi").is_file():
        from molleak.data.splits import prepare_tier

        print(f"building tier {tier} (seed {seed}) in {path}", flush=True)
        prepare_tier(tier, seed, path)
    return path


_PLAIN: tuple[list[str], list[str]] | None = None


def _plain_template(t: int) -> tuple[list[str | None], int]:
    """Every one-step record of template t rebuilt with apply_actions + finalize; (smiles, crashes)."""
    from molleak.candidates.assemble import apply_actions, finalize, motif_points, open_points
    from molleak.chem import rdkit_quiet

    templates, motifs = _PLAIN
    out: list[str | None] = []
    crashes = 0
    with rdkit_quiet():
        n_points = len(open_points(templates[t]))
        for p in range(n_points):
            for i, m in enumerate(motifs):
                for j in range(len(motif_points(m))):
                    try:
                        out.append(finalize(apply_actions(templates[t], [(p, i, j)], motifs)))
                    except Exception:  # noqa: BLE001 - the point is to count crashes, not to stop
                        crashes += 1
                        out.append(None)
    return out, crashes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=Path, default=Path("/tmp/bench/small"), help="small tier dir")
    ap.add_argument("--standard", type=Path, default=Path("/tmp/bench/standard"), help="standard tier dir")
    ap.add_argument("--seed", type=int, default=0, help="tier seed and candidate sample seed")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all usable cores)")
    ap.add_argument("--n-candidates", type=int, default=20_000)
    ap.add_argument("--skip", nargs="*", default=[], choices=["onestep", "twostep", "label"])
    args = ap.parse_args()

    from molleak.candidates.enumerate import EnumerationStats, enumerate_pool, write_enumeration
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.chem import default_workers
    from molleak.data.smiles_io import read_smiles
    from molleak.oracle import Bank, clear_memory_cache, label
    from molleak.runs import package_versions

    workers = args.workers or default_workers()
    print(f"cores usable: {default_workers()}, workers: {workers}; versions: {package_versions()}")
    print(f"uptime before: {uptime()}", flush=True)
    small = ensure_tier(args.small, "small", args.seed)

    aux = read_smiles(small / "aux.smi", what="aux set").smiles
    t0 = time.perf_counter()
    vocab = mine_vocabulary(aux, 84, 91, workers=workers, source=str(small / "aux.smi"))
    print(f"[vocab] {len(vocab.templates)} templates, {len(vocab.motifs)} motifs ({vocab.motif_slots()} slots) "
          f"from {len(aux)} aux molecules in {time.perf_counter() - t0:.1f} s; skipped: {vocab.meta['skipped']}",
          flush=True)

    one_smiles: list[str] = []
    if "onestep" not in args.skip or "label" not in args.skip:
        st = EnumerationStats()
        recs = enumerate_pool(vocab, steps=1, workers=workers, stats=st)
        one_smiles = sorted({r.smiles for r in recs})
        print(f"[one-step] records {st.records}, unique {st.unique}, rejected at finalisation {st.rejected}; "
              f"{st.seconds:.2f} s wall, {st.cpu_seconds:.2f} s CPU", flush=True)
    if "onestep" not in args.skip:
        global _PLAIN
        _PLAIN = (vocab.templates, vocab.motifs)
        t0 = time.perf_counter()
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_plain_template, range(len(vocab.templates)))
        plain = [s for part, _ in parts for s in part]
        crashes = sum(c for _, c in parts)
        fast = [r.smiles for r in recs]
        rejected_plain = sum(s is None for s in plain)
        agree = sum(a == b for a, b in zip(plain, fast, strict=False)) if len(plain) == len(fast) else -1
        print(f"[one-step plain rebuild] {len(plain)} records through attach + finalize: {crashes} crashes, "
              f"{rejected_plain} rejected at finalisation, {agree} of {len(fast)} equal to the fast pool; "
              f"{time.perf_counter() - t0:.1f} s", flush=True)

    two_smiles: list[str] = []
    if "twostep" not in args.skip or "label" not in args.skip:
        four = [t for t in range(len(vocab.templates)) if vocab.template_points(t) == 4]
        if not four:
            print("[two-step] the vocabulary has no 4-site template")
        else:
            t_big = four[0]  # every 4-site template has the same record count; the first is the most frequent
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "pool2.tsv"
                st = write_enumeration(vocab, out, steps=2, templates=[t_big], workers=workers)
                size = out.stat().st_size
                from molleak.candidates.assemble import apply_actions, finalize
                from molleak.candidates.pool import iter_pool

                records = list(iter_pool(out))
                if "label" not in args.skip:
                    two_smiles = list(dict.fromkeys(r.smiles for r in records))
                sample = random.Random(args.seed).sample(records, min(2000, len(records)))
                bad = sum(finalize(apply_actions(vocab.templates[r.template], r.actions, vocab.motifs)) != r.smiles
                          for r in sample)
                del records
                print(f"[two-step] {len(sample)} sampled records rebuilt with attach + finalize: {bad} differ",
                      flush=True)
            per_rec = st.seconds / st.records
            ref_per_rec = REFERENCE_SECONDS / REFERENCE_RECORDS
            print(f"[two-step] template {t_big} {vocab.templates[t_big]} (4 sites): records {st.records}, unique "
                  f"{st.unique}, rejected {st.rejected}; {st.seconds:.1f} s wall, {st.cpu_seconds:.1f} s CPU, "
                  f"{st.records / st.seconds:,.0f} records/s, file {size / 1e6:.0f} MB; reference "
                  f"{REFERENCE_RECORDS / REFERENCE_SECONDS:,.0f} records/s on one core -> "
                  f"{ref_per_rec / per_rec:.1f}x faster per record (wall), "
                  f"{ref_per_rec / (st.cpu_seconds / st.records):.1f}x per CPU-second", flush=True)

    if "label" not in args.skip:
        standard = ensure_tier(args.standard, "standard", args.seed)
        private = read_smiles(standard / "private.smi", what="private set").smiles
        rng = random.Random(args.seed)
        rest = [s for s in two_smiles if s not in set(one_smiles)]
        rng.shuffle(rest)
        cands = (one_smiles + rest)[: args.n_candidates]
        print(f"[label] {len(cands)} candidates ({min(len(one_smiles), len(cands))} one-step, the rest two-step) "
              f"vs {len(private)} private molecules of the standard tier", flush=True)
        t0 = time.perf_counter()
        bank = Bank(private, name="standard private", cache_dir=False, workers=workers).build()
        b = bank.build_info
        print(f"[label] bank index built cold: {b['seconds']:.1f} s wall, {b['cpu_seconds']:.1f} s CPU", flush=True)
        for counts in (False, True):
            clear_memory_cache()
            lab = label(cands, bank, workers=workers, counts=counts, cache_dir=False)
            total = time.perf_counter() - t0 if not counts else None
            print(f"[label] counts={'on' if counts else 'off'}: {lab.summary()}; "
                  f"{len(cands) / lab.seconds:,.0f} labels/s wall, {lab.stats['cpu_seconds']:.1f} s CPU"
                  + (f"; whole job with the cold index build {total:.1f} s" if total is not None else ""),
                  flush=True)
    print(f"uptime after: {uptime()}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
