"""Hostile and broken inputs to the library: one clear MolleakError each, never a traceback or a crash."""

from __future__ import annotations

import gzip
import logging
import math

import numpy as np
import pytest
import torch

from molleak.candidates.pool import CandidateRecord, Step, read_pool, write_pool
from molleak.chem import MAX_HEAVY_ATOMS, MAX_SMILES_LENGTH, canonical_smiles, to_mol
from molleak.config import load_config
from molleak.data.featurize import featurize_smiles
from molleak.data.smiles_io import read_smiles
from molleak.errors import CheckpointError, FeaturizationError, InputFileError, MolleakError
from molleak.models.base import build_encoder
from molleak.models.checkpoint import (
    FORMAT,
    MAX_ENCODER_PARAMETERS,
    encoder_parameter_count,
    load_encoder,
    save_checkpoint,
)
from molleak.models.victim import Victim
from molleak.pretrain.trainer import PretrainConfig, embedding_spread, encoder_spread

# ---------------------------------------------------------------------------------------------
# pre-training config


@pytest.mark.parametrize(("field", "value"), [
    ("lr", float("nan")), ("lr", float("inf")), ("lr", 0.0), ("lr", -1e-3),
    ("epochs", 0), ("epochs", -2), ("epochs", 1.5), ("batch_size", 0), ("batch_size", 1),
    ("seed", -1), ("seed", 2**40), ("weight_decay", float("nan")), ("weight_decay", -0.1),
])
def test_pretrain_config_rejects_bad_numbers_naming_the_field(field, value):
    with pytest.raises(MolleakError, match=field):
        PretrainConfig(strategy="attrmask", **{field: value})


def test_pretrain_config_accepts_sane_numbers():
    cfg = PretrainConfig(strategy="attrmask", epochs=1, batch_size=2, lr=1e-5, seed=2**32 - 1, weight_decay=0.0)
    assert cfg.seed == 2**32 - 1


# ---------------------------------------------------------------------------------------------
# config files


