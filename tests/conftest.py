"""Shared fixtures: small real data and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def moses_sample() -> list[str]:
    """3,000 canonical MOSES train molecules (committed fixture)."""
    from molleak.data.smiles_io import read_smiles

    return read_smiles(FIXTURES / "moses_train_3k.smi", canonicalize=False).smiles


@pytest.fixture(scope="session")
def tiny_tier(tmp_path_factory) -> Path:
    """The `tiny` MOSES tier (seed 0), built once per test session from the installed wheels."""
    from molleak.data.splits import prepare_tier

    out = tmp_path_factory.mktemp("tiny_tier")
    prepare_tier("tiny", 0, out)
    return out


@pytest.fixture(scope="session")
def tiny_victim(tmp_path_factory, moses_sample) -> Path:
    """A small AttrMasking GIN (2 layers x 32 dims) trained for 2 epochs on 600 fixture molecules."""
    from molleak.pretrain.trainer import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("victim") / "attrmask.pt"
    cfg = PretrainConfig(strategy="attrmask", epochs=2, batch_size=64, seed=0,
                         encoder_config={"num_layers": 2, "emb_dim": 32})
    pretrain(moses_sample[:600], cfg, out, progress=False)
    return out


@pytest.fixture()
def one_torch_thread():
    """One intra-op torch thread for the test: on a shared 2-core machine torch's 2 threads spin and
    scatter ops slow down 10-500x (BENCHMARKS.md)."""
    from molleak.runs import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def attacker_dir(tmp_path_factory, tiny_tier) -> Path:
    """The attacker's files only (aux set and a small vocabulary mined from it): no private set."""
    import shutil

    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    out = tmp_path_factory.mktemp("attacker")
    shutil.copy(tiny_tier / "aux.smi", out / "aux.smi")
    aux = read_smiles(out / "aux.smi").smiles
    mine_vocabulary(aux, n_templates=10, n_motifs=20, workers=1).save(out / "vocab")
    assert not any("private" in p.name for p in out.rglob("*"))
    return out
