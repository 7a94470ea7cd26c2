"""`molleak evaluate`: score an extraction run against the private set (the only reader of it).

`evaluate_run(run_dir, private_path)` labels every molecule of the run's `scores.tsv` against the
private set (substructure and exact hits, `molleak.oracle`), recomputes the run's ranking with its
seed (`rank_order`, the same rule extraction used) and writes `RUN_DIR/results.json`:

- `precision_{substructure,exact}@{50,100,200}` with `_ci95` (Wilson 95% interval) and `hits_...`;
- `base_rate_substructure`, `base_rate_exact`: the precision a random ranking has in expectation;
- `auc`, `tpr@1%fpr`, `tpr@0.1%fpr` (substructure labels) and `auc_exact`, ... over every scored
  molecule of the pool;
- `fcd_core@K`: FCD of the top-K against the private molecules containing one of the top-K's
  template cores (capped at `fcd_max_reference`, seeded subsample); `fcd_random@K`: mean (and `_sd`)
  FCD against `fcd_seeds` seeded private subsamples of size K (FCD on few samples is biased);
- `queries`, `seconds_score`, `seconds_total` from the run; `banks`: the same pool metrics against
  any extra bank (e.g. the reference set P': `extra_banks={"reference": path}`).

Other analyses call the lower-level pieces: `read_scores`, `bank_labels`, `molleak.evaluate.metrics.pool_metrics`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molleak import rundir
from molleak.errors import InputFileError
from molleak.evaluate.fcd import fcd_score
from molleak.evaluate.metrics import K_LIST, pool_metrics
from molleak.ranking import rank_order
from molleak.runs import sha256_file, sha256_lines, write_atomic, write_json_atomic

log = logging.getLogger(__name__)

_BANKS: dict[str, Any] = {}  # bank sha256 -> indexed oracle Bank, reused across runs of one process


@dataclass
class RunScores:
    """A run's `scores.tsv` and settings."""

    run_dir: Path
    smiles: list[str]
    scores: np.ndarray
    provenance: list[str]
    seed: int
    k: int
    extract: dict[str, Any]


def read_scores(run_dir: str | Path) -> RunScores:
    """Read a run directory's scores, seed and K (through the run contract, `molleak.rundir`)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputFileError(f"run directory not found: {run}")
    config = rundir.read_config(run)
    extract = rundir.read_json(run / rundir.EXTRACT_FILE, "extraction summary")
    table = rundir.read_scores_table(run)
    return RunScores(run, table.smiles, np.asarray(table.scores, dtype=np.float64), table.provenance, config.seed,
                     config.k, extract)


def parse_provenance(text: str) -> dict[str, str]:
    """`template=3;core=c1ccccc1;actions=...` -> dict."""
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def oracle_bank(bank_smiles: Sequence[str], name: str = "bank") -> Any:
    """The oracle's indexed `Bank` of these molecules (built once per process; the oracle caches it on disk)."""
    from molleak.oracle import Bank

    bank = Bank(list(bank_smiles), name=name)
    return _BANKS.setdefault(bank.sha256, bank)


def bank_labels(smiles: Sequence[str], bank_smiles: Sequence[str], name: str = "bank") -> Any:
    """Substructure and exact labels of `smiles` against a bank (`molleak.oracle.label`, cached there)."""
    from molleak.oracle import label

    return label(list(smiles), oracle_bank(bank_smiles, name), counts=False)


def molecules_containing(cores: Sequence[str], bank_smiles: Sequence[str]) -> list[str]:
    """Bank molecules that contain at least one of the cores (pattern screen, then substructure match)."""
    from molleak.chem import to_mol
    from molleak.oracle.bank import pattern_bits

    bank = oracle_bank(bank_smiles)
    hits: set[int] = set()
    for core in dict.fromkeys(cores):
        query = to_mol(core)
        if query is None:
            continue
        for k in bank.screen(pattern_bits([query])[0]).tolist():
            if k not in hits and (target := bank.mol(k)) is not None and target.HasSubstructMatch(query):
                hits.add(k)
    return [bank.smiles[k] for k in sorted(hits)]


