"""`molleak bench` argument and settings errors: one clear line, exit 2."""

from __future__ import annotations

import json

import pytest

from molleak.cli.main import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_unknown_setting_is_one_line(tmp_path, capsys):
    err = _error(capsys, ["bench", "--suite", "table1", "--out", str(tmp_path / "b"), "--set", "epoch=3"])
    assert "unknown bench setting(s): epoch" in err and "Traceback" not in err


def test_missing_config_file(tmp_path, capsys):
    err = _error(capsys, ["bench", "--suite", "table1", "--out", str(tmp_path / "b"),
                          "--config", str(tmp_path / "nope.json")])
    assert "nope.json: no such file" in err


def test_bad_json_config(tmp_path, capsys):
    cfg = tmp_path / "bench.json"
    cfg.write_text("{not json")
    err = _error(capsys, ["bench", "--suite", "table1", "--out", str(tmp_path / "b"), "--config", str(cfg)])
    assert "is not valid JSON" in err


def test_table3_needs_a_victim(tmp_path, capsys):
    err = _error(capsys, ["bench", "--suite", "table3", "--out", str(tmp_path / "b"), "--victims", ""])
    assert "table3 needs a victim" in err


def test_data_dir_without_private_set(tmp_path, capsys):
    err = _error(capsys, ["bench", "--suite", "table1", "--out", str(tmp_path / "b"), "--data", str(tmp_path)])
    assert "holds no private.smi" in err


def test_config_file_and_overrides_are_recorded(tmp_path):
    from molleak.cli.bench import build_config
    from molleak.cli.main import build_parser
    from molleak.plans.bench.suites import BenchConfig

    cfg = tmp_path / "bench.json"
    cfg.write_text(json.dumps({"k": 100, "policy_budget": 900}))
    args = build_parser().parse_args(["bench", "--suite", "table2", "--tier", "small", "--seeds", "3",
                                      "--out", "x", "--config", str(cfg), "--set", "k=50", "--victims", "graphcl"])
    config = build_config(args)
    assert isinstance(config, BenchConfig)
    assert (config.tier, config.seeds, config.k, config.policy_budget, config.victims) == ("small", 3, 50, 900,
                                                                                          ["graphcl"])


def test_unknown_suite_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--suite", "table9", "--out", str(tmp_path)])
