"""chemprop victims: the encoder is chemprop's fingerprint, trains in molleak's trainer, and round-trips.

Every comparison is against chemprop's own code path: chemprop's datapoints, dataset, collate and
`MPNN.fingerprint` on the same weights. Files written by chemprop are read weights-only.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

chemprop = pytest.importorskip("chemprop", reason="chemprop is not installed (pip install 'molleak[chemprop]')")

from chemprop import data as cdata  # noqa: E402
from chemprop import models as cmodels  # noqa: E402
from chemprop import nn as cnn  # noqa: E402

from molleak.errors import CheckpointError, FeaturizationError  # noqa: E402
from molleak.models.base import build_encoder  # noqa: E402
from molleak.models.checkpoint import read_checkpoint_file  # noqa: E402
from molleak.models.chemprop_files import chemprop_encoder, import_chemprop, read_chemprop_file  # noqa: E402
from molleak.models.chemprop_mpnn import parameter_count  # noqa: E402
from molleak.models.victim import Victim  # noqa: E402
from molleak.pretrain.trainer import PretrainConfig, pretrain  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: molecules beyond the fixture's: one atom and no bond, two fragments, charges, stereo, a halogen
EDGE_CASES = ["C", "[Na+].[Cl-]", "C[C@H](N)C(=O)[O-]", "F/C=C/Br", "c1ccc2[nH]ccc2c1", "O=S(=O)(O)c1ccccc1I"]
TINY = {"d_h": 64, "depth": 2}


@pytest.fixture(scope="module")
def molecules(moses_sample) -> list[str]:
    return moses_sample[2000:2040] + EDGE_CASES


def chemprop_fingerprint(model, smiles: list[str], featurizer=None) -> np.ndarray:
    """chemprop's own path: datapoints -> dataset -> collate -> `MPNN.fingerprint` (eval mode)."""
    ds = cdata.MoleculeDataset([cdata.MoleculeDatapoint.from_smi(s) for s in smiles],
                               **({"featurizer": featurizer} if featurizer is not None else {}))
    batch = cdata.collate_batch([ds[i] for i in range(len(ds))])
    model.eval()
    with torch.no_grad():
        return model.fingerprint(batch.bmg).numpy()


def chemprop_model(seed: int, agg: str = "mean", batch_norm: bool = False, **mp):
    torch.manual_seed(seed)
    aggs = {"mean": cnn.MeanAggregation(), "sum": cnn.SumAggregation(), "norm": cnn.NormAggregation(norm=37.0),
            "attentive": cnn.AttentiveAggregation(output_size=mp.get("d_h", 300))}
    model = cmodels.MPNN(cnn.BondMessagePassing(**mp), aggs[agg], cnn.RegressionFFN(input_dim=mp.get("d_h", 300)),
                         batch_norm=batch_norm)
    if batch_norm:  # non-trivial running statistics, so eval-mode BatchNorm is tested
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2.0)
    return model


