"""A run directory is reused only for the same resolved inputs (the hostile run's wrong-result cases)."""

from __future__ import annotations

import json

import pytest

from molleak.attack.run import ExtractConfig, run_extract
from molleak.errors import MolleakError
from molleak.evaluate.evaluate import evaluate_run
from molleak.rundir import RunDirConflict, read_config, results_current


@pytest.fixture
def base(tmp_path, attacker_dir):
    return {"out": str(tmp_path / "run"), "aux": str(attacker_dir / "aux.smi"), "vocab": str(attacker_dir / "vocab"),
            "k": 10, "seed": 1, "workers": 1}


def test_same_inputs_resume_without_recomputing(base, tmp_path):
    first = run_extract(ExtractConfig(**base, method="qed"))
    before = (tmp_path / "run" / "scores.tsv").read_bytes()
    again = run_extract(ExtractConfig(**base, method="qed"))
    assert again["inputs_sha256"] == first["inputs_sha256"]
    assert (tmp_path / "run" / "scores.tsv").read_bytes() == before


def test_other_inputs_are_refused_and_leave_the_old_run_intact(base, tmp_path, tiny_tier):
    run = tmp_path / "run"
    run_extract(ExtractConfig(**base, method="qed"))
    evaluate_run(run, tiny_tier / "private.smi", fcd=False)
    config_before = (run / "config.json").read_bytes()
    assert results_current(run)
    for change in ({"method": "sa"}, {"seed": 2}, {"k": 11}):
        with pytest.raises(RunDirConflict, match="other inputs"):
            run_extract(ExtractConfig(**{**base, "method": "qed", **change}))
    assert (run / "config.json").read_bytes() == config_before
    # a bad option fails before anything is written
    with pytest.raises(MolleakError, match="bad option"):
        run_extract(ExtractConfig(**base, method="qed", options={"no_such_option": 1}))
    assert (run / "config.json").read_bytes() == config_before


def test_force_starts_afresh_and_drops_the_old_evaluation(base, tmp_path, tiny_tier):
    run = tmp_path / "run"
    run_extract(ExtractConfig(**base, method="qed"))
    evaluate_run(run, tiny_tier / "private.smi", fcd=False)
    summary = run_extract(ExtractConfig(**base, method="sa", force=True))
    assert summary["method"] == "sa" and read_config(run).method == "sa"
    assert not (run / "results.json").exists()  # the old method's results are gone, not shown under "sa"


def test_an_evaluation_of_another_extraction_is_not_current(base, tmp_path, tiny_tier):
    run = tmp_path / "run"
    run_extract(ExtractConfig(**base, method="qed"))
    evaluate_run(run, tiny_tier / "private.smi", fcd=False)
    extract = json.loads((run / "extract.json").read_text())
    extract["inputs_sha256"] = "0" * 64
    (run / "extract.json").write_text(json.dumps(extract))
    assert not results_current(run)


def test_out_that_is_a_file_or_a_foreign_directory_is_refused(base, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(MolleakError, match="not a directory"):
        run_extract(ExtractConfig(**{**base, "out": str(tmp_path / "afile")}, method="qed"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my files")
    with pytest.raises(RunDirConflict, match="holds no molleak run"):
        run_extract(ExtractConfig(**{**base, "out": str(tmp_path / "mine")}, method="qed", force=True))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my files"


def test_another_victim_does_not_resume_a_search(tmp_path, tiny_tier, attacker_dir, tiny_victim):
    """The hostile run: policy rerun with another victim "resumed" the old search (0 new queries)."""
    import torch

    from molleak.models.checkpoint import read_checkpoint_file, save_checkpoint
    from molleak.models.victim import Victim

    other = tmp_path / "other.pt"
    v = Victim.from_checkpoint(tiny_victim)
    with torch.no_grad():
        for p in v.encoder.parameters():
            p.add_(0.01)
    save_checkpoint(other, v.encoder, read_checkpoint_file(tiny_victim).get("provenance", {}))
    cfg = {"out": str(tmp_path / "pol"), "aux": str(attacker_dir / "aux.smi"), "vocab": str(attacker_dir / "vocab"),
           "steps": 1, "method": "random-search", "budget": 40, "k": 5, "seed": 0, "workers": 1,
           "options": {"max_updates": 2, "batch": 4}}
    run_extract(ExtractConfig(**cfg, victim=str(tiny_victim)))
    with pytest.raises(RunDirConflict, match="victim_sha256"):
        run_extract(ExtractConfig(**cfg, victim=str(other)))
    fresh = run_extract(ExtractConfig(**cfg, victim=str(other), force=True))
    assert fresh["queries"] > 0