def fcd_metrics(top: list[str], provenance: list[str], private: list[str], seed: int, *, seeds: int = 5,
                max_reference: int = 5000) -> dict[str, Any]:
    """FCD of the top-K against core-containing private molecules and against random private subsamples."""
    k = len(top)
    out: dict[str, Any] = {}
    if k < 2:
        log.warning("FCD skipped: the top-K holds %d molecule(s)", k)
        return out
    rng = np.random.default_rng([seed, 17])
    cores = [c for p in provenance if (c := parse_provenance(p).get("core"))]
    if cores:
        ref = molecules_containing(cores, private)
        out["fcd_core_reference_size"] = len(ref)
        if len(ref) > max_reference:
            ref = [ref[i] for i in np.sort(rng.choice(len(ref), size=max_reference, replace=False))]
            out["fcd_core_reference_size_used"] = max_reference
        out[f"fcd_core@{k}"] = fcd_score(top, ref) if len(ref) >= 2 else float("nan")
    else:
        log.warning("FCD against core-containing private molecules skipped: provenance names no core")
    values = []
    for s in range(seeds):
        sub = np.random.default_rng([seed, 23, s]).choice(len(private), size=min(k, len(private)), replace=False)
        values.append(fcd_score(top, [private[i] for i in sub]))
    out[f"fcd_random@{k}"] = float(np.mean(values))
    out[f"fcd_random@{k}_sd"] = float(np.std(values))
    out["fcd_random_seeds"] = seeds
    return out


def _clean(obj: Any) -> Any:
    """NaN/inf -> None so results.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def evaluate_run(run_dir: str | Path, private_path: str | Path, *,
                 extra_banks: Mapping[str, str | Path] | None = None, k_list: Sequence[int] = K_LIST,
                 fcd: bool = True, fcd_seeds: int = 5, fcd_max_reference: int = 5000,
                 write: bool = True) -> dict[str, Any]:
    """Evaluate a run against the private set (and optional extra banks); writes `results.json`.

    Args:
        run_dir: an extraction run directory (`molleak.attack.run`).
        private_path: the victim's private training set.
        extra_banks: name -> SMILES file, each giving the same pool metrics under `banks[name]`.
        k_list: the K of precision@K.
        fcd: compute the FCD metrics (about a second per 500 new molecules).
        fcd_seeds: private subsamples FCD is averaged over.
        fcd_max_reference: most core-containing private molecules FCD compares against.
        write: write `results.json` into the run directory.
    """
    from molleak.data.smiles_io import read_smiles

    t0 = time.perf_counter()
    run = read_scores(run_dir)
    private = read_smiles(private_path, what="private set")
    private_sha = sha256_lines(private.smiles)
    labels = bank_labels(run.smiles, private.smiles, "private set")
    results: dict[str, Any] = {
        "method": run.extract.get("method"),
        "inputs_sha256": run.extract.get("inputs_sha256"),
        "private": {"path": str(private_path), "n": len(private.smiles), "sha256": private_sha,
                    "file_sha256": sha256_file(private_path)},
        **pool_metrics(run.scores, {"substructure": labels.substructure, "exact": labels.exact}, k_list, run.seed),
    }
    if write:  # per-molecule ground truth, for the report's hit marks and ROC curves
        lines = ["smiles\tsubstructure\texact"] + [
            f"{smi}\t{int(sub)}\t{int(ex)}"
            for smi, sub, ex in zip(run.smiles, labels.substructure, labels.exact, strict=True)
        ]
        write_atomic(run.run_dir / rundir.LABELS_FILE, "\n".join(lines) + "\n")
    order = rank_order(run.scores, run.seed)
    top_idx = order[: run.k]
    if (run.run_dir / rundir.TOPK_FILE).is_file():
        written = rundir.read_topk(run.run_dir).smiles
        if written != [run.smiles[i] for i in top_idx[: len(written)]]:
            log.warning("%s disagrees with the ranking recomputed from scores.tsv", run.run_dir / rundir.TOPK_FILE)
    if fcd:
        results.update(fcd_metrics([run.smiles[i] for i in top_idx], [run.provenance[i] for i in top_idx],
                                   private.smiles, run.seed, seeds=fcd_seeds, max_reference=fcd_max_reference))
    banks: dict[str, Any] = {}
    for name, path in (extra_banks or {}).items():
        bank = read_smiles(path, what=f"bank {name}")
        lab = bank_labels(run.smiles, bank.smiles, name)
        banks[name] = {"path": str(path), "n": len(bank.smiles), "sha256": sha256_lines(bank.smiles),
                       **pool_metrics(run.scores, {"substructure": lab.substructure, "exact": lab.exact}, k_list,
                                      run.seed)}
    if banks:
        results["banks"] = banks
    for key in ("queries", "seconds_score", "seconds_total"):
        if key in run.extract:
            results[key] = run.extract[key]
    results["k"] = run.k
    results["seconds_evaluate"] = round(time.perf_counter() - t0, 3)
    results = _clean(results)
    if write:
        write_json_atomic(run.run_dir / rundir.RESULTS_FILE, results)
    return results

