"""`--config FILE` on extract (and the policy search), pretrain, zoo and bench: a TOML file of the verb's
long options drives it, flags on the command line win, and a bad file is one `config FILE` line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molleak.cli.main import main
from molleak.data.smiles_io import write_smiles

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _one_config_error(capsys, argv: list[str], path: Path) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("molleak: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"molleak: error: config {path}"), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# each verb from a TOML file, a flag overriding the file, the value recorded where the verb records its config


def test_pretrain_from_a_config_file_and_a_flag_overrides_it(tmp_path, moses_sample, capsys):
    from molleak.models.victim import Victim

    write_smiles(tmp_path / "train.smi", moses_sample[:100])
    out = tmp_path / "v.pt"
    cfg = _toml(tmp_path / "pretrain.toml", f'strategy = "attrmask"\nsmiles = "{tmp_path / "train.smi"}"\n'
                                            f'out = "{out}"\nepochs = 1\nlayers = 2\nemb_dim = 16\n'
                                            "batch_size = 32\nseed = 3\n")
    assert main(["-q", "pretrain", "--config", str(cfg), "--emb-dim", "8"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    prov = Victim.from_checkpoint(out).provenance
    assert prov["config"]["encoder_config"] == {"num_layers": 2, "emb_dim": 8}  # the flag beats the file's 16
    assert (prov["config"]["epochs"], prov["config"]["batch_size"], prov["seed"]) == (1, 32, 3)
    assert prov["train_file"] == str(tmp_path / "train.smi")


def test_extract_from_a_config_file_with_an_options_table(tmp_path, attacker_dir, tiny_victim, capsys):
    run = tmp_path / "run"
    cfg = _toml(tmp_path / "extract.toml", f"""
victim = "{tiny_victim}"
aux = "{attacker_dir / 'aux.smi'}"
vocab = "{attacker_dir / 'vocab'}"
templates = [0, 1]
method = "eq1"
k = 10
seed = 4
workers = 1
out = "{run}"

[options]
alpha = 0.5
""")
    assert main(["-q", "extract", "--config", str(cfg), "--k", "7", "--option", "alpha=0.25"]) == 0
    assert "eq1: ranked" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert (config["method"], config["k"], config["seed"]) == ("eq1", 7, 4)
    assert config["options"] == {"alpha": 0.25}  # --option beats the file's [options] key by key
    assert config["templates"] == [0, 1]
    assert len((run / "topk.tsv").read_text().splitlines()) <= 8


def test_policy_search_options_come_from_the_options_table(tmp_path, attacker_dir, monkeypatch):
    """`molleak extract --method policy`: the [options] table is the search's options, merged with --option."""
    import molleak.attack.run as attack_run

    seen = {}

    def fake_run_extract(config):
        seen["config"] = config
        return {"n_scored": 0, "n_topk": 0, "queries": 0, "seconds_score": 0.0, "seconds_total": 0.0}

    monkeypatch.setattr(attack_run, "run_extract", fake_run_extract)
    cfg = _toml(tmp_path / "policy.toml", f"""
aux = "{attacker_dir / 'aux.smi'}"
vocab = "{attacker_dir / 'vocab'}"
out = "{tmp_path / 'run'}"
method = "policy"
steps = 2
budget = 300

[options]
max_updates = 5
batch_size = 16
""")
    assert main(["-q", "extract", "--config", str(cfg), "--victim", "v.pt", "--option", "batch_size=8"]) == 0
    config = seen["config"]
    assert (config.method, config.steps, config.budget, config.victim) == ("policy", 2, 300, "v.pt")
    assert config.options == {"max_updates": 5, "batch_size": 8}
    assert config.force is False


def test_zoo_from_a_config_file_and_a_flag_overrides_it(tmp_path, moses_sample, capsys):
    data = tmp_path / "data"
    write_smiles(data / "private.smi", moses_sample[:100])
    out = tmp_path / "zoo"
    cfg = _toml(tmp_path / "zoo.toml", f'data = "{data}"\nout = "{out}"\nstrategies = ["graphcl"]\nepochs = 1\n'
                                       "layers = 2\nemb_dim = 16\nbatch_size = 32\nfinetune_epochs = 1\nseed = 5\n")
    assert main(["-q", "zoo", "--config", str(cfg), "--layers", "1"]) == 0
    assert "built 1 (graphcl)" in capsys.readouterr().out
    manifest = json.loads((out / "zoo.json").read_text())
    assert manifest["config"]["encoder_config"] == {"num_layers": 1, "emb_dim": 16}
    assert (manifest["config"]["seed"], manifest["config"]["epochs"], manifest["config"]["batch_size"]) == (5, 1, 32)
    assert [v["victim"] for v in manifest["victims"]] == ["graphcl"]


def test_bench_settings_are_plain_keys_of_its_config_file(tmp_path, monkeypatch):
    import molleak.plans.bench.runner as runner

    seen = {}

    def fake_run_bench(suite, out, config, *, n_boot, executor=None):
        seen.update(suite=suite, out=out, config=config, n_boot=n_boot)
        return {"cells": 0, "done": 0, "resumed": 0, "skipped": 0, "seconds": 0.0}

    monkeypatch.setattr(runner, "run_bench", fake_run_bench)
    cfg = _toml(tmp_path / "bench.toml", f"""
suite = "table2"
out = "{tmp_path / 'b'}"
bootstrap = 200
tier = "small"
seeds = 3
victims = ["graphcl", "attrmask"]
k = 100
policy_budget = 900
fcd = false
encoder_config = {{ num_layers = 3, emb_dim = 64 }}
""")
    assert main(["-q", "bench", "--config", str(cfg), "--seeds", "2", "--set", "k=50"]) == 0
    config = seen["config"]
    assert (seen["suite"], seen["out"], seen["n_boot"]) == ("table2", str(tmp_path / "b"), 200)
    assert (config.tier, config.seeds, config.k, config.policy_budget, config.fcd) == ("small", 2, 50, 900, False)
    assert config.victims == ["graphcl", "attrmask"] and config.encoder_config == {"num_layers": 3, "emb_dim": 64}


