"""The audit on chemprop victims: one-step extraction through a chemprop victim, then the whole audit.

The victim is a tiny chemprop D-MPNN regression model trained here by molleak's trainer; the attack
sees it only through `Victim.embed` (its fingerprint), exactly as a GIN victim.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("chemprop", reason="chemprop is not installed (pip install 'molleak[chemprop]')")

from molleak import rundir  # noqa: E402
from molleak.cli.main import main  # noqa: E402
from molleak.models.checkpoint import read_checkpoint_file  # noqa: E402
from molleak.pretrain.trainer import PretrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recipe(epochs: int = 2) -> PretrainConfig:
    return PretrainConfig(strategy="chemprop", epochs=epochs, batch_size=32, lr=5e-3, seed=0, encoder="chemprop",
                          encoder_config={"d_h": 64, "depth": 2})


@pytest.fixture(scope="module")
def chemprop_victims(tmp_path_factory, moses_sample) -> tuple[Path, Path, Path]:
    """A chemprop victim on one fixture set and its reference victim on a disjoint one (the one builder)."""
    from molleak.data.smiles_io import write_smiles
    from molleak.victims.build import ensure_victim

    out = tmp_path_factory.mktemp("chemprop")
    private, reference = moses_sample[:300], moses_sample[300:600]
    write_smiles(out / "private.smi", private)
    victim = ensure_victim("victim", _recipe(), private, None, out / "victim.pt").path
    ref = ensure_victim("reference", _recipe(), reference, None, out / "reference.pt").path
    return victim, ref, out / "private.smi"


def test_one_step_extraction_through_a_chemprop_victim(chemprop_victims, moses_sample, tmp_path, capsys):
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import write_smiles

    victim, reference, private = chemprop_victims
    assert read_checkpoint_file(victim)["encoder"]["name"] == "chemprop"
    write_smiles(tmp_path / "aux.smi", moses_sample[2000:2400])
    mine_vocabulary(moses_sample[2000:2400], n_templates=6, n_motifs=12, workers=1).save(tmp_path / "vocab")
    runs = {}
    for name, model in (("victim", victim), ("reference", reference)):
        runs[name] = tmp_path / name
        rc = main(["-q", "extract", "--victim", str(model), "--aux", str(tmp_path / "aux.smi"), "--vocab",
                   str(tmp_path / "vocab"), "--method", "adapter", "--k", "10", "--seed", "0", "--workers", "1",
                   "--out", str(runs[name])])
        assert rc == 0 and "victim queries" in capsys.readouterr().out
        assert main(["-q", "evaluate", str(runs[name]), "--private", str(private), "--k", "10", "--no-fcd"]) == 0
        capsys.readouterr()
    extract = json.loads((runs["victim"] / "extract.json").read_text())
    assert extract["queries"] > 10
    results = json.loads((runs["victim"] / "results.json").read_text())
    assert 0.0 <= results["precision_substructure@10"] <= 1.0
    # the scores came from each model's own fingerprint: the victim and its reference rank differently
    scores = {n: (runs[n] / rundir.SCORES_FILE).read_text() for n in runs}
    assert scores["victim"] != scores["reference"]


def test_untrained_control_of_a_chemprop_recipe_is_a_chemprop_encoder(tmp_path):
    from molleak.victims.build import ensure_victim

    recipe = PretrainConfig(strategy="chemprop", epochs=1, seed=0)  # as `molleak audit` builds it
    path = ensure_victim("untrained", recipe, None, None, tmp_path / "untrained.pt").path
    assert read_checkpoint_file(path)["encoder"]["name"] == "chemprop"
    # and its weights are the trained victim's initial weights: the trainer builds the strategy the same way
    from molleak.pretrain.trainer import build_strategy

    torch.manual_seed(recipe.seed)
    init = build_strategy(recipe).encoder.state_dict()
    saved = read_checkpoint_file(path)["state_dict"]
    assert all(torch.equal(init[k], saved[k]) for k in init)


@pytest.mark.slow
def test_whole_audit_on_a_chemprop_victim(tmp_path, capsys):
    config = tmp_path / "audit.toml"
    config.write_text("""
[data]
tier = "tiny"
seed = 0

[victim]
strategy = "chemprop"
epochs = 1
batch_size = 64
seed = 0

[attack]
n_templates = 10
n_motifs = 20
one_step_methods = ["adapter", "prior_fp"]
two_step = false
k = 20
seed = 0
""")
    out = tmp_path / "audit"
    assert main(["-q", "audit", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "audit.json").read_text())
    for role in ("victim", "reference"):
        ckpt = read_checkpoint_file(summary["models"][role])
        assert ckpt["encoder"]["name"] == "chemprop" and ckpt["provenance"]["strategy"] == "chemprop"
    assert {"one_step/adapter", "one_step/adapter@reference"} <= set(summary["runs"])
    attribution = json.loads((out / "attribution.json").read_text())
    assert "one_step" in attribution and "membership" in attribution