CASES = {
    "defaults": ({}, None),
    "norm+bn+prelu": ({"agg": "norm", "batch_norm": True, "activation": "prelu", "d_h": 48}, None),
    "attentive+bias+undirected": ({"agg": "attentive", "bias": True, "undirected": True, "depth": 4, "d_h": 40}, None),
    "sum+v1 atoms": ({"agg": "sum", "d_v": 133, "d_h": 24}, "v1"),
    "rigr": ({"d_v": 52, "d_e": 2, "d_h": 24}, "rigr"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_imported_chemprop_file_embeds_as_chemprop_fingerprint(case, molecules, tmp_path):
    kwargs, mode = CASES[case]
    kwargs = dict(kwargs)
    agg, bn = kwargs.pop("agg", "mean"), kwargs.pop("batch_norm", False)
    model = chemprop_model(1, agg, bn, **kwargs)
    src = tmp_path / "model.pt"
    cmodels.save_model(src, model, ["y"])  # chemprop's own writer
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(src, weights_only=True)  # why molleak reads it with inert stand-ins
    prov = import_chemprop(src, tmp_path / "victim.pt", training_set="unit test")
    assert prov["chemprop"]["config"]["atom_features"] == (mode or "v2")
    assert prov["chemprop"]["output_columns"] == ["y"]
    featurizer = None
    if mode is not None:
        from molleak.models.chemprop_mpnn import chemprop_featurizer

        featurizer = chemprop_featurizer(mode)
    expected = chemprop_fingerprint(model, molecules, featurizer)
    victim = Victim.from_checkpoint(tmp_path / "victim.pt", cache=False)
    got = victim.embed(molecules)
    assert got.shape == expected.shape and np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    head = read_checkpoint_file(tmp_path / "victim.pt")["extra_state"]["chemprop_head"]["predictor"]
    assert torch.equal(head["predictor.ffn.0.0.weight"], model.state_dict()["predictor.ffn.0.0.weight"])


def test_parameter_count_is_exact():
    for config in ({}, {"d_h": 17, "bias": True, "activation": "prelu", "batch_norm": True},
                   {"aggregation": "attentive", "atom_features": "rigr", "d_h": 9}):
        enc = build_encoder("chemprop", config)
        assert parameter_count(enc.config()) == sum(p.numel() for p in enc.parameters())


@pytest.mark.parametrize(("config", "message"), [
    ({"depth": 0}, "depth must be an integer"),
    ({"d_h": 10**7}, "d_h must be an integer"),
    ({"d_h": 40_000}, "parameters, over the bound"),
    ({"aggregation": "max"}, "aggregation must be one of"),
    ({"atom_features": "v3"}, "atom_features must be one of"),
    ({"batch_norm": "yes"}, "batch_norm must be true or false"),
])
def test_bad_encoder_config_is_refused_before_allocating(config, message):
    with pytest.raises(ValueError, match=message):
        build_encoder("chemprop", config)


def test_a_dummy_atom_is_one_featurisation_error():
    victim = Victim(build_encoder("chemprop", TINY), cache=False)
    with pytest.raises(FeaturizationError, match="dummy atom"):
        victim.embed(["*c1ccccc1"])


def tiny_config(epochs: int = 3, seed: int = 0, **hparams) -> PretrainConfig:
    return PretrainConfig(strategy="chemprop", epochs=epochs, batch_size=32, lr=5e-3, seed=seed, encoder="chemprop",
                          encoder_config=dict(TINY), hparams=hparams)


def test_tiny_victim_trains_deterministically_and_round_trips(moses_sample, molecules, tmp_path):
    smiles = moses_sample[:256]
    prov = pretrain(smiles, tiny_config(epochs=6), tmp_path / "a.pt", progress=False)
    losses = prov["loss_per_epoch"]
    assert losses[-1] < 0.75 * losses[0], losses  # standardised logP: MSE starts near 1 (0.54 measured)
    assert prov["strategy"] == "chemprop" and prov["collapsed"] is False
    ckpt = read_checkpoint_file(tmp_path / "a.pt")
    assert ckpt["encoder"] == {"name": "chemprop", "config": build_encoder("chemprop", TINY).config()}
    head = ckpt["extra_state"]["chemprop_head"]
    assert head["target"] == "logp" and len(head["target_mean_sd"]) == 2
    # the same seed, the same weights; another seed, others
    pretrain(smiles, tiny_config(epochs=6), tmp_path / "b.pt", progress=False)
    other = read_checkpoint_file(tmp_path / "b.pt")["state_dict"]
    assert all(torch.equal(ckpt["state_dict"][k], other[k]) for k in other)
    pretrain(smiles, tiny_config(epochs=1, seed=1), tmp_path / "c.pt", progress=False)
    assert not torch.equal(read_checkpoint_file(tmp_path / "c.pt")["state_dict"]["message_passing.W_i.weight"],
                           other["message_passing.W_i.weight"])
    # checkpoint round trip: identical embeddings, and they are chemprop's fingerprint of the same modules
    victim = Victim.from_checkpoint(tmp_path / "a.pt", cache=False)
    again = Victim.from_checkpoint(tmp_path / "a.pt", cache=False)
    emb = victim.embed(molecules)
    np.testing.assert_array_equal(emb, again.embed(molecules))
    enc = victim.encoder
    model = cmodels.MPNN(enc.message_passing, enc.agg, cnn.RegressionFFN(input_dim=enc.emb_dim))
    np.testing.assert_allclose(emb, chemprop_fingerprint(model, molecules), atol=1e-6, rtol=0)


def test_interrupted_run_resumes_to_the_same_weights(moses_sample, tmp_path, monkeypatch):
    from molleak.pretrain.chemprop_regression import ChempropRegression

    smiles = moses_sample[300:428]
    pretrain(smiles, tiny_config(epochs=3), tmp_path / "straight.pt", progress=False)
    original = ChempropRegression.begin_epoch

    def crash_at_epoch_2(self, epoch, epochs):
        if epoch == 2:
            raise KeyboardInterrupt
        original(self, epoch, epochs)

    monkeypatch.setattr(ChempropRegression, "begin_epoch", crash_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        pretrain(smiles, tiny_config(epochs=3), tmp_path / "resumed.pt", progress=False)
    monkeypatch.setattr(ChempropRegression, "begin_epoch", original)
    pretrain(smiles, tiny_config(epochs=3), tmp_path / "resumed.pt", progress=False)
    a = read_checkpoint_file(tmp_path / "straight.pt")
    b = read_checkpoint_file(tmp_path / "resumed.pt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["extra_state"]["chemprop_head"]["target_mean_sd"] == b["extra_state"]["chemprop_head"]["target_mean_sd"]


def test_bad_strategy_settings_are_one_error(moses_sample, tmp_path):
    from molleak.errors import MolleakError

    with pytest.raises(MolleakError, match="unknown target 'logd'"):
        pretrain(moses_sample[:40], tiny_config(target="logd"), tmp_path / "x.pt", progress=False)
    with pytest.raises(MolleakError, match="trains a chemprop encoder, not a GINEncoder"):
        pretrain(moses_sample[:40], tiny_config(), tmp_path / "x.pt", progress=False,
                 init_encoder=build_encoder("gin", {"num_layers": 1, "emb_dim": 8}))


def test_state_dict_only_file_needs_depth_and_aggregation(molecules, tmp_path):
    model = chemprop_model(2, "sum", True, d_h=24, depth=4)
    src = tmp_path / "weights.pt"
    torch.save({"state_dict": model.state_dict()}, src)  # weights-only loadable: no hyper-parameters
    with pytest.raises(CheckpointError, match="holds weights only.*give its depth and aggregation"):
        chemprop_encoder(src)
    enc, info = chemprop_encoder(src, depth=4, aggregation="sum")
    assert info["file_kind"] == "state_dict" and enc.config()["batch_norm"] is True
    np.testing.assert_allclose(Victim(enc, cache=False).embed(molecules), chemprop_fingerprint(model, molecules),
                               atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match="says depth = 4; the given 3 disagrees"):
        cmodels.save_model(tmp_path / "full.pt", model)
        chemprop_encoder(tmp_path / "full.pt", depth=3)


class _Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (subprocess.check_call, (["touch", self.marker],))


def test_a_file_naming_code_never_runs_it(tmp_path):
    marker = tmp_path / "ran"
    src = tmp_path / "hostile.pt"
    torch.save({"hyper_parameters": {"x": _Hostile(marker)}, "state_dict": {}}, src)
    obj = read_chemprop_file(src)
    assert not marker.exists()  # the global loaded as an inert stand-in and was never called
    # (pickle protocol 2 writes subprocess.check_call under its Python 2 module name, commands)
    assert type(obj["hyper_parameters"]["x"]).dotted_name.endswith(".check_call")
    with pytest.raises(CheckpointError, match="not a dict of tensors"):
        chemprop_encoder(src)
    import os

    class _Os:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"hyper_parameters": _Os()}, src)
    with pytest.raises(CheckpointError, match="corrupt, truncated or not a torch weights file"):
        read_chemprop_file(src)  # torch refuses globals of os/sys before any allowlist
    assert not marker.exists()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("smiles,y\nCCO,1\n"), "not a torch file"),
    (lambda p: torch.save({"state_dict": {"w": torch.zeros(2)}}, p), "no message_passing.W_i/W_o"),
])
def test_bad_files_are_one_error(make, message, tmp_path):
    src = tmp_path / "bad.pt"
    make(src)
    with pytest.raises(CheckpointError, match=message):
        chemprop_encoder(src, depth=3, aggregation="mean")