def test_binary_config_is_one_clear_error(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_bytes(b"\xff\xfe\x00[victim]\x80\x81")
    with pytest.raises(InputFileError, match=r"audit.toml is not UTF-8 text"):
        load_config(path)


def test_config_directory_is_one_clear_error(tmp_path):
    with pytest.raises(InputFileError, match="is not a file"):
        load_config(tmp_path)


@pytest.mark.parametrize(("text", "where"), [
    ("[victim]\nlr = inf\n", "victim.lr"), ("[victim]\nlr = nan\n", "victim.lr"),
    ("[data]\nseed = -1\n", "data.seed"), ("[attack]\nseed = -7\n", "attack.seed"),
])
def test_config_rejects_non_finite_lr_and_negative_seeds(tmp_path, text, where):
    path = tmp_path / "audit.toml"
    path.write_text(text)
    with pytest.raises(InputFileError, match=where):
        load_config(path)


# ---------------------------------------------------------------------------------------------
# SMILES files and molecule size bounds


@pytest.mark.parametrize("data", [bytes(range(256)) * 4, b"CCO\x00CC\nCCN\n", b"CCO\nCC\xff\xfeN\n"])
def test_binary_smiles_file_is_one_clear_error(tmp_path, data):
    path = tmp_path / "x.smi"
    path.write_bytes(data)
    with pytest.raises(InputFileError, match=r"training set .*x.smi is not UTF-8 text \(.*line \d"):
        read_smiles(path, what="training set")


def test_to_mol_refuses_oversized_molecules():
    assert to_mol("C" * MAX_HEAVY_ATOMS) is not None
    assert to_mol("C" * (MAX_HEAVY_ATOMS + 1)) is None  # too many heavy atoms
    assert to_mol("C" * (MAX_SMILES_LENGTH + 1)) is None  # too long to even parse
    assert canonical_smiles("C" * 20_000) is None  # RDKit's SMILES writer segfaulted on this chain


def test_read_smiles_counts_a_huge_molecule_as_invalid_and_truncates_it(tmp_path, moses_sample, caplog):
    path = tmp_path / "x.smi"
    path.write_text("C" * 100_000 + "\n" + "\n".join(moses_sample[:5]) + "\n")
    with caplog.at_level(logging.WARNING):
        got = read_smiles(path)
    assert len(got) == 5 and got.n_invalid == 1
    assert "CCCC..." in caplog.text and max(len(line) for line in caplog.text.splitlines()) < 400


def test_featurize_refuses_oversized_molecules_naming_them_briefly():
    with pytest.raises(FeaturizationError, match="heavy atoms, over the bound") as exc:
        featurize_smiles("C" * 5_000)
    assert len(str(exc.value)) < 300
    with pytest.raises(FeaturizationError, match="characters long"):
        featurize_smiles("C" * 100_000)


@pytest.fixture(scope="module")
def small_encoder():
    """A real (untrained) 2 x 16 GIN: what these tests check does not depend on training."""
    torch.manual_seed(0)
    return build_encoder("gin", {"num_layers": 2, "emb_dim": 16})


@pytest.mark.parametrize("n_atoms", [20_000, 100_000])
def test_victim_embed_refuses_huge_molecules(small_encoder, n_atoms):
    victim = Victim(small_encoder, name="v")
    # 20,000 chain atoms segfaulted RDKit's SMILES writer and 100,000 hung: now one clear error
    with pytest.raises(FeaturizationError, match=r"victim v: SMILES 'CCC.*(heavy atoms|characters long)") as exc:
        victim.embed(["CCO", "C" * n_atoms])
    assert len(str(exc.value)) < 300
    assert victim.queries == 0
    assert victim.embed(["CCO"]).shape == (1, 16)


# ---------------------------------------------------------------------------------------------
# NaN victims


def _broken(encoder, value: float):
    enc = build_encoder("gin", encoder.config())
    enc.load_state_dict(encoder.state_dict())
    with torch.no_grad():
        enc.gnns[0].mlp[0].weight.fill_(value)
    return enc


def test_victim_with_nan_weights_refuses_to_answer(small_encoder):
    victim = Victim(_broken(small_encoder, float("nan")), name="nanvictim")
    with pytest.raises(MolleakError, match=r"victim nanvictim returned non-finite embeddings for 2 molecules: "
                                           r"the model's weights are broken"):
        victim.embed(["CCO", "c1ccccc1"])


def test_checkpoint_with_non_finite_weights_is_refused(tmp_path, small_encoder):
    for value in (float("nan"), float("inf")):
        path = tmp_path / "broken.pt"
        save_checkpoint(path, _broken(small_encoder, value), {"strategy": "test"})
        with pytest.raises(CheckpointError, match=r"NaN/inf weights in 1 tensors \(e.g. gnns.0.mlp.0.weight\)"):
            load_encoder(path)
    save_checkpoint(tmp_path / "ok.pt", small_encoder, {"strategy": "test"})
    assert load_encoder(tmp_path / "ok.pt")[0].config() == small_encoder.config()


def test_collapse_check_flags_nan_embeddings(small_encoder):
    from molleak.data.featurize import featurize_smiles as feat

    graphs = [feat(s) for s in ("CCO", "c1ccccc1", "CC(=O)N", "CCCl")]
    assert math.isfinite(encoder_spread(small_encoder.eval(), graphs))
    assert math.isnan(encoder_spread(_broken(small_encoder, float("nan")).eval(), graphs))
    assert math.isnan(embedding_spread(np.array([[1.0, 2.0], [np.inf, 0.0]])))


# ---------------------------------------------------------------------------------------------
# checkpoints


@pytest.mark.parametrize(("name", "config"), [
    ("gin", {"num_layers": 3, "emb_dim": 16}), ("gin", {"num_layers": 1, "emb_dim": 7}),
    ("grover", {"hidden": 20, "heads": 3, "depth": 2, "num_layers": 2}), ("grover", {}),
])
def test_parameter_count_without_building_is_exact(name, config):
    enc = build_encoder(name, config)
    assert encoder_parameter_count(name, config) == sum(p.numel() for p in enc.parameters())


def _save_payload(path, config, state_dict=None):
    torch.save({"format": FORMAT, "encoder": {"name": "gin", "config": config},
                "state_dict": state_dict or {}, "provenance": {}}, path)


@pytest.mark.parametrize(("config", "match"), [
    ({"num_layers": 10**6, "emb_dim": 10**9}, "over the bound of 1000"),
    ({"num_layers": 5, "emb_dim": 10**9}, r"implies 2e\+19 parameters \(80 EB"),
    ({"num_layers": 2, "emb_dim": 30_000}, "over the bound of 2e\\+09"),
    ({"num_layers": 2, "emb_dim": -4}, "emb_dim must be a positive integer"),
    ({"num_layers": "5", "emb_dim": 16}, "num_layers must be a positive integer"),
])
def test_absurd_checkpoint_config_is_refused_before_allocating(tmp_path, config, match):
    path = tmp_path / "absurd.pt"
    _save_payload(path, config)
    with pytest.raises(CheckpointError, match=match):
        load_encoder(path)
    assert MAX_ENCODER_PARAMETERS == 2_000_000_000


def test_raw_state_dict_claiming_a_million_layers_is_refused(tmp_path):
    sd = build_encoder("gin", {"num_layers": 1, "emb_dim": 4}).state_dict()
    sd["gnns.999999.mlp.0.weight"] = torch.zeros(8, 4)
    torch.save(sd, tmp_path / "raw.pth")
    with pytest.raises(CheckpointError, match="num_layers=1000000, over the bound"):
        load_encoder(tmp_path / "raw.pth")


def test_pretraining_an_absurd_encoder_is_refused_before_allocating():
    from molleak.pretrain.trainer import build_strategy

    cfg = PretrainConfig(strategy="attrmask", encoder_config={"num_layers": 5, "emb_dim": 10**9})
    with pytest.raises(MolleakError, match="parameters .* over the bound"):
        build_strategy(cfg)


def test_truncated_binary_and_directory_checkpoints(tmp_path, small_encoder):
    good = tmp_path / "good.pt"
    save_checkpoint(good, small_encoder, {"strategy": "test"})
    (tmp_path / "trunc.pt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"trunc.pt is corrupt, truncated or not a torch weights file"):
        load_encoder(tmp_path / "trunc.pt")
    (tmp_path / "bin.pt").write_bytes(bytes(range(256)))
    with pytest.raises(CheckpointError, match=r"bin.pt is not a torch file"):
        load_encoder(tmp_path / "bin.pt")
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(CheckpointError, match=r"dir.pt is a directory"):
        load_encoder(tmp_path / "dir.pt")


# ---------------------------------------------------------------------------------------------
# candidate pools


@pytest.fixture()
def pool_file(tmp_path):
    recs = [CandidateRecord(f"C{'C' * i}O", 0, ((0, i, 0),), (Step("C", "CO", f"C{'C' * i}O"),))
            for i in range(400)]
    path = tmp_path / "pool.tsv.gz"
    write_pool(path, recs)
    assert len(read_pool(path)) == 400
    return path


def test_truncated_pool_is_one_clear_error(tmp_path, pool_file):
    data = pool_file.read_bytes()
    bad = tmp_path / "trunc.tsv.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"trunc.tsv.gz is unreadable after line \d+: it is truncated"):
        read_pool(bad)


@pytest.mark.parametrize("damage", ["corrupt", "not_gzip", "binary_inside"])
def test_corrupt_pool_is_one_clear_error(tmp_path, pool_file, damage):
    data = pool_file.read_bytes()
    bad = tmp_path / "bad.tsv.gz"
    if damage == "corrupt":
        bad.write_bytes(data[:20] + b"\x00" * 60 + data[80:])
    elif damage == "not_gzip":
        bad.write_bytes(b"smiles\ttemplate\n")
    else:
        bad.write_bytes(gzip.compress(b"smiles\ttemplate\tactions\tsteps\n\xff\xfe\x80\n"))
    with pytest.raises(InputFileError, match=r"candidate pool .*bad.tsv.gz is unreadable"):
        read_pool(bad)


@pytest.mark.parametrize("line", ["CC\tx\t0,1,0\tC|C|C", "CC\t0\t0,1\tC|C|C", "CC\t0\t0,1,0\tC|C", "CC\t0"])
def test_malformed_pool_record_names_the_line(tmp_path, line):
    path = tmp_path / "pool.tsv"
    path.write_text("smiles\ttemplate\tactions\tsteps\nCO\t0\t0,1,0\tC|O|CO\n" + line + "\n")
    with pytest.raises(InputFileError, match=r"pool.tsv, line 3: malformed record"):
        read_pool(path)


# ---------------------------------------------------------------------------------------------
# oracle caches


def test_corrupt_label_and_bank_caches_are_a_miss_then_rewritten(tmp_path, moses_sample, caplog):
    from molleak.oracle import Bank, label
    from molleak.oracle.labels import clear_memory_cache

    cache = tmp_path / "cache"
    cands = moses_sample[:30]
    first = label(cands, Bank(moses_sample[:200], cache_dir=cache, workers=1), workers=1, cache_dir=cache)
    files = sorted(p for p in cache.rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".npz", ".sqlite"}
    for p in files:  # truncate every cache file
        p.write_bytes(p.read_bytes()[:300])
    clear_memory_cache()
    with caplog.at_level(logging.WARNING):
        again = label(cands, Bank(moses_sample[:200], cache_dir=cache, workers=1), workers=1, cache_dir=cache)
    assert "label cache" in caplog.text and "corrupt" in caplog.text
    assert "ignoring unreadable bank cache" in caplog.text
    assert again.from_cache == 0
    assert (again.substructure == first.substructure).all() and (again.count == first.count).all()
    clear_memory_cache()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        bank = Bank(moses_sample[:200], cache_dir=cache, workers=1).build()
        third = label(cands, bank, workers=1, cache_dir=cache)
    assert third.from_cache == len(cands) and bank.build_info["from_cache"] is True
    assert "corrupt" not in caplog.text and "unreadable" not in caplog.text