def test_bench_runs_from_a_config_file(tiny_tier, tmp_path, capsys):
    data = tmp_path / "data"  # the tiny tier cut down so the victim trains in seconds
    data.mkdir()
    for name in ("private", "reference", "aux", "holdout", "aux_shifted", "aux_external"):
        lines = (tiny_tier / f"{name}.smi").read_text().splitlines()
        (data / f"{name}.smi").write_text("\n".join(lines[:200] if name in ("private", "reference") else lines) + "\n")
    bench = tmp_path / "bench"
    cfg = _toml(tmp_path / "bench.toml", f"""
suite = "table1"
out = "{bench}"
data = "{data}"
bootstrap = 50
steps = [1]
baselines = ["random"]
controls = false
fcd = false
n_templates = 10
n_motifs = 10
k = 20
""")
    assert main(["-q", "bench", "--config", str(cfg), "--set", "k=25"]) == 0
    assert "cells" in capsys.readouterr().out
    recorded = json.loads((bench / "config.json").read_text())["bench"]
    assert (recorded["k"], recorded["steps"], recorded["baselines"], recorded["fcd"]) == (25, [1], ["random"], False)
    assert (bench / "table.md").is_file()


# ---------------------------------------------------------------------------------------------
# bad files: one `molleak: error: config FILE ...` line, exit 2

VERBS = ["extract", "pretrain", "zoo", "bench"]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(("content", "words"), [
    (b'nonsense_key = 1\n', "nonsense_key: unknown key"),
    (b'out = 3\n', "out: Input should be a valid string (1 problem)"),
    (b'\xff\xfe[x]\x80\x81', "is not UTF-8 text"),
    (b'out = = "x"\n', "is not valid TOML"),
])
def test_a_bad_config_file_is_one_line(tmp_path, capsys, verb, content, words):
    path = tmp_path / f"{verb}.toml"
    path.write_bytes(content)
    assert words in _one_config_error(capsys, [verb, "--config", str(path)], path)


@pytest.mark.parametrize(("verb", "text", "words"), [
    ("pretrain", "epochs = 0\nlr = -1.0\n", "epochs: Input should be greater than or equal to 1 (2 problems)"),
    ("pretrain", 'epochs = "3"\n', "epochs: Input should be a valid integer"),
    ("zoo", 'strategies = "graphcl"\n', "strategies: Input should be a valid list"),
    ("bench", "k = 1.5\n", "k: Input should be a valid integer"),
    ("extract", "force = true\n", "force: unknown key"),  # discarding a run is a command-line decision
    ("extract", 'method = "bogus"\n', "method: 'bogus' is not one of:"),
    ("pretrain", 'strategy = "bogus"\n', "strategy: 'bogus' is not one of:"),
    ("bench", 'suite = "table9"\n', "suite: 'table9' is not one of:"),
    ("pretrain", 'data = "d"\nsmiles = "s.smi"\n', "data and smiles cannot both be given"),
    ("extract", 'vocab = "v"\npool = "p.tsv"\n', "vocab and pool cannot both be given"),
])
def test_a_config_file_is_checked_like_the_flags(tmp_path, capsys, verb, text, words):
    path = _toml(tmp_path / f"{verb}.toml", text)
    assert words in _one_config_error(capsys, [verb, "--config", str(path)], path)


def test_a_file_value_meets_the_flag_s_own_checks(tmp_path, capsys):
    path = _toml(tmp_path / "p.toml", f'out = "{tmp_path}"\n')  # --out must be a file to write
    assert "is a directory, not a file to write" in _one_config_error(capsys, ["pretrain", "--config", str(path)],
                                                                     path)


@pytest.mark.parametrize("verb", VERBS)
def test_a_missing_or_directory_config_is_one_line(tmp_path, capsys, verb):
    missing = tmp_path / "nope.toml"
    assert "no such file" in _one_config_error(capsys, [verb, "--config", str(missing)], missing)
    assert "is not a file" in _one_config_error(capsys, [verb, "--config", str(tmp_path)], tmp_path)


@pytest.mark.parametrize(("argv", "words"), [
    (["extract", "--out", "r"], "--aux is required (on the command line, or as `aux` in the --config file)"),
    (["pretrain", "--strategy", "attrmask", "--out", "v.pt"], "--data or --smiles is required"),
    (["zoo", "--data", "d"], "--out is required"),
    (["bench", "--out", "b"], "--suite is required"),
])
def test_a_required_option_may_come_from_either_place(tmp_path, capsys, argv, words):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"molleak: error: {words}" or (err.startswith("molleak: error: ") and words in err
                                                   and "\n" not in err), err


def test_the_command_line_choice_of_an_exclusive_pair_replaces_the_file_s(tmp_path, monkeypatch):
    import molleak.attack.run as attack_run

    seen = {}

    def fake_run_extract(config):
        seen["config"] = config
        return {"n_scored": 0, "n_topk": 0, "queries": 0, "seconds_score": 0.0, "seconds_total": 0.0}

    monkeypatch.setattr(attack_run, "run_extract", fake_run_extract)
    cfg = _toml(tmp_path / "e.toml", 'aux = "a.smi"\nout = "r"\nvocab = "v"\nmethod = "qed"\n')
    assert main(["-q", "extract", "--config", str(cfg), "--pool", "p.tsv"]) == 0
    assert (seen["config"].pool, seen["config"].vocab) == ("p.tsv", None)
