"""Proof by outcome that an attack never uses a training set: the same attack with and without it.

The owner's directory holds the attacker's aux set beside the victim's private training set (the
molecules the victim was trained on), the reference and holdout sets, and the owner's caches built
from the private set (the oracle's indexed bank and its label store under `MOLLEAK_CACHE_DIR`). The
attack runs in a fresh interpreter with all of that present; then the private, reference and holdout
files and the caches are deleted and the same attack runs again in another fresh interpreter. If the
attack read any of them, directly or through a cache, its outputs would differ or the second run
would fail: the scores (every candidate's) and the top-K must be identical byte for byte.

A second, independent check in the same runs: an audit hook records every path the first attack
opens; none may be a training file or one of the caches built from the private set (by resolved path,
not by name: the attack may keep caches of its own aux set in the same directory).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAINING_SETS = ("private.smi", "reference.smi", "holdout.smi")
#: the run files an attack writes whose bytes depend only on what it computed (no clock, no path)
COMPARED = ("scores.tsv", "topk.tsv")

_RUNNER = textwrap.dedent("""
    import json, sys
    opened = []
    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes)):
            opened.append(args[0].decode() if isinstance(args[0], bytes) else args[0])
    sys.addaudithook(hook)
    from molleak.cli.main import main
    rc = main(json.loads(sys.argv[1]))
    with open(sys.argv[2], "w") as fh:
        json.dump({"rc": rc, "opened": opened}, fh)
""")


def _run(argv: list[str], log: Path, env: dict[str, str] | None = None) -> list[str]:
    """Run the CLI in a fresh interpreter; the paths it opened."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argv), str(log)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(log.read_text())
    assert record["rc"] == 0
    return record["opened"]


@pytest.fixture()
def owner_dir(tmp_path, tiny_tier, moses_sample, monkeypatch):
    """An owner's disk: the aux set beside the victim's training set (tiny_victim's 600 molecules),
    the reference and holdout sets, and the oracle's caches of the private set."""
    from molleak.evaluate.evaluate import bank_labels

    owner = tmp_path / "owner"
    owner.mkdir()
    shutil.copy(tiny_tier / "aux.smi", owner / "aux.smi")
    (owner / "private.smi").write_text("\n".join(moses_sample[:600]) + "\n")  # what tiny_victim trained on
    shutil.copy(tiny_tier / "reference.smi", owner / "reference.smi")
    shutil.copy(tiny_tier / "holdout.smi", owner / "holdout.smi")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MOLLEAK_CACHE_DIR", str(cache))
    bank_labels(moses_sample[600:620], moses_sample[:600], "private")  # indexes the private set, stores labels
    assert any(cache.rglob("*")), "the owner's caches of the private set were not built"
    return owner, cache


@pytest.mark.parametrize("method,extra", [
    ("adapter", []),
    # these two train the attacker's shadow (about 20 s each on 2 cores, twice): slow tier
    pytest.param("calibrated", ["--option", "epochs=1", "--option", "steps=10"], marks=pytest.mark.slow),
    pytest.param("membership", ["--option", "epochs=1"], marks=pytest.mark.slow),
])
def test_an_attack_gives_the_same_bytes_without_the_training_sets_and_their_caches(
        tmp_path, owner_dir, attacker_dir, tiny_victim, method, extra):
    owner, cache = owner_dir
    env = {"MOLLEAK_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}

    def attack(out: Path, log: Path) -> list[str]:
        return _run(["-q", "extract", "--victim", str(tiny_victim), "--aux", str(owner / "aux.smi"),
                     "--vocab", str(attacker_dir / "vocab"), "--templates", "0,1", "--method", method, "--k", "10",
                     "--seed", "0", "--workers", "1", "--out", str(out), *extra], log, env)

    private_side = {(owner / name).resolve() for name in TRAINING_SETS}
    private_side |= {p.resolve() for p in cache.rglob("*") if p.is_file()}  # the caches of the private set
    opened = attack(tmp_path / "with", tmp_path / "with.json")
    resolved = {Path(p).resolve() for p in opened}
    assert (owner / "aux.smi").resolve() in resolved  # the hook sees the attack's reads
    assert not resolved & private_side, sorted(map(str, resolved & private_side))

    for name in TRAINING_SETS:
        (owner / name).unlink()
    shutil.rmtree(cache)
    attack(tmp_path / "without", tmp_path / "without.json")

    for name in COMPARED:
        with_bytes = (tmp_path / "with" / name).read_bytes()
        assert with_bytes and with_bytes == (tmp_path / "without" / name).read_bytes(), name
    assert len((tmp_path / "with" / "topk.tsv").read_text().splitlines()) == 1 + 10


def test_the_hook_sees_a_read_of_the_private_set(tmp_path, tiny_tier, attacker_dir):
    """The hook check can fail: evaluation, which legitimately reads the private set, is seen doing so."""
    run = tmp_path / "run"
    _run(["-q", "extract", "--aux", str(tiny_tier / "aux.smi"), "--vocab", str(attacker_dir / "vocab"),
          "--templates", "0,1", "--method", "qed", "--k", "5", "--seed", "0", "--workers", "1", "--out", str(run)],
         tmp_path / "a.json")
    opened = _run(["-q", "evaluate", str(run), "--private", str(tiny_tier / "private.smi"), "--no-fcd"],
                  tmp_path / "b.json", {"MOLLEAK_CACHE_DIR": str(tmp_path / "cache")})
    assert str(tiny_tier / "private.smi") in opened


@pytest.mark.slow  # two more attacks in fresh interpreters
def test_the_byte_comparison_can_fail(tmp_path, attacker_dir, tiny_victim, owner_dir):
    """The comparison sees a difference when there is one: another victim seed gives other scores.

    (A stand-in for an attack that used the training set: its output would change when the set is gone.)"""
    owner, cache = owner_dir
    env = {"MOLLEAK_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"seed{seed}"
        _run(["-q", "extract", "--victim", str(tiny_victim), "--aux", str(owner / "aux.smi"), "--vocab",
              str(attacker_dir / "vocab"), "--templates", "0,1", "--method", "adapter", "--k", "10", "--seed",
              str(seed), "--workers", "1", "--out", str(out)], tmp_path / f"s{seed}.json", env)
        runs.append((out / "scores.tsv").read_bytes())
    assert runs[0] != runs[1]
