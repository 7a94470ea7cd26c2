"""`molleak extract` and `molleak evaluate` from the command line: a run, and one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest

from molleak.cli.main import main


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, tiny_tier):
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    out = tmp_path_factory.mktemp("cli")
    shutil.copy(tiny_tier / "aux.smi", out / "aux.smi")
    mine_vocabulary(read_smiles(out / "aux.smi").smiles, n_templates=8, n_motifs=15, workers=1).save(out / "vocab")
    return out


def test_extract_then_evaluate(cli_inputs, tiny_tier, tiny_victim, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["-q", "extract", "--victim", str(tiny_victim), "--aux", str(cli_inputs / "aux.smi"),
               "--vocab", str(cli_inputs / "vocab"), "--method", "eq1", "--option", "alpha=0.5", "--k", "10",
               "--seed", "4", "--workers", "1", "--out", str(run)])
    out = capsys.readouterr().out
    assert rc == 0 and "eq1: ranked" in out and "victim queries" in out
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 4 and config["options"] == {"alpha": 0.5} and config["method"] == "eq1"
    assert json.loads((run / "extract.json").read_text())["score_info"]["alpha"] == 0.5
    rc = main(["-q", "evaluate", str(run), "--private", str(tiny_tier / "private.smi"), "--k", "5", "--k", "10",
               "--no-fcd"])
    out = capsys.readouterr().out
    assert rc == 0 and "P_sub@10" in out and "base rate" in out
    res = json.loads((run / "results.json").read_text())
    assert "precision_exact@10" in res and "precision_substructure@5_ci95" in res


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "--aux", "{d}/missing.smi", "--vocab", "{d}/vocab", "--method", "qed", "--out", "{t}/r"],
         "auxiliary set not found"),
        (["extract", "--aux", "{d}/aux.smi", "--vocab", "{d}/vocab", "--method", "adapter", "--out", "{t}/r"],
         "pass --victim"),
        (["extract", "--aux", "{d}/aux.smi", "--vocab", "{d}/vocab", "--method", "qed", "--option", "oops",
          "--out", "{t}/r"], "key=value"),
        (["extract", "--aux", "{d}/aux.smi", "--vocab", "{d}/nope", "--method", "qed", "--out", "{t}/r"],
         "vocabulary directory not found"),
        (["extract", "--aux", "{d}/aux.smi", "--vocab", "{d}/vocab", "--method", "random", "--option", "x=1",
          "--out", "{t}/r"], "bad options for score random"),
        (["evaluate", "{t}", "--private", "{d}/aux.smi"], "not found"),
    ],
)
def test_bad_input_is_one_line(cli_inputs, tmp_path, capsys, argv, message):
    argv = [a.format(d=cli_inputs, t=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("molleak: error:") and message in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
