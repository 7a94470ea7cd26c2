"""`molleak bench` end to end on tiny data: cells are run directories, reruns resume, tables match the cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molleak.cli.main import main


def mini_tier(tiny_tier: Path, out: Path, n_private: int = 300) -> Path:
    """The tiny tier cut down so a victim trains in seconds (private and reference sets of `n_private`)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("private", "reference"):
        lines = (tiny_tier / f"{name}.smi").read_text().splitlines()[:n_private]
        (out / f"{name}.smi").write_text("\n".join(lines) + "\n")
    for name in ("aux", "holdout", "aux_shifted", "aux_external"):
        (out / f"{name}.smi").write_bytes((tiny_tier / f"{name}.smi").read_bytes())
    return out


def _results(bench: Path, cell: str) -> dict:
    return json.loads((bench / "cells" / cell / "results.json").read_text())


def test_bench_table1_tiny_runs_resumes_and_aggregates(tiny_tier, tmp_path, capsys):
    data = mini_tier(tiny_tier, tmp_path / "data")
    bench = tmp_path / "bench"
    argv = ["bench", "--suite", "table1", "--tier", "tiny", "--data", str(data), "--seeds", "2",
            "--out", str(bench), "--set", "steps=[1]", "--set", 'baselines=["random"]', "--set", "fcd=false",
            "--set", "n_templates=20", "--set", "n_motifs=20", "--bootstrap", "200"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "10 cells (10 done, 0 resumed, 0 skipped)" in first

    config = json.loads((bench / "config.json").read_text())
    assert config["bench"]["seeds"] == 2 and config["bench"]["steps"] == [1]
    assert config["bench"]["encoder_config"] == {"num_layers": 2, "emb_dim": 32}
    ours = [f"attrmask.victim-s1-adapter-aux-seed{s}" for s in range(2)]
    for cell in ours:
        run = bench / "cells" / cell
        for name in ("config.json", "extract.json", "scores.tsv", "topk.tsv", "results.json"):
            assert (run / name).is_file(), name
    assert json.loads((bench / "cells" / ours[1] / "config.json").read_text())["seed"] == 1
    assert (bench / "models" / "attrmask.reference.pt").is_file()
    assert (bench / "models" / "attrmask.untrained.pt").is_file()

    # resumable: a rerun recomputes nothing
    stamp = (bench / "cells" / ours[0] / "results.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert "10 cells (10 done, 10 resumed, 0 skipped)" in capsys.readouterr().out
    assert (bench / "cells" / ours[0] / "results.json").stat().st_mtime_ns == stamp

    # the table reproduces the cells: mean over the two seeds and their range (no interval from 2 seeds)
    table = json.loads((bench / "table.json").read_text())
    rows = table["tables"]["table1"]["rows"]
    row = next(r for r in rows if r["key"]["method"] == "ours (adapter)")
    assert set(row["columns"]) == {"attack", "reference", "untrained", "prior"}
    for column, prefix in (("attack", "attrmask.victim"), ("reference", "attrmask.reference"),
                           ("untrained", "attrmask.untrained"), ("prior", "nov")):
        method = "prior_fp" if column == "prior" else "adapter"
        values = [_results(bench, f"{prefix}-s1-{method}-aux-seed{s}")["precision_substructure@100"] for s in range(2)]
        got = row["columns"][column]["metrics"]["precision_substructure@100"]
        assert got["mean"] == pytest.approx(np.mean(values))
        assert got["ci95"] is None and got["range"] == pytest.approx([min(values), max(values)])
    base = [_results(bench, c)["base_rate_substructure"] for c in ours]
    assert row["columns"]["attack"]["metrics"]["base_rate_substructure"]["mean"] == pytest.approx(np.mean(base))
    assert 0.0 < base[0] < 1.0

    random_row = next(r for r in rows if r["key"]["method"] == "random")
    assert random_row["key"]["victim"] == "(none)"
    assert set(random_row["columns"]) == {"attack", "prior"}  # victim-free: no victim controls
    md = (bench / "table.md").read_text()
    assert "## table1" in md and "### K = 100" in md and "base sub" in md and "P_sub@100 ref. victim" in md


def test_bench_refuses_a_changed_config(tmp_path):
    from molleak.errors import MolleakError
    from molleak.plans.bench.runner import _check_config
    from molleak.plans.bench.suites import BenchConfig

    (tmp_path / "config.json").write_text(json.dumps({"bench": BenchConfig().to_dict()}))
    _check_config(tmp_path, BenchConfig())
    with pytest.raises(MolleakError, match="epochs"):
        _check_config(tmp_path, BenchConfig(epochs=3))
    # a bench made before a setting existed resumes while that setting keeps its default
    older = BenchConfig().to_dict()
    del older["victim_workers"]
    (tmp_path / "config.json").write_text(json.dumps({"bench": older}))
    _check_config(tmp_path, BenchConfig())
    with pytest.raises(MolleakError, match="victim_workers"):
        _check_config(tmp_path, BenchConfig(victim_workers=2))


def test_a_bench_on_a_data_directory_records_that_directory_s_tier(tmp_path):
    from molleak.errors import MolleakError
    from molleak.plans.bench.runner import _check_config, with_data_tier
    from molleak.plans.bench.suites import BenchConfig

    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"tier": "standard", "seed": 7}))
    config = with_data_tier(BenchConfig(data=str(data)))
    assert (config.tier, config.data_seed) == ("standard", 7)
    assert with_data_tier(BenchConfig()) == BenchConfig()  # no data directory: the tier is prepared as set
    # a bench made before the tier was read from the manifest (it recorded the default) still resumes
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "config.json").write_text(json.dumps({"bench": BenchConfig(data=str(data)).to_dict()}))
    _check_config(bench, config)
    with pytest.raises(MolleakError, match="epochs"):
        _check_config(bench, with_data_tier(BenchConfig(data=str(data), epochs=3)))
    (data / "manifest.json").write_text("{not json")
    with pytest.raises(MolleakError, match="manifest.json is not valid JSON"):
        with_data_tier(BenchConfig(data=str(data)))


