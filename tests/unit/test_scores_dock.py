"""Docking with AutoDock Vina: one small ligand in a tiny box, failures recorded, results cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from molleak.errors import MolleakError

RECEPTORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "receptors"
PARP1 = RECEPTORS / "parp1.pdbqt"

pytestmark = [pytest.mark.dock, pytest.mark.skipif(not PARP1.is_file(), reason="shared receptors not present")]


def test_ligand_preparation_gives_pdbqt():
    pytest.importorskip("meeko")
    from molleak.attack.scoring.dock import ligand_pdbqt

    text = ligand_pdbqt("Oc1ccccc1", seed=0)
    assert "ROOT" in text and "ATOM" in text
    with pytest.raises(ValueError, match="invalid SMILES"):
        ligand_pdbqt("C1CC", seed=0)


def test_dock_one_small_ligand_in_a_tiny_box_records_failures_and_caches(tmp_path, monkeypatch):
    pytest.importorskip("vina")
    from molleak.attack.scoring import dock
    from molleak.attack.scoring.dock import BOXES, DockSettings, dock_smiles

    center = BOXES["parp1"][0]
    settings = DockSettings(str(PARP1), center, (10.0, 10.0, 10.0), exhaustiveness=1, seed=0)
    energies, failures = dock_smiles(["Oc1ccccc1", "C1CC"], settings, workers=1, timeout=120, cache_dir=tmp_path)
    assert np.isfinite(energies[0]) and -15 < energies[0] < 5
    assert np.isnan(energies[1]) and "invalid SMILES" in failures["C1CC"]
    assert list(tmp_path.glob("vina_*.tsv"))

    def no_docking(*args, **kwargs):
        raise AssertionError("cached molecules were docked again")

    monkeypatch.setattr(dock, "_run_pool", no_docking)
    again, _ = dock_smiles(["C1CC", "Oc1ccccc1"], settings, workers=1, cache_dir=tmp_path)
    assert again[1] == energies[0] and np.isnan(again[0])


def test_dock_timeout_is_recorded_not_fatal(tmp_path):
    pytest.importorskip("vina")
    from molleak.attack.scoring.dock import BOXES, DockSettings, dock_smiles

    settings = DockSettings(str(PARP1), BOXES["parp1"][0], (8.0, 8.0, 8.0), exhaustiveness=8, seed=0)
    energies, failures = dock_smiles(["CCCCCCCCCCCCCCCCCCCCO"], settings, workers=1, timeout=0.01)
    assert np.isnan(energies[0]) and failures["CCCCCCCCCCCCCCCCCCCCO"].startswith("timeout")


def test_dock_score_options_are_checked():
    from molleak.attack.scoring.base import build_score

    with pytest.raises(MolleakError, match="unknown target"):
        build_score("dock", {"target": "xyz"})
    with pytest.raises(MolleakError, match="receptor_dir"):
        build_score("dock", {"target": "fa7"})
    with pytest.raises(MolleakError, match="three numbers"):
        build_score("dock", {"receptor": str(PARP1), "center": "1,2", "size": "8,8,8"})
    score = build_score("dock", {"target": "parp1", "receptor_dir": str(RECEPTORS), "subsample": 5})
    assert score.center == BOXES_PARP1_CENTER


BOXES_PARP1_CENTER = (26.413, 11.282, 27.238)
