"""Hostile input to the verbs: exit 2 with one `molleak: error:` line (or argparse's usage error), no traceback."""

from __future__ import annotations

import argparse

import pytest
import torch

from molleak.cli.main import build_parser, main
from molleak.models.base import build_encoder
from molleak.models.checkpoint import FORMAT, save_checkpoint


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("molleak: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def usage_error(args, capsys) -> str:
    """argparse's error for `args`: exit 2 and `molleak <verb>: error: ...`."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def verbs_with_seed() -> list[list[str]]:
    """Every (sub)command that takes --seed, as the argv words that reach it."""
    found = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])
            elif "--seed" in action.option_strings:
                found.append(words)

    walk(build_parser(), [])
    return found


def test_every_seed_option_is_found():
    found = {" ".join(w) for w in verbs_with_seed()}
    assert {"data prepare", "pretrain", "zoo"} <= found


@pytest.mark.parametrize("words", verbs_with_seed(), ids=" ".join)
@pytest.mark.parametrize("seed", ["-1", "-123456", "4294967296", "x"])
def test_bad_seed_is_an_argparse_error_on_every_verb(words, seed, capsys):
    line = usage_error([*words, "--seed", seed], capsys)
    assert "argument --seed: seed must be a non-negative integer" in line


@pytest.mark.parametrize("lr", ["nan", "inf", "-inf", "0", "-1e-3", "abc"])
def test_pretrain_refuses_bad_learning_rates(tmp_path, lr, capsys):
    line = usage_error(["pretrain", "--strategy", "attrmask", "--smiles", "x.smi", "--out", str(tmp_path / "v.pt"),
                        f"--lr={lr}"], capsys)
    assert "argument --lr: expected a" in line


@pytest.mark.parametrize(("verb", "option", "value"), [
    ("pretrain", "--epochs", "0"), ("pretrain", "--batch-size", "-4"), ("zoo", "--epochs", "0"),
    ("zoo", "--batch-size", "0"),
])
def test_zero_or_negative_counts_are_refused(verb, option, value, capsys):
    assert f"argument {option}: expected a positive integer" in usage_error([verb, option, value], capsys)


def test_pretrain_batch_size_one_is_one_clear_error(tmp_path, moses_sample, capsys):
    smi = tmp_path / "t.smi"
    smi.write_text("\n".join(moses_sample[:20]) + "\n")
    code, _, err = run_cli(["pretrain", "--strategy", "attrmask", "--smiles", str(smi), "--out", str(tmp_path / "v.pt"),
                            "--batch-size", "1"], capsys)
    assert code == 2 and "batch_size must be at least 2" in one_error_line(err)


def test_pretrain_absurd_width_is_refused_before_allocating(tmp_path, moses_sample, capsys):
    smi = tmp_path / "t.smi"
    smi.write_text("\n".join(moses_sample[:20]) + "\n")
    code, _, err = run_cli(["pretrain", "--strategy", "attrmask", "--smiles", str(smi), "--out", str(tmp_path / "v.pt"),
                            "--emb-dim", "1000000000", "--layers", "1000"], capsys)
    assert code == 2 and "over the bound of 2e+09; refusing to build it" in one_error_line(err)
    assert not (tmp_path / "v.pt").exists()


@pytest.mark.parametrize("data", [bytes(range(256)) * 8, b"CCO\x00CCN\n", b"CCO\n\xc3\x28\n"])
def test_binary_smiles_files_are_one_clear_error(tmp_path, data, capsys):
    path = tmp_path / "bin.smi"
    path.write_bytes(data)
    for args in (["pretrain", "--strategy", "attrmask", "--smiles", str(path), "--out", str(tmp_path / "v.pt")],
                 ["vocab", "--aux", str(path), "--out", str(tmp_path / "vocab")],
                 ["label", "--candidates", str(path), "--bank", str(path), "--out", str(tmp_path / "l.tsv"),
                  "--no-cache"]):
        code, _, err = run_cli(args, capsys)
        assert code == 2 and "bin.smi is not UTF-8 text" in one_error_line(err), args


@pytest.fixture()
def small_checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "small.pt"
    save_checkpoint(path, build_encoder("gin", {"num_layers": 2, "emb_dim": 8}), {"strategy": "test"})
    return path


@pytest.mark.parametrize(("verb", "out_kind"), [
    ("embed", "directory"), ("embed", "under_a_file"), ("pretrain", "directory"), ("label", "directory"),
    ("candidates", "directory"), ("import-victim", "directory"), ("data", "file"), ("vocab", "file"), ("zoo", "file"),
])
def test_output_path_of_the_wrong_kind_is_a_usage_error(tmp_path, verb, out_kind, capsys):
    (tmp_path / "afile").write_text("x\n")
    out = {"directory": str(tmp_path), "under_a_file": str(tmp_path / "afile" / "e.npy"),
           "file": str(tmp_path / "afile")}[out_kind]
    words = {"data": ["data", "prepare"], "import-victim": ["import-victim", "src.pth"]}.get(verb, [verb])
    line = usage_error([*words, "--out", out], capsys)
    assert "argument --out:" in line and ("directory" in line)


def test_embed_with_bad_checkpoints_is_one_clear_error(tmp_path, capsys):
    smi = tmp_path / "m.smi"
    smi.write_text("CCO\nc1ccccc1\n")
    (tmp_path / "bin.pt").write_bytes(bytes(range(256)))
    (tmp_path / "dir.pt").mkdir()
    torch.save({"format": FORMAT, "encoder": {"name": "gin", "config": {"num_layers": 10**6, "emb_dim": 10**9}},
                "state_dict": {}, "provenance": {}}, tmp_path / "absurd.pt")
    expect = {"bin.pt": "not a torch file", "dir.pt": "is a directory", "absurd.pt": "over the bound"}
    for name, words in expect.items():
        code, _, err = run_cli(["embed", "--victim", str(tmp_path / name), "--smiles", str(smi),
                                "--out", str(tmp_path / "e.npy")], capsys)
        assert code == 2 and words in one_error_line(err), name


def test_embed_with_a_huge_molecule_skips_it_with_a_short_warning(tmp_path, small_checkpoint, capsys, caplog):
    smi = tmp_path / "m.smi"
    smi.write_text("C" * 20_000 + "\nCCO\nc1ccccc1\n")  # the 20,000-atom chain segfaulted `embed`
    code, out, err = run_cli(["embed", "--victim", str(small_checkpoint), "--smiles", str(smi),
                              "--out", str(tmp_path / "e.npy")], capsys)
    assert code == 0, err
    assert "1 invalid" in out and "C" * 200 not in err + caplog.text


def test_import_victim_bad_sources_are_one_clear_error(tmp_path, capsys):
    (tmp_path / "dir.pth").mkdir()
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "bin.pth").write_bytes(bytes(range(256)))
    (tmp_path / "trunc.pth").write_bytes(b"PK\x03\x04truncated")
    for name, words in {"missing.pth": "not found", "dir.pth": "directory", "empty.pth": "empty",
                        "bin.pth": "not a torch file", "trunc.pth": "corrupt, truncated"}.items():
        code, _, err = run_cli(["import-victim", str(tmp_path / name), "--out", str(tmp_path / "v.pt")], capsys)
        assert code == 2 and words in one_error_line(err), name


def test_candidates_with_a_binary_vocabulary_file_is_one_clear_error(tmp_path, capsys):
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "templates.smi").write_bytes(bytes(range(128, 256)))
    (vocab / "motifs.smi").write_text("[*]C\n")
    code, _, err = run_cli(["candidates", "--vocab", str(vocab), "--out", str(tmp_path / "p.tsv")], capsys)
    assert code == 2 and "not UTF-8 text" in one_error_line(err)


def test_label_with_a_truncated_pool_is_one_clear_error(tmp_path, moses_sample, capsys):
    from molleak.candidates.pool import CandidateRecord, Step, write_pool

    recs = [CandidateRecord(s, 0, ((0, 0, 0),), (Step("C", "C", s),)) for s in moses_sample[:300]]
    write_pool(tmp_path / "pool.tsv.gz", recs)
    data = (tmp_path / "pool.tsv.gz").read_bytes()
    (tmp_path / "trunc.tsv.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "bank.smi").write_text("\n".join(moses_sample[:50]) + "\n")
    code, _, err = run_cli(["label", "--candidates", str(tmp_path / "trunc.tsv.gz"), "--bank",
                            str(tmp_path / "bank.smi"), "--out", str(tmp_path / "l.tsv"), "--no-cache"], capsys)
    assert code == 2 and "trunc.tsv.gz is unreadable after line" in one_error_line(err)
