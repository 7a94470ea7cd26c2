"""Shared fixtures: small real data and tiny models.

The costly ones (the prepared `tiny` tier, the tiny victim, the attacker's vocabulary) are built once
per test run, not once per xdist worker: `_built_once` builds them under a file lock in the run's
shared temporary folder, and every other worker reads the finished files.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def _built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """`build(folder)` run once per test run and its folder shared by every xdist worker.

    Workers of one run share the parent of their own temporary folders; the first to take the lock
    builds, the others wait for it (the same work they would otherwise repeat) and reuse the result.
    A build that failed leaves no marker, so the next worker builds afresh and fails the same way.
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / f"shared-{name}"
    done = root / f"shared-{name}.built"  # beside the folder: tests may list what the folder holds
    with FileLock(str(out) + ".lock"):
        if not done.is_file():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            build(out)
            done.touch()
    return out


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """The run's own molleak cache (feature files, bank indexes, labels): nothing read from or written to
    the user's `~/.cache/molleak`, so a test never passes thanks to an earlier run's files."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    before = os.environ.get("MOLLEAK_CACHE_DIR")
    os.environ["MOLLEAK_CACHE_DIR"] = str(root / "molleak-cache")
    yield
    if before is None:
        os.environ.pop("MOLLEAK_CACHE_DIR", None)
    else:
        os.environ["MOLLEAK_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_per_test_process():
    """One intra-op torch thread in every test process, the CLI's default (molleak.threads).

    `make test` runs two workers on two cores: with torch's default of a thread per core, four threads
    spin on two cores and tiny scatter ops slow down 5-10x (a DP pre-training of tests/unit/test_dp.py
    took 11.7 s with two threads and 1.5 s with one, measured side by side under load). Tests that
    need another count set it themselves (`molleak.runs.torch_threads`), and it is restored after.
    """
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def moses_sample() -> list[str]:
    """3,000 canonical MOSES train molecules (committed fixture)."""
    from molleak.data.smiles_io import read_smiles

    return read_smiles(FIXTURES / "moses_train_3k.smi", canonicalize=False).smiles


@pytest.fixture(scope="session")
def tiny_tier(tmp_path_factory) -> Path:
    """The `tiny` MOSES tier (seed 0), built once per test session from the installed wheels."""
    from molleak.data.splits import prepare_tier

    return _built_once(tmp_path_factory, "tiny_tier", lambda out: prepare_tier("tiny", 0, out))


@pytest.fixture(scope="session")
def tiny_victim(tmp_path_factory, moses_sample) -> Path:
    """A small AttrMasking GIN (2 layers x 32 dims) trained for 2 epochs on 600 fixture molecules."""
    from molleak.pretrain.trainer import PretrainConfig, pretrain

    cfg = PretrainConfig(strategy="attrmask", epochs=2, batch_size=64, seed=0,
                         encoder_config={"num_layers": 2, "emb_dim": 32})
    built = _built_once(tmp_path_factory, "victim",
                        lambda out: pretrain(moses_sample[:600], cfg, out / "attrmask.pt", progress=False))
    return built / "attrmask.pt"


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
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    def build(out: Path) -> None:
        shutil.copy(tiny_tier / "aux.smi", out / "aux.smi")
        aux = read_smiles(out / "aux.smi").smiles
        mine_vocabulary(aux, n_templates=10, n_motifs=20, workers=1).save(out / "vocab")

    out = _built_once(tmp_path_factory, "attacker", build)
    assert not any("private" in p.name for p in out.rglob("*"))
    return out
