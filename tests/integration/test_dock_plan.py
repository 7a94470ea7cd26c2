"""Docking as plan cells (`molleak.plans.dock`), with AutoDock Vina and the shared receptors: a chunk per
cell gives the energies of docking the molecules directly, reruns dock nothing, and the bench's dock
cells score from what the dock cells docked. Skipped when Vina, meeko or the receptors are absent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from molleak.cli.main import main

RECEPTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "receptors"
PARP1 = RECEPTORS / "parp1.pdbqt"

pytestmark = [pytest.mark.dock, pytest.mark.skipif(not PARP1.is_file(), reason="shared receptors not present")]

#: small ligands (and one that does not parse) in a small box around PARP1's site: seconds each
LIGANDS = ["Oc1ccccc1", "CCO", "c1ccncc1", "C1CC"]


@pytest.fixture()
def settings():
    pytest.importorskip("vina")
    pytest.importorskip("meeko")
    from molleak.attack.scoring.dock import BOXES, DockSettings

    return DockSettings(str(PARP1), BOXES["parp1"][0], (10.0, 10.0, 10.0), exhaustiveness=1, seed=0)


def test_vina_is_seeded_for_run_seed_zero(settings):
    """Vina reads seed 0 as "draw a random seed": run seed 0 must not mean an unseeded docking."""
    from molleak.attack.scoring.dock import dock_smiles

    assert settings.vina_seed != 0
    first, _ = dock_smiles(LIGANDS[:2], settings, workers=1, timeout=120)
    again, _ = dock_smiles(LIGANDS[:2][::-1], settings, workers=2, timeout=120)  # other order, other workers
    assert np.isfinite(first).all() and np.array_equal(first, again[::-1])


def test_docking_cells_give_the_direct_energies_and_resume(settings, tmp_path):
    from molleak.attack.scoring.dock import cache_file, dock_smiles, read_cache
    from molleak.plans.dock import dock_plan
    from molleak.plans.runner import LocalExecutor

    direct, direct_failures = dock_smiles(LIGANDS, settings, workers=1, timeout=120)
    energies, failures, plan = dock_plan(LIGANDS, settings, tmp_path / "cells", tmp_path / "cache",
                                         executor=LocalExecutor(1), chunk=2, timeout=120)
    assert (plan.ran, plan.failed) == (2, 0)  # 4 molecules in chunks of 2
    assert np.array_equal(energies, direct, equal_nan=True)
    assert np.isnan(energies[-1]) and failures == direct_failures and "invalid SMILES" in failures["C1CC"]
    cache = read_cache(cache_file(tmp_path / "cache", settings))
    assert list(cache) == LIGANDS

    # a rerun finds every molecule in the cache: no cell at all
    _, _, again = dock_plan(LIGANDS, settings, tmp_path / "cells", tmp_path / "cache", chunk=2, timeout=120)
    assert again.records == {}
    # the cache lost (a driver killed before merging): the cells are resumed by key, nothing re-docked
    cache_file(tmp_path / "cache", settings).unlink()
    resumed, _, plan = dock_plan(LIGANDS, settings, tmp_path / "cells", tmp_path / "cache", chunk=2, timeout=120)
    assert (plan.ran, plan.resumed) == (0, 2) and np.array_equal(resumed, direct, equal_nan=True)


@pytest.mark.slow
def test_bench_dock_cells_dock_ahead_and_score_what_the_cells_docked(tiny_tier, tmp_path, capsys, caplog):
    pytest.importorskip("vina")
    pytest.importorskip("meeko")
    from molleak.attack.scoring.dock import read_cache

    data = tmp_path / "data"
    data.mkdir()
    for name in ("private", "reference", "aux", "holdout", "aux_shifted", "aux_external"):
        shutil.copy(tiny_tier / f"{name}.smi", data / f"{name}.smi")
    receptors = tmp_path / "receptors"  # one target, so the test docks one box
    receptors.mkdir()
    shutil.copy(PARP1, receptors / "parp1.pdbqt")
    bench = tmp_path / "bench"
    words = ["bench", "--suite", "table1", "--data", str(data), "--out", str(bench), "--set", "steps=[1]",
             "--victims", "", "--set", 'baselines=["dock"]', "--set", "fcd=false", "--set", "n_templates=20",
             "--set", "n_motifs=20", "--set", "dock_subsample=3", "--receptors", str(receptors)]
    with caplog.at_level("INFO", logger="molleak.attack.scoring.dock"):
        assert main(words) == 0
    assert "4 cells (2 done, 0 resumed, 2 skipped)" in capsys.readouterr().out
    # Vina ran once, in the dock cell; the bench's dock cell found all three molecules in the cache
    assert [r.getMessage() for r in caplog.records if "ligands to dock" in r.getMessage()] == \
        ["dock: 3 ligands to dock (0 cached) on 1 workers"]  # fa7 and 5ht1b: no receptor
    cell = "nov-s1-dock.parp1-aux-seed0"
    docked = {}
    for record in sorted((bench / "dock_cells").glob(f"{cell}-*/cell.json")):
        docked.update(json.loads(record.read_text())["result"]["energies"])
    assert len(docked) == 3
    [cache] = (bench / "dock_cache").glob("vina_*.tsv")
    assert {s: e for s, (e, _) in read_cache(cache).items()} == {s: np.nan if e is None else e
                                                                 for s, e in docked.items()}
    scored = {}
    for line in (bench / "cells" / cell / "scores.tsv").read_text().splitlines()[1:]:
        smiles, score = line.split("\t")[:2]
        if score != "nan":
            scored[smiles] = float(score)
    assert scored == {s: -e for s, e in docked.items() if e is not None}  # the score is -energy, from the cells

    assert main(words) == 0  # a rerun: every cell resumed, no docking cell made
    assert "2 resumed" in capsys.readouterr().out
    assert len(list((bench / "dock_cells").glob(f"{cell}-*"))) == 1
