import subprocess
import sys

import numpy as np
import pytest
import torch

from molleak.cli.main import build_parser, main


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def verbs():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("verb", verbs())
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    assert "usage: molleak " + verb in capsys.readouterr().out


def test_entry_point_installed():
    out = subprocess.run([sys.executable, "-m", "molleak.cli.main", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("molleak ")


def test_pretrain_and_embed_with_invalid_lines_reported(tmp_path, moses_sample, capsys, caplog):
    smi = tmp_path / "train.smi"
    smi.write_text("\n".join(moses_sample[:120] + ["not_a_smiles", moses_sample[0]]) + "\n")
    code, out, err = run_cli(["pretrain", "--strategy", "attrmask", "--smiles", str(smi), "--out",
                              str(tmp_path / "v.pt"), "--epochs", "1", "--batch-size", "32", "--emb-dim", "16",
                              "--layers", "2", "--seed", "0"], capsys)
    assert code == 0, err
    assert "1 invalid, 1 duplicate" in out
    assert "not_a_smiles" in err + caplog.text  # the warning names the bad line
    code, out, err = run_cli(["embed", "--victim", str(tmp_path / "v.pt"), "--smiles", str(smi),
                              "--out", str(tmp_path / "e.npy")], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "e.npy").shape == (120, 16)


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("molleak: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_inputs_give_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty.smi").write_text("")
    code, _, err = run_cli(["pretrain", "--strategy", "attrmask", "--smiles", str(tmp_path / "empty.smi"),
                            "--out", str(tmp_path / "v.pt")], capsys)
    assert code == 2 and "empty" in one_error_line(err)

    code, _, err = run_cli(["pretrain", "--strategy", "attrmask", "--smiles", str(tmp_path / "nope.smi"),
                            "--out", str(tmp_path / "v.pt")], capsys)
    assert code == 2 and "not found" in one_error_line(err)

    (tmp_path / "m.smi").write_text("CCO\n")
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    code, _, err = run_cli(["embed", "--victim", str(tmp_path / "corrupt.pt"), "--smiles",
                            str(tmp_path / "m.smi"), "--out", str(tmp_path / "e.npy")], capsys)
    assert code == 2 and "corrupt" in one_error_line(err)

    from molleak.models.gin import GINEncoder

    sd = GINEncoder(2, 16).state_dict()
    sd["gnns.0.mlp.0.weight"] = torch.zeros(5, 5)
    torch.save(sd, tmp_path / "shape.pth")
    code, _, err = run_cli(["embed", "--victim", str(tmp_path / "shape.pth"), "--smiles",
                            str(tmp_path / "m.smi"), "--out", str(tmp_path / "e.npy")], capsys)
    assert code == 2 and "has shape (5, 5)" in one_error_line(err)

