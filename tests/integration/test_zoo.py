"""The zoo builder on a tiny training set: files, provenance, skipping, rebuilding, the regression victim."""

from __future__ import annotations

import numpy as np
import pytest

from molleak.data.smiles_io import read_smiles, write_smiles
from molleak.models.checkpoint import read_checkpoint_file
from molleak.models.victim import Victim
from molleak.runs import sha256_lines
from molleak.victims.zoo import ZOO_VICTIMS, ZooConfig, build_zoo

TINY = dict(seed=0, batch_size=32, encoder_config={"num_layers": 2, "emb_dim": 16},
            grover_config={"hidden": 8, "heads": 1, "depth": 1}, finetune_epochs=1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def tiny_data(tmp_path, moses_sample):
    d = tmp_path / "data"
    write_smiles(d / "private.smi", moses_sample[:120])
    return d


def test_zoo_builds_skips_and_rebuilds(tiny_data, tmp_path):
    out = tmp_path / "zoo"
    m1 = build_zoo(tiny_data, out, ["edgepred", "regression"], ZooConfig(epochs=1, **TINY), progress=False)
    # regression needs its base victim (attrmask), which is built although not asked for
    assert [v["victim"] for v in m1["victims"]] == ["edgepred", "attrmask", "regression"]
    assert all(v["status"] == "built" for v in m1["victims"])
    for name in ("edgepred", "attrmask", "regression"):
        assert (out / f"{name}.pt").exists()
    assert (out / "zoo.json").exists()

    prov = read_checkpoint_file(out / "regression.pt")["provenance"]
    ft = read_smiles(out / "regression.finetune.smi", canonicalize=False).smiles
    roles = {s["role"]: s for s in prov["training_sets"]}
    assert roles["finetuning"]["sha256"] == prov["finetune_sha256"] == sha256_lines(ft)
    assert roles["pretraining"]["sha256"] == sha256_lines(moses_sample_private(tiny_data))
    assert "pre-training set + fine-tuning set" in prov["evaluation_training_set"]
    assert prov["base_strategy"] == "attrmask"
    base, reg = Victim.from_checkpoint(out / "attrmask.pt"), Victim.from_checkpoint(out / "regression.pt")
    probe = ft[:16]
    assert np.abs(base.embed(probe) - reg.embed(probe)).max() > 1e-4  # fine-tuning moved the encoder

    m2 = build_zoo(tiny_data, out, ["edgepred", "regression"], ZooConfig(epochs=1, **TINY), progress=False)
    assert [v["status"] for v in m2["victims"]] == ["skipped", "skipped"]

    # a different config rebuilds that victim, and the regression victim follows its new base
    m3 = build_zoo(tiny_data, out, ["attrmask", "regression"], ZooConfig(epochs=2, **TINY), progress=False)
    assert [v["status"] for v in m3["victims"]] == ["built", "built"]


def moses_sample_private(data_dir):
    return read_smiles(data_dir / "private.smi").smiles


@pytest.mark.slow
def test_full_tiny_zoo(tiny_data, tmp_path):
    out = tmp_path / "zoo"
    manifest = build_zoo(tiny_data, out, None, ZooConfig(epochs=2, **TINY), progress=False)
    assert [v["victim"] for v in manifest["victims"]] == list(ZOO_VICTIMS)
    for name in ZOO_VICTIMS:
        victim = Victim.from_checkpoint(out / f"{name}.pt")
        assert victim.provenance["strategy"] == name
        assert victim.embed(["CCO", "c1ccncc1"]).shape == (2, victim.dim)


def test_parallel_workers_build_the_same_victims(tiny_data, tmp_path):
    """Victims built two at a time in worker processes equal those built one after another."""
    names = ["attrmask", "edgepred"]
    serial = build_zoo(tiny_data, tmp_path / "serial", names, ZooConfig(epochs=1, **TINY), progress=False)
    parallel = build_zoo(tiny_data, tmp_path / "parallel", names, ZooConfig(epochs=1, **TINY), progress=False,
                         workers=2)
    assert parallel["workers"] == 2 and parallel["wall_seconds"] > 0
    assert sorted(v["victim"] for v in parallel["victims"]) == sorted(v["victim"] for v in serial["victims"])
    probe = ["CCO", "c1ccncc1", "CC(=O)Nc1ccc(O)cc1"]
    for name in names:
        a = Victim.from_checkpoint(tmp_path / "serial" / f"{name}.pt").embed(probe)
        b = Victim.from_checkpoint(tmp_path / "parallel" / f"{name}.pt").embed(probe)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_regression_victim_is_evaluated_against_pretraining_plus_finetuning(tiny_data, tmp_path):
    from molleak.errors import MolleakError
    from molleak.plans.bench.runner import BenchPaths, training_set_file
    from molleak.plans.bench.suites import BenchConfig, CellSpec
    from molleak.victims.zoo import evaluation_training_set

    out = tmp_path / "bench" / "zoo"
    build_zoo(tiny_data, out, ["edgepred", "regression"], ZooConfig(epochs=1, regression_base="edgepred", **TINY),
              progress=False)
    assert evaluation_training_set(out / "edgepred.pt") is None  # one training set: evaluate as usual
    union = evaluation_training_set(out / "regression.pt", search_dirs=(tiny_data,))
    private = read_smiles(tiny_data / "private.smi").smiles
    finetune = read_smiles(out / "regression.finetune.smi").smiles
    assert union == list(dict.fromkeys(private + finetune)) and len(union) > len(private)
    # the bench scores every column of the regression row against that union, the others against P
    paths = BenchPaths(tmp_path / "bench", BenchConfig(data=str(tiny_data)))
    scored = training_set_file(paths, CellSpec("adapter", 1, "regression", role="untrained"))
    assert read_smiles(scored).smiles == union
    assert training_set_file(paths, CellSpec("adapter", 1, "edgepred")) == tiny_data / "private.smi"
    assert training_set_file(paths, CellSpec("random", 1)) == tiny_data / "private.smi"
    write_smiles(out / "regression.finetune.smi", finetune[:-1])  # the set changed since training
    with pytest.raises(MolleakError, match="no longer matches the finetuning set"):
        evaluation_training_set(out / "regression.pt", search_dirs=(tiny_data,))


def test_the_regression_victims_reference_is_its_fine_tune_on_the_base_reference(tiny_data, tmp_path, moses_sample):
    import torch

    from molleak.plans.bench.runner import BenchPaths, prepare_victims
    from molleak.plans.bench.suites import BenchConfig

    write_smiles(tiny_data / "reference.smi", moses_sample[200:320])
    config = BenchConfig(data=str(tiny_data), victims=["regression"], epochs=1, finetune_epochs=1,
                         encoder_config={"num_layers": 2, "emb_dim": 16})
    paths = BenchPaths(tmp_path / "bench", config)
    unavailable = prepare_victims(paths, config, {("regression", "victim"), ("regression", "reference")})
    assert unavailable == {}
    victim = read_checkpoint_file(paths.victim("regression", "victim"))
    reference = read_checkpoint_file(paths.victim("regression", "reference"))
    base_reference = read_checkpoint_file(paths.victim("attrmask", "reference"))
    prov = reference["provenance"]
    assert prov["config"] == victim["provenance"]["config"]  # the same fine-tune recipe
    assert prov["finetune_sha256"] == victim["provenance"]["finetune_sha256"]  # on the same logBB set
    assert prov["training_sets"][0]["sha256"] == sha256_lines(moses_sample[200:320])  # from a base that saw P'
    assert base_reference["provenance"]["train_sha256"] == sha256_lines(moses_sample[200:320])
    assert any(not torch.equal(a, b) for a, b in zip(reference["state_dict"].values(),
                                                     victim["state_dict"].values(), strict=True))
    mtime = paths.victim("regression", "reference").stat().st_mtime
    assert prepare_victims(paths, config, {("regression", "victim"), ("regression", "reference")}) == {}
    assert paths.victim("regression", "reference").stat().st_mtime == mtime  # reused, not re-trained


def test_a_victim_built_by_an_older_recipe_is_rebuilt(tiny_data, tmp_path, monkeypatch):
    from molleak.pretrain.edgepred import EdgePred

    out = tmp_path / "zoo"
    build_zoo(tiny_data, out, ["edgepred", "attrmask"], ZooConfig(epochs=1, **TINY), progress=False)
    monkeypatch.setattr(EdgePred, "recipe_version", EdgePred.recipe_version + 1)
    m = build_zoo(tiny_data, out, ["edgepred", "attrmask"], ZooConfig(epochs=1, **TINY), progress=False)
    assert {v["victim"]: v["status"] for v in m["victims"]} == {"edgepred": "built", "attrmask": "skipped"}
    assert read_checkpoint_file(out / "edgepred.pt")["provenance"]["recipe_version"] == EdgePred.recipe_version
