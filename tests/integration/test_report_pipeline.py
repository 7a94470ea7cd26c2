"""The report of a real pipeline run on the tiny tier: extract (adapter and the victim-free prior), evaluate, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_report import parse

from molleak.report import SECTION_IDS, build_report
from molleak.report.figures import precision_series
from molleak.rundir import Role


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory, tiny_tier, tiny_victim) -> Path:
    from molleak.attack.run import ExtractConfig, run_extract
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.evaluate import evaluate_run

    root = tmp_path_factory.mktemp("pipeline")
    attacker = root / "attacker"
    attacker.mkdir()
    shutil.copy(tiny_tier / "aux.smi", attacker / "aux.smi")
    mine_vocabulary(read_smiles(attacker / "aux.smi").smiles, n_templates=8, n_motifs=15,
                    workers=1).save(attacker / "vocab")
    base = {"aux": str(attacker / "aux.smi"), "vocab": str(attacker / "vocab"), "k": 20, "seed": 5, "workers": 1}
    run_extract(ExtractConfig(**base, out=str(root / "runs" / "adapter"), victim=str(tiny_victim),
                              method="adapter", options={"steps": 30, "out_dim": 16}))
    run_extract(ExtractConfig(**base, out=str(root / "runs" / "prior"), method="prior_fp"))
    for name in ("adapter", "prior"):
        evaluate_run(root / "runs" / name, tiny_tier / "private.smi", k_list=(5, 10, 20), fcd=False,
                     extra_banks={"reference": tiny_tier / "reference.smi"})
    return root / "runs"


@pytest.mark.slow
def test_report_of_a_real_run(pipeline_dir, tiny_tier):
    page, data, missing = build_report(pipeline_dir, command="pytest")
    p = parse(page)
    assert p.sections == list(SECTION_IDS)
    assert {r.role for r in data.runs} == {Role.VICTIM, Role.PRIOR}
    # what the pipeline did not produce is named, not invented; evaluate's labels.tsv gives the ROC
    assert {"attribution", "learning-curve"} <= set(missing)
    assert "roc" not in missing
    assert p.svgs["precision"] == 1 and p.svgs["alpha"] >= 1 and len(p.cards) == 40
    res = json.loads((pipeline_dir / "adapter" / "results.json").read_text())
    summary = " ".join(p.text["summary"])
    assert f"{res['precision_substructure@20']:.3f}" in summary
    assert f"{res['base_rate_substructure']:.3f}" in summary
    assert f"{res['banks']['reference']['precision_substructure@20']:.3f}" in summary

    # with --private the report labels the pools itself: its curve must agree with the evaluation
    page, data, missing = build_report(pipeline_dir, private=tiny_tier / "private.smi", command="pytest")
    assert "roc" not in missing and parse(page).svgs["roc"] == 1
    for run in data.runs:
        expected = json.loads((run.path / "results.json").read_text())
        for kind in ("substructure", "exact"):
            series, base = precision_series(run, kind, run.label)
            curve = dict(zip((int(x) for x in series.x), series.y, strict=True))
            for k in (5, 10, 20):
                assert curve[k] == pytest.approx(expected[f"precision_{kind}@{k}"]), (run.name, kind, k)
            assert base == pytest.approx(expected[f"base_rate_{kind}"])
        assert np.isfinite(run.scores).sum() == expected["n_scored"]


@pytest.mark.slow
def test_report_of_a_real_bench(tiny_tier, tmp_path, capsys):
    from molleak.cli.main import main

    bench = tmp_path / "bench"
    assert main(["bench", "--suite", "table1", "--data", str(tiny_tier), "--seeds", "2", "--out", str(bench),
                 "--set", "steps=[1]", "--set", 'baselines=["random"]', "--set", "fcd=false",
                 "--set", "n_templates=20", "--set", "n_motifs=20", "--bootstrap", "200"]) == 0
    capsys.readouterr()
    assert main(["report", str(bench)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = (bench / "report.html").read_text(encoding="utf-8")
    p = parse(page)
    assert p.sections == list(SECTION_IDS)
    headline = page[page.index('<section id="summary">'):page.index('<section id="tables">')]
    for role in ("victim", "reference victim", "random-init victim", "victim-free"):
        assert f"<td>{role}</td>" in headline, role
    # one victim: its reference and untrained cells and the victim-free runs share its figure, seeds averaged
    assert p.svgs["precision"] == 1
    assert "adapter, 1-step [reference victim] (mean of 2 seeds" in page
    table_md = (bench / "table.md").read_text()
    first_row = next(line for line in table_md.splitlines() if line.startswith("| attrmask"))
    cells = [c.strip() for c in first_row.strip("|").split("|")]
    tables = " ".join(p.text["tables"])
    assert all(c in tables for c in cells if c)
