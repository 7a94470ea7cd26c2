"""CLI: `molleak vocab`, `molleak candidates` and `molleak label` end to end on tiny real data."""

from __future__ import annotations

from molleak.candidates.pool import read_pool
from molleak.candidates.vocab import Vocabulary
from molleak.cli.main import main
from molleak.oracle import Labels


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_vocab_candidates_label_chain(tmp_path, moses_sample, capsys, monkeypatch):
    monkeypatch.setenv("MOLLEAK_CACHE_DIR", str(tmp_path / "cache"))
    aux = tmp_path / "aux.smi"
    aux.write_text("\n".join(moses_sample[:150] + ["not_a_smiles"]) + "\n")
    bank = tmp_path / "bank.smi"
    bank.write_text("\n".join(moses_sample[400:600]) + "\n")
    vocab_dir = tmp_path / "vocab"

    code, out, _ = run_cli(["vocab", "--aux", str(aux), "--out", str(vocab_dir), "--templates", "8",
                            "--motifs", "6", "--workers", "2"], capsys)
    assert code == 0 and "mined 8 templates" in out
    vocab = Vocabulary.load(vocab_dir)
    assert len(vocab.templates) == 8 and len(vocab.motifs) == 6
    assert vocab.meta["aux_molecules"] == 150 and vocab.meta["mined_from"] == str(aux)

    pool = tmp_path / "pool.tsv.gz"
    code, out, _ = run_cli(["candidates", "--vocab", str(vocab_dir), "--steps", "2", "--templates", "0", "3", "--workers", "2",
                            "--out", str(pool)], capsys)
    assert code == 0 and "0 rejected at finalisation" in out
    records = read_pool(pool)
    assert {r.template for r in records} == {0, 3}
    assert all(len(r.actions) == 2 for r in records)
    assert f"{len(records)} records" in out

    labels_path = tmp_path / "labels.tsv"
    code, out, _ = run_cli(["label", "--candidates", str(pool), "--bank", str(bank), "--out", str(labels_path)],
                           capsys)
    assert code == 0 and "substructure hits" in out
    labels = Labels.read(labels_path)
    assert labels.smiles == list(dict.fromkeys(r.smiles for r in records))
    assert (labels.count >= 0).all() and ((labels.count > 0) == labels.substructure).all()

    # a SMILES file works too, and a second run is served by the cache
    smi = tmp_path / "cands.smi"
    smi.write_text("\n".join(labels.smiles[:30]) + "\n")
    code, out, _ = run_cli(["label", "--candidates", str(smi), "--bank", str(bank), "--out",
                            str(tmp_path / "l2.tsv")], capsys)
    assert code == 0 and "(30 from cache)" in out


def test_user_errors_are_one_line(tmp_path, capsys):
    code, _, err = run_cli(["vocab", "--aux", str(tmp_path / "missing.smi"), "--out", str(tmp_path / "v")], capsys)
    assert code == 2 and err.strip().startswith("molleak: error:") and err.count("\n") == 1
    code, _, err = run_cli(["candidates", "--vocab", str(tmp_path / "nope"), "--out", str(tmp_path / "p.tsv")],
                           capsys)
    assert code == 2 and "vocabulary directory not found" in err
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "templates.smi").write_text("*c1ccccc1\n")
    (tmp_path / "v" / "motifs.smi").write_text("Cl[*:1]\n")
    code, _, err = run_cli(["candidates", "--vocab", str(tmp_path / "v"), "--templates", "5",
                            "--out", str(tmp_path / "p.tsv")], capsys)
    assert code == 2 and "out of range" in err
    code, _, err = run_cli(["label", "--candidates", str(tmp_path / "none.tsv"), "--bank", str(tmp_path / "b.smi"),
                            "--out", str(tmp_path / "l.tsv")], capsys)
    assert code == 2 and "not found" in err
