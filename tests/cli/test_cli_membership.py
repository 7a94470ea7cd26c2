"""`molleak membership` and `molleak power` from the command line, on tiny real data."""

from __future__ import annotations

import json

from molleak.cli.main import main


def _write(path, smiles):
    path.write_text("".join(f"{s}\n" for s in smiles))
    return str(path)


def test_membership_verb_writes_rows_for_every_statistic_and_attack(tmp_path, tiny_victim, moses_sample, capsys):
    members = _write(tmp_path / "members.smi", moses_sample[:600])  # tiny_victim's training set
    nonmembers = _write(tmp_path / "non.smi", moses_sample[600:700])
    population = _write(tmp_path / "pop.smi", moses_sample[700:1400])
    code = main(["membership", "--victim", str(tiny_victim), "--members", members, "--nonmembers", nonmembers,
                 "--population", population, "--targets", "20", "--shadows", "2", "--statistics", "loss,norm",
                 "--rmia-population", "30", "--seed", "3", "--out", str(tmp_path / "audit")])
    assert code == 0
    out = capsys.readouterr().out
    assert "lira_online" in out and "white box" in out and "black box" in out
    result = json.loads((tmp_path / "audit" / "shadow_membership.json").read_text())
    attacks = {(r["statistic"], r["attack"]) for r in result["rows"]}
    assert attacks == {(s, a) for s in ("loss", "norm")
                       for a in ("lira_online", "lira_offline", "rmia_online", "rmia_offline", "raw")}
    assert result["n_members"] == 20 and result["n_targets"] == 40
    assert result["holm_family"] == 8  # 2 statistics x 4 calibrated attacks; raw thresholds are not tested
    # the owner's draw and the shadows' seeds are recorded and reproducible
    assert (tmp_path / "audit" / "config.json").is_file() and (tmp_path / "audit" / "metadata.json").is_file()


def test_membership_verb_rejects_nonmembers_from_the_training_set(tmp_path, tiny_victim, moses_sample, capsys):
    members = _write(tmp_path / "members.smi", moses_sample[:600])
    code = main(["membership", "--victim", str(tiny_victim), "--members", members, "--nonmembers", members,
                 "--population", members, "--targets", "10", "--shadows", "2", "--out", str(tmp_path / "a")])
    assert code == 2
    assert "are in the victim's training set" in capsys.readouterr().err


def test_odd_shadow_count_is_one_clear_error(tmp_path, tiny_victim, moses_sample, capsys):
    members = _write(tmp_path / "members.smi", moses_sample[:600])
    nonmembers = _write(tmp_path / "non.smi", moses_sample[600:700])
    code = main(["membership", "--victim", str(tiny_victim), "--members", members, "--nonmembers", nonmembers,
                 "--population", nonmembers, "--targets", "10", "--shadows", "3", "--out", str(tmp_path / "a")])
    assert code == 2
    assert "even number" in capsys.readouterr().err
