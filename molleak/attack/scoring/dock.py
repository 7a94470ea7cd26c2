"""The docking baseline: AutoDock Vina score against a receptor and box the user gives.

Ligands: RDKit 3D conformer (ETKDG, seeded, MMFF-relaxed) prepared by `meeko` into PDBQT. Each
worker process builds the receptor's grid maps once, then docks ligand after ligand; the parent
kills a worker whose ligand runs past `timeout` seconds (recording the failure) and starts a fresh
one. Failures (embedding, preparation, timeout, Vina errors) are recorded, never fatal: the
molecule's score is NaN and `info["failures"]` counts them by reason. Results are cached by
canonical SMILES in a TSV per (receptor sha256, box, exhaustiveness, seed), so reruns and other
runs reuse them. The score is -energy (kcal/mol): the better the docking, the higher.

Named targets (`target=fa7|parp1|5ht1b`) take their box from `BOXES` (the FREED benchmark's boxes)
and their receptor from `receptor_dir/<target>.pdbqt`; the receptor files are not shipped.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.errors import InputFileError, MolleakError
from molleak.runs import sha256_file, write_atomic

if TYPE_CHECKING:  # pragma: no cover
    from molleak.attack.context import AttackContext

log = logging.getLogger(__name__)

#: (center, size) of the FREED docking boxes, in Angstrom.
BOXES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "fa7": ((10.131, 41.879, 32.097), (20.673, 20.198, 21.362)),
    "parp1": ((26.413, 11.282, 27.238), (18.521, 17.479, 19.995)),
    "5ht1b": ((-26.602, 5.277, 17.898), (22.5, 22.5, 22.5)),
}


@dataclass(frozen=True)
class DockSettings:
    """A receptor, its box and the Vina settings: everything that decides a docking score."""

    receptor: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    exhaustiveness: int = 1
    seed: int = 0

    @property
    def vina_seed(self) -> int:
        """Vina's seed for this run's seed: Vina takes seed 0 as "draw one at random" and keeps a C int, so
        run seeds 0, 1, ... become 1, 2, ... (with a fixed seed Vina re-seeds every docking, so an energy
        depends on the ligand, receptor, box and seed only, not on what the worker docked before)."""
        return self.seed % (2**31 - 1) + 1

    def cache_key(self) -> str:
        # "vina_seed" marks caches made since run seed 0 stopped meaning an unseeded Vina
        text = f"{sha256_file(self.receptor)}|{self.center}|{self.size}|{self.exhaustiveness}|{self.seed}|vina_seed"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


def _triple(value: Any, what: str) -> tuple[float, float, float]:
    if isinstance(value, str):
        value = value.split(",")
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise MolleakError(f"dock: {what} must be three numbers x,y,z, got {value!r}") from None
    if len(out) != 3:
        raise MolleakError(f"dock: {what} must be three numbers x,y,z, got {value!r}")
    return out  # type: ignore[return-value]


def ligand_pdbqt(smiles: str, seed: int = 0) -> str:
    """A prepared 3D ligand (PDBQT text) for a SMILES.

    Raises:
        ValueError: the SMILES does not parse, cannot be embedded in 3D, or meeko rejects it.
    """
    from meeko import MoleculePreparation, PDBQTWriterLegacy
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from molleak.chem import rdkit_quiet

    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            raise ValueError("invalid SMILES")
        mol = Chem.AddHs(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = seed
        if AllChem.EmbedMolecule(mol, params) != 0:
            params.useRandomCoords = True
            if AllChem.EmbedMolecule(mol, params) != 0:
                raise ValueError("3D embedding failed")
        AllChem.MMFFOptimizeMolecule(mol)
    setups = MoleculePreparation().prepare(mol)
    text, ok, err = PDBQTWriterLegacy.write_string(setups[0])
    if not ok:
        raise ValueError(f"meeko: {err.strip()[:100]}")
    return text


def _worker(settings: DockSettings, tasks: mp.Queue, results: mp.Queue, worker_id: int) -> None:
    """Build the grid once, then dock (index, smiles) tasks until a None arrives."""
    from vina import Vina

    vina = Vina(sf_name="vina", cpu=1, seed=settings.vina_seed, verbosity=0)
    vina.set_receptor(settings.receptor)
    vina.compute_vina_maps(center=list(settings.center), box_size=list(settings.size))
    results.put((worker_id, None, None, "ready"))
    while (task := tasks.get()) is not None:
        index, smiles = task
        try:
            vina.set_ligand_from_string(ligand_pdbqt(smiles, settings.seed))
            vina.dock(exhaustiveness=settings.exhaustiveness, n_poses=1)
            results.put((worker_id, index, float(vina.energies(n_poses=1)[0][0]), ""))
        except Exception as exc:  # a bad ligand must not stop the run
            results.put((worker_id, index, None, f"{type(exc).__name__}: {str(exc)[:80]}"))


class _Pool:
    """Worker processes, one ligand in flight each, killed and replaced on timeout."""

    def __init__(self, settings: DockSettings, workers: int):
        self.settings = settings
        self.ctx = mp.get_context("fork")
        self.results: mp.Queue = self.ctx.Queue()
        self.procs: dict[int, tuple[Any, Any]] = {}
        self.next_id = 0
        for _ in range(workers):
            self._spawn()

    def _spawn(self) -> int:
        wid, self.next_id = self.next_id, self.next_id + 1
        tasks = self.ctx.Queue()
        proc = self.ctx.Process(target=_worker, args=(self.settings, tasks, self.results, wid), daemon=True)
        proc.start()
        self.procs[wid] = (proc, tasks)
        return wid

    def kill(self, wid: int) -> None:
        proc, _ = self.procs.pop(wid)
        proc.kill()  # this pool started the process; it is stuck inside Vina
        proc.join()

    def close(self) -> None:
        for wid, (proc, tasks) in list(self.procs.items()):
            tasks.put(None)
            proc.join(timeout=5)
            if proc.is_alive():
                self.kill(wid)
        self.procs.clear()


def cache_file(cache_dir: str | os.PathLike, settings: DockSettings) -> Path:
    """The TSV cache of one settings' energies (smiles, energy or empty, failure reason)."""
    return Path(cache_dir) / f"vina_{settings.cache_key()}.tsv"