def test_models_the_encoder_cannot_represent_are_refused(tmp_path):
    torch.manual_seed(0)
    atom = cmodels.MPNN(cnn.AtomMessagePassing(), cnn.MeanAggregation(), cnn.RegressionFFN())
    cmodels.save_model(tmp_path / "atom.pt", atom)
    with pytest.raises(CheckpointError, match="its message passing is AtomMessagePassing"):
        chemprop_encoder(tmp_path / "atom.pt")
    extra = cmodels.MPNN(cnn.BondMessagePassing(), cnn.MeanAggregation(), cnn.RegressionFFN(input_dim=310))
    cmodels.save_model(tmp_path / "xd.pt", extra)
    with pytest.raises(CheckpointError, match="extra molecule descriptors"):
        chemprop_encoder(tmp_path / "xd.pt")


def test_import_victim_cli(molecules, tmp_path, capsys):
    from molleak.cli.main import main

    model = chemprop_model(3, "mean", False, d_h=16)
    cmodels.save_model(tmp_path / "model.pt", model)
    out = tmp_path / "victim.pt"
    assert main(["-q", "import-victim", "--arch", "chemprop", str(tmp_path / "model.pt"), "--out", str(out),
                 "--training-set", "private assay data"]) == 0
    assert "D-MPNN d_h 16, depth 3, mean aggregation" in capsys.readouterr().out
    prov = read_checkpoint_file(out)["provenance"]
    assert prov["training_set"] == "private assay data" and prov["source"] == "chemprop save_model file"
    np.testing.assert_allclose(Victim.from_checkpoint(out).embed(molecules), chemprop_fingerprint(model, molecules),
                               atol=1e-6, rtol=0)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "weights.pt")
    for argv, message in (
        (["--arch", "chemprop", str(tmp_path / "weights.pt")], "give its depth and aggregation"),
        (["--arch", "chemprop", str(tmp_path / "weights.pt"), "--depth", "0", "--aggregation", "mean"],
         "depth must be an integer"),
        ([str(tmp_path / "model.pt"), "--depth", "3"], "--depth apply to chemprop models only"),
    ):
        assert main(["import-victim", *argv, "--out", str(tmp_path / "x.pt")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("molleak: error:") and message in err and len(err.splitlines()) == 1, err