def test_reference_victims_built_in_workers_equal_serial_ones(tiny_tier, tmp_path, one_torch_thread):
    # workers train with one torch thread; the serial build matches them bit for bit on one thread too
    import torch

    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.plans.cells import victim_cell_spec
    from molleak.plans.runner import LocalExecutor, run_plan
    from molleak.pretrain.trainer import PretrainConfig

    data = mini_tier(tiny_tier, tmp_path / "data", n_private=40)
    built = {}
    for workers in (1, 2):
        out = tmp_path / f"bench{workers}"
        cells = [victim_cell_spec(f"{name}.reference", "reference",
                                  PretrainConfig(strategy=name, epochs=1, batch_size=16,
                                                 encoder_config={"num_layers": 2, "emb_dim": 16}),
                                  out / f"{name}.reference.pt", data=data / "reference.smi")
                 for name in ("attrmask", "graphcl")]
        plan = run_plan(cells, out / "cells", LocalExecutor(workers))
        assert plan.failed == 0 and plan.ran == 2
        built[workers] = {n: read_checkpoint_file(out / f"{n}.reference.pt") for n in ("attrmask", "graphcl")}
        assert run_plan(cells, out / "cells", LocalExecutor(workers)).ran == 0  # resumed by key
    for name in ("attrmask", "graphcl"):
        serial, parallel = built[1][name], built[2][name]
        assert serial["provenance"]["train_sha256"] == parallel["provenance"]["train_sha256"]
        assert serial["provenance"]["n_train"] == 40 and serial["provenance"]["role"] == "reference"
        for key, tensor in serial["state_dict"].items():
            assert torch.equal(tensor, parallel["state_dict"][key]), f"{name}: {key} differs"


def test_dock_cells_skip_without_receptors(tiny_tier, tmp_path, capsys):
    data = mini_tier(tiny_tier, tmp_path / "data")
    bench = tmp_path / "bench"
    assert main(["bench", "--suite", "table1", "--data", str(data), "--out", str(bench), "--set", "steps=[1]",
                 "--victims", "", "--set", 'baselines=["dock"]', "--set", "fcd=false",
                 "--set", "n_templates=20", "--set", "n_motifs=20", "--receptors", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "4 cells (1 done, 0 resumed, 3 skipped)" in out  # 3 dock targets, and their prior_fp control
    assert not (bench / "zoo").exists()  # no victim row: nothing trained
    skipped = json.loads((bench / "cells" / "nov-s1-dock.fa7-aux-seed0" / "skipped.json").read_text())
    assert "fa7.pdbqt" in skipped["reason"]
    md = (bench / "table.md").read_text()
    assert "| (none) | 1 | dock-fa7 | 0/1 | skipped" in md
    assert "fa7.pdbqt" in md


@pytest.mark.slow
def test_bench_table1_tiny_tier_both_steps_with_fcd(tmp_path, capsys):
    """The whole tiny tier (prepared by the command), one- and two-step, FCD on."""
    bench = tmp_path / "bench"
    assert main(["bench", "--suite", "table1", "--tier", "tiny", "--out", str(bench),
                 "--set", 'baselines=["random","mlp"]', "--set", "policy_budget=400"]) == 0
    table = json.loads((bench / "table.json").read_text())
    rows = table["tables"]["table1"]["rows"]
    policy = next(r for r in rows if r["key"]["method"] == "ours (policy)")
    metrics = policy["columns"]["attack"]["metrics"]
    assert metrics["queries"]["mean"] <= 400
    assert metrics["fcd_random@200"]["mean"] is not None and metrics["fcd_random@200"]["mean"] > 0
    assert policy["columns"]["reference"]["done"] == 1
