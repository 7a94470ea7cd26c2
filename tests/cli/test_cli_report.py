"""`molleak report`: writes the HTML file, prints one line; bad input is one error line, exit 2."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from molleak.cli.main import main
from molleak.report import SECTION_IDS


def _support():
    """tests/integration/test_report_support.py (the fake-but-real run directories), by path."""
    path = Path(__file__).parents[1] / "integration" / "test_report_support.py"
    spec = importlib.util.spec_from_file_location("report_support_for_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _support().write_run(tmp_path_factory.mktemp("cli") / "run", method="adapter", victim="/x/victim.pt",
                                seed=3)


def test_report_writes_html_and_prints_one_line(run_dir, tmp_path, capsys):
    out = tmp_path / "audit.html"
    assert main(["report", str(run_dir), "--out", str(out), "--top", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out} (1 runs, 1 evaluated, 1 victims")
    assert "nothing to show in: attribution, defences, learning-curve" in lines[0]
    page = out.read_text(encoding="utf-8")
    assert all(f'<section id="{sid}">' in page for sid in SECTION_IDS)
    assert page.count("class='mol ") == 6


def test_report_default_output_is_in_the_directory(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").is_file()
    assert f"wrote {run_dir / 'report.html'}" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "empty", "out_is_dir", "bad_private"])
def test_report_errors_are_one_line(case, run_dir, tmp_path, capsys):
    args = {"missing": ["report", str(tmp_path / "nope")],
            "empty": ["report", str(tmp_path)],
            "out_is_dir": ["report", str(run_dir), "--out", str(tmp_path)],
            "bad_private": ["report", str(run_dir), "--out", str(tmp_path / "r.html"), "--private",
                            str(tmp_path / "no_private.smi")]}[case]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("molleak: error: ") and "\n" not in err and "Traceback" not in err
