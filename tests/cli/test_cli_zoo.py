"""`molleak zoo` and `molleak import-victim` from the command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molleak.cli.main import main
from molleak.data.smiles_io import write_smiles
from molleak.models.gin import GINEncoder
from molleak.models.victim import Victim

TINY_ARGS = ["--epochs", "1", "--layers", "2", "--emb-dim", "16", "--batch-size", "32", "--finetune-epochs", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_zoo_verb_builds_then_skips(tmp_path, moses_sample, capsys):
    data = tmp_path / "data"
    write_smiles(data / "private.smi", moses_sample[:100])
    out = tmp_path / "zoo"
    assert main(["-q", "zoo", "--data", str(data), "--out", str(out), "--strategies", "graphcl", *TINY_ARGS]) == 0
    assert "built 1 (graphcl)" in capsys.readouterr().out
    assert Victim.from_checkpoint(out / "graphcl.pt").dim == 16
    assert main(["-q", "zoo", "--data", str(data), "--out", str(out), "--strategies", "graphcl", *TINY_ARGS]) == 0
    assert "skipped 1 (graphcl)" in capsys.readouterr().out


def test_zoo_verb_bad_input_is_one_line(tmp_path, capsys):
    assert main(["zoo", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("molleak: error:") and "\n" not in err
    (tmp_path / "d").mkdir()
    write_smiles(tmp_path / "d" / "private.smi", ["CCO", "CCN"])
    assert main(["zoo", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "z"), "--strategies", "bogus"]) == 2
    assert "unknown zoo victim 'bogus'" in capsys.readouterr().err


def test_import_victim_keeps_the_published_weights(tmp_path, moses_sample, capsys):
    torch.manual_seed(0)
    gin = GINEncoder(num_layers=3, emb_dim=24).eval()
    published = tmp_path / "supervised_contextpred.pth"
    torch.save({f"gnn.{k}": v for k, v in gin.state_dict().items()}, published)  # pretrain-gnns layout
    out = tmp_path / "imported.pt"
    assert main(["-q", "import-victim", str(published), "--out", str(out), "--strategy", "contextpred",
                 "--training-set", "ZINC15 2M (publisher)"]) == 0
    victim = Victim.from_checkpoint(out)
    assert victim.provenance["strategy"] == "contextpred"
    assert victim.provenance["training_set"] == "ZINC15 2M (publisher)"
    assert len(victim.provenance["source_sha256"]) == 64
    probe = moses_sample[:20]
    np.testing.assert_array_equal(victim.embed(probe), Victim(gin).embed(probe))
    capsys.readouterr()
    assert main(["import-victim", str(out), "--out", str(tmp_path / "again.pt")]) == 2
    assert "already a molleak victim checkpoint" in capsys.readouterr().err
