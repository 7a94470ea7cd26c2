"""`molleak probe`: linear probes of a zoo's victims against random initialisation, end to end."""

from __future__ import annotations

import json
import shutil

import pytest

from molleak.cli.main import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("molleak: error:") and err.count("\n") == 1
    return err


@pytest.fixture()
def zoo(tiny_victim, tmp_path):
    out = tmp_path / "zoo"
    out.mkdir()
    shutil.copy(tiny_victim, out / "attrmask.pt")
    (out / "notes.pt").write_text("not a zoo victim name: ignored")
    return out


def test_probe_prints_both_tables_and_writes_json(zoo, tiny_tier, tmp_path, capsys):
    js = tmp_path / "probe.json"
    assert main(["probe", "--zoo", str(zoo), "--data", str(tiny_tier), "--targets", "logp,qed", "--n-train", "all,40",
                 "--n-logp", "120", "--repeats", "3", "--random-seeds", "2", "--seed", "0", "--threads", "1",
                 "--json", str(js)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("probes: logp (120 molecules), qed (120 molecules)")
    assert lines[1] == ("| victim | logp trained | logp random init | qed trained | qed random init | "
                        "logp@40 trained | logp@40 random init | qed@40 trained | qed@40 random init | wins |")
    assert lines[3].startswith("| attrmask | ") and lines[3].endswith("/4 |")
    assert "| victim | probes won | won probes: splits won |" in lines
    assert lines[-1].startswith("| attrmask | ")
    res = json.loads(js.read_text())
    assert res["columns"] == ["logp", "qed", "logp@40", "qed@40"]
    (row,) = res["rows"]
    assert row["victim"] == "attrmask" and len(row["random"]["logp"]) == 2
    assert len(row["trained_splits"]["logp"]) == 5 and len(row["trained_splits"]["qed@40"]) == 3
    assert all(-10 < v <= 1 for v in row["trained"].values())


def test_probe_bad_inputs_are_one_line(zoo, tiny_tier, tmp_path, capsys):
    base = ["probe", "--zoo", str(zoo), "--data", str(tiny_tier)]
    assert "unknown probe target(s) nope" in _error(capsys, [*base, "--targets", "logp,nope"])
    assert "--n-train" in _error(capsys, [*base, "--n-train", "all,x"])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no victim checkpoint" in _error(capsys, ["probe", "--zoo", str(empty), "--data", str(tiny_tier)])
    assert "holdout.smi not found" in _error(capsys, ["probe", "--zoo", str(zoo), "--data", str(empty)])


def test_probe_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["probe", "--help"])
    assert exc.value.code == 0
    assert "--random-seeds" in capsys.readouterr().out
