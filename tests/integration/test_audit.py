"""`molleak audit` end to end on tiny data, and what the one run contract promises about it.

- A scoring method registered inside this test runs through extract, a bench plan, the audit and
  the report without any other file changing: adding a method is one file.
- The audit's attribution numbers equal `molleak leakage audit`'s for the same victim/reference pair.
- An audit directory is reused only for the same config; another config is refused (the hostile
  run's "new config, old headline" case) and leaves the old audit untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from molleak.attack.scoring.base import SCORES, Score, ScoreResult
from molleak.cli.main import main

TOY = "toy-embedding-norm"

if TOY not in SCORES:

    @SCORES.register(TOY)
    class ToyNorm(Score):
        """The victim's embedding norm of each pool molecule (the test's own method)."""

        name = TOY

        def __init__(self, scale: float = 1.0):
            self.scale = float(scale)

        def __call__(self, ctx) -> ScoreResult:
            return ScoreResult(self.scale * np.linalg.norm(ctx.molecule_embeddings(), axis=1))


def _config(path: Path, epochs: int) -> Path:
    path.write_text(f"""
[data]
tier = "tiny"
seed = 0

[victim]
strategy = "attrmask"
epochs = {epochs}
batch_size = 64
layers = 2
emb_dim = 32
seed = 0

[attack]
n_templates = 10
n_motifs = 20
one_step_methods = ["adapter", "{TOY}", "prior_fp"]
two_step = false
k = 20
seed = 0

[membership]
shadows = 2
targets = 20
statistics = ["loss", "norm"]
""")
    return path


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory, tiny_tier) -> Path:
    root = tmp_path_factory.mktemp("audit")
    out = root / "audit"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    assert main(["-q", "audit", "--config", str(_config(root / "a.toml", 1)), "--out", str(out),
                 "--no-progress"]) == 2  # a non-empty directory that holds no audit is refused
    assert (out / "notes.txt").is_file()
    shutil.rmtree(out)
    assert main(["-q", "audit", "--config", str(_config(root / "a.toml", 1)), "--out", str(out),
                 "--no-progress"]) == 0
    return out


def test_a_method_registered_in_a_test_runs_through_the_audit_and_its_report(audit_dir):
    summary = json.loads((audit_dir / "audit.json").read_text())
    toy = audit_dir / "runs" / "one_step" / TOY
    assert json.loads((toy / "config.json").read_text())["role"] == "victim"
    results = json.loads((toy / "results.json").read_text())
    assert results["method"] == TOY and 0.0 <= results["precision_substructure@50"] <= 1.0
    assert any(TOY in ", ".join(row["runs"]) for row in summary["headline"])
    # the controls ran and are labelled by their recorded role
    assert json.loads((audit_dir / "runs" / "one_step" / "adapter@reference" / "config.json").read_text())[
        "role"] == "reference"
    html = Path(summary["report"]).read_text()
    assert TOY in html


def test_the_audit_runs_the_shadow_attack_and_its_verdict_reaches_the_report(audit_dir):
    attribution = json.loads((audit_dir / "attribution.json").read_text())
    block = attribution["shadow_membership"]
    assert set(block["best"]) == {"white box", "black box"}
    assert block["verdict"].startswith("shadow-model membership, 20 members vs 20 non-members, 2 shadows")
    # no power ladder given: a non-detection must say its power is unknown, never absence
    assert block["power"] is None
    assert "detected (" in block["verdict"] and ("power not measured" in block["verdict"]
                                                  or "not detected" not in block["verdict"])
    summary = json.loads((audit_dir / "audit.json").read_text())
    assert "shadow_membership.verdict" in summary["verdicts"]
    html = Path(summary["report"]).read_text()
    assert "Membership (shadow models" in html


def test_a_method_registered_in_a_test_runs_in_a_bench_plan(tiny_tier, tmp_path):
    from test_bench import mini_tier

    from molleak.plans.bench.runner import run_bench
    from molleak.plans.bench.suites import BenchConfig

    # the tiny tier cut to 300 private molecules: what is tested is the method's path through the plan
    summary = run_bench("table1", tmp_path / "bench", BenchConfig(
        data=str(mini_tier(tiny_tier, tmp_path / "data")), steps=[1], baselines=[TOY], controls=False, fcd=False, n_templates=10, n_motifs=20,
        epochs=1), n_boot=50)
    assert summary["skipped"] == 0
    cell = tmp_path / "bench" / "cells" / f"attrmask.victim-s1-{TOY}-aux-seed0"
    assert json.loads((cell / "results.json").read_text())["method"] == TOY


def test_audit_and_leakage_audit_give_the_same_attribution(audit_dir, tmp_path, capsys):
    audit = json.loads((audit_dir / "attribution.json").read_text())["one_step"]
    runs = audit_dir / "runs" / "one_step"
    out = tmp_path / "leak"
    argv = ["leakage", "audit", "--victim", str(audit_dir / "models" / "victim.pt"),
            "--reference", str(audit_dir / "models" / "reference.pt"), "--data", str(audit_dir / "data"),
            "--out", str(out), "--victim-run", str(runs / "adapter"), "--reference-run", str(runs / "adapter@reference"),
            "--members", "50", "--neighbours", "1",  # the membership part only: attribution keeps its defaults
            "--seed", "0"]
    assert main(argv) == 0
    leak = json.loads((out / "attribution.json").read_text())
    for kind in ("substructure", "exact"):
        assert leak[kind] == audit[kind]
    assert audit["substructure"]["private_only"]  # the numbers compared are there


def test_another_config_into_the_same_directory_is_refused_and_the_same_one_resumes(audit_dir, tmp_path, capsys):
    before = (audit_dir / "audit.json").read_bytes()
    b = _config(tmp_path / "b.toml", 2)
    assert main(["-q", "audit", "--config", str(b), "--out", str(audit_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "other inputs" in err and "victim" in err and "--force" in err
    assert (audit_dir / "audit.json").read_bytes() == before  # nothing of the old audit was touched
    # the same config resumes: every cell is reused, the headline is the same
    assert main(["-q", "audit", "--config", str(_config(tmp_path / "a.toml", 1)), "--out", str(audit_dir),
                 "--no-progress"]) == 0
    again = json.loads((audit_dir / "audit.json").read_text())
    assert again["headline"] == json.loads(before)["headline"]