def read_cache(path: Path) -> dict[str, tuple[float, str]]:
    """SMILES -> (energy, NaN when it failed; failure reason or "") from a cache TSV (empty when absent)."""
    cache: dict[str, tuple[float, str]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            smi, energy, reason = line.split("\t")
            cache[smi] = (float(energy) if energy else float("nan"), reason)
    return cache


def write_cache(path: Path, cache: dict[str, tuple[float, str]]) -> None:
    write_atomic(path, "".join(f"{s}\t{'' if np.isnan(e) else e}\t{r}\n" for s, (e, r) in cache.items()))


def dock_smiles(smiles: list[str], settings: DockSettings, *, workers: int = 2, timeout: float = 60.0,
                cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """Vina energies (kcal/mol) of molecules; NaN where docking failed.

    Args:
        smiles: canonical SMILES to dock.
        settings: receptor, box, exhaustiveness and seed.
        workers: processes, each with its own grid maps.
        timeout: seconds one ligand may take (including grid setup of a fresh worker).
        cache_dir: where the per-settings TSV cache lives (None: no cache).

    Returns:
        (energies, failures): failures maps SMILES to the reason it has no energy.
    """
    cache_path = cache_file(cache_dir, settings) if cache_dir is not None else None
    cache = read_cache(cache_path) if cache_path is not None else {}
    todo = [s for s in dict.fromkeys(smiles) if s not in cache]

    def save() -> None:
        if cache_path is not None:
            write_cache(cache_path, cache)

    if todo:
        log.info("dock: %d ligands to dock (%d cached) on %d workers", len(todo), len(smiles) - len(todo), workers)
        try:
            _run_pool(todo, settings, max(1, min(workers, len(todo))), timeout, cache, save)
        finally:  # an interrupted run keeps what it docked
            save()
    energies = np.array([cache[s][0] for s in smiles], dtype=np.float64)
    failures = {s: cache[s][1] for s in smiles if cache[s][1]}
    return energies, failures


def _run_pool(todo: list[str], settings: DockSettings, workers: int, timeout: float,
              cache: dict[str, tuple[float, str]], save: Any = None, save_every: int = 25) -> None:
    pool = _Pool(settings, workers)
    pending = list(enumerate(todo))[::-1]
    busy: dict[int, tuple[int, float]] = {}  # worker -> (task index, start time)
    idle: list[int] = []
    started = {wid: time.monotonic() for wid in pool.procs}  # grid setup counts against the first ligand
    done = 0
    try:
        while done < len(todo):
            while idle and pending:
                wid = idle.pop()
                index, smi = pending.pop()
                pool.procs[wid][1].put((index, smi))
                busy[wid] = (index, time.monotonic())
            try:
                wid, index, energy, reason = pool.results.get(timeout=1.0)
            except queue.Empty:
                wid = index = None
            if index is None and wid is not None:  # a worker finished its grid
                started.pop(wid, None)
                if wid in pool.procs:
                    idle.append(wid)
            elif index is not None:
                busy.pop(wid, None)
                if todo[index] in cache:  # a killed worker's answer that arrived after its timeout
                    continue
                cache[todo[index]] = (float("nan") if energy is None else energy, reason)
                done += 1
                if save is not None and done % save_every == 0:
                    save()
                    log.info("dock: %d of %d ligands docked", done, len(todo))
                if wid in pool.procs:
                    idle.append(wid)
            now = time.monotonic()
            for wid, (index, t0) in list(busy.items()):
                if now - t0 > timeout:
                    log.warning("dock: %s timed out after %.0f s", todo[index], timeout)
                    pool.kill(wid)
                    busy.pop(wid)
                    cache[todo[index]] = (float("nan"), f"timeout after {timeout:g} s")
                    done += 1
                    if pending:
                        started[pool._spawn()] = now
            for wid, t0 in list(started.items()):
                if now - t0 > timeout + 60 and wid in pool.procs:
                    raise MolleakError(f"dock: a Vina worker could not build the grid for {settings.receptor} "
                                       f"within {timeout + 60:g} s")
    finally:
        pool.close()


@SCORES.register("dock")
class DockScore(Score):
    """-Vina energy against a receptor and box, on the whole pool or a seeded subsample.

    Options: `receptor` (PDBQT path) with `center` and `size` ("x,y,z"), or `target` (fa7, parp1,
    5ht1b) with `receptor_dir`; `exhaustiveness` (1), `subsample` (dock only this many molecules,
    drawn with the run's seed; the rest score NaN and are left out of rankings), `workers`
    (default: the usable cores), `timeout` (s per ligand), `cache_dir`.
    """

    name = "dock"
    uses_victim = False

    def __init__(self, receptor: str | None = None, center: Any = None, size: Any = None, target: str | None = None,
                 receptor_dir: str | None = None, exhaustiveness: int = 1, subsample: int | None = None,
                 workers: int | None = None, timeout: float = 60.0, cache_dir: str | None = None):
        if target is not None:
            if target not in BOXES:
                raise MolleakError(f"dock: unknown target {target!r}; choose from {', '.join(BOXES)} or give receptor+center+size")
            if receptor is None:
                if receptor_dir is None:
                    raise MolleakError(f"dock: target {target} needs receptor_dir (holding {target}.pdbqt) or receptor")
                receptor = str(Path(receptor_dir) / f"{target}.pdbqt")
            center = center if center is not None else BOXES[target][0]
            size = size if size is not None else BOXES[target][1]
        if receptor is None or center is None or size is None:
            raise MolleakError("dock: give receptor, center and size (or target and receptor_dir)")
        if not Path(receptor).is_file():
            raise InputFileError(f"dock: receptor file not found: {receptor}")
        self.receptor, self.center, self.size = str(receptor), _triple(center, "center"), _triple(size, "size")
        self.target = target
        self.exhaustiveness = int(exhaustiveness)
        self.subsample = None if subsample is None else int(subsample)
        self.workers, self.timeout, self.cache_dir = workers, float(timeout), cache_dir

    def chosen(self, n: int, seed: int) -> np.ndarray:
        """Indices of the pool's `n` unique molecules this score docks with the run's `seed`."""
        if self.subsample is not None and self.subsample < n:
            return np.sort(np.random.default_rng([seed, 11]).choice(n, size=self.subsample, replace=False))
        return np.arange(n)

    def settings(self, seed: int) -> DockSettings:
        return DockSettings(self.receptor, self.center, self.size, self.exhaustiveness, seed)

    def __call__(self, ctx: AttackContext) -> ScoreResult:
        from molleak.chem import default_workers

        n = len(ctx.smiles)
        chosen = self.chosen(n, ctx.seed)
        settings = self.settings(ctx.seed)
        # a plan may have docked these molecules already, as cells (`molleak.plans.dock`), into this cache
        cache_dir = self.cache_dir or (Path(ctx.work_dir) / "dock_cache" if ctx.work_dir is not None else None)
        t0 = time.perf_counter()
        energies, failures = dock_smiles([ctx.smiles[i] for i in chosen], settings,
                                         workers=self.workers or default_workers(), timeout=self.timeout,
                                         cache_dir=cache_dir)
        values = np.full(n, np.nan)
        values[chosen] = -energies
        reasons: dict[str, int] = {}
        for r in failures.values():
            key = r.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        info = {"target": self.target, "receptor": self.receptor, "center": self.center, "size": self.size,
                "exhaustiveness": self.exhaustiveness, "n_docked": int(np.isfinite(energies).sum()),
                "n_subsample": len(chosen), "failures": reasons, "failure_examples": dict(list(failures.items())[:5]),
                "seconds": round(time.perf_counter() - t0, 2)}
        return ScoreResult(values, info=info)
