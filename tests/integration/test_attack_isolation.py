"""Proof by what a run opens: an attack never reads a training set.

The attack runs in a fresh interpreter with a `sys.addaudithook` hook that records every file the
process opens (Python's own `open`, `os.open`, and what C extensions open through them). The aux
set lies beside the private, reference and holdout sets in the same tier directory, as on a real
owner's disk; the attack must open the first and none of the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TRAINING_SETS = ("private.smi", "reference.smi", "holdout.smi")

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


def _opened(argv: list[str], log: Path) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(argv), str(log)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(log.read_text())
    assert record["rc"] == 0
    return record["opened"]


@pytest.mark.parametrize("method,extra", [
    ("adapter", []),
    # these two train the attacker's shadow (about 20 s each on 2 cores): slow tier
    pytest.param("calibrated", ["--option", "epochs=1", "--option", "steps=10"], marks=pytest.mark.slow),
    pytest.param("membership", ["--option", "epochs=1"], marks=pytest.mark.slow),
])
def test_an_attack_never_opens_a_training_set(tmp_path, tiny_tier, attacker_dir, tiny_victim, method, extra):
    out = tmp_path / "run"
    argv = ["-q", "extract", "--victim", str(tiny_victim), "--aux", str(tiny_tier / "aux.smi"),
            "--vocab", str(attacker_dir / "vocab"), "--templates", "0,1", "--method", method, "--k", "10",
            "--seed", "0", "--workers", "1", "--out", str(out), *extra]
    opened = _opened(argv, tmp_path / "opened.json")
    names = {Path(p).name for p in opened}
    assert "aux.smi" in names  # the hook sees the attack's reads
    assert str(tiny_tier / "private.smi") not in opened
    assert not names & set(TRAINING_SETS), sorted(p for p in opened if Path(p).name in TRAINING_SETS)
    assert (out / "topk.tsv").is_file()


def test_the_hook_sees_a_read_of_the_private_set(tmp_path, tiny_tier, attacker_dir):
    """The check can fail: evaluation, which legitimately reads the private set, is seen doing so."""
    run = tmp_path / "run"
    _opened(["-q", "extract", "--aux", str(tiny_tier / "aux.smi"), "--vocab", str(attacker_dir / "vocab"),
             "--templates", "0,1", "--method", "qed", "--k", "5", "--seed", "0", "--workers", "1", "--out", str(run)],
            tmp_path / "a.json")
    opened = _opened(["-q", "evaluate", str(run), "--private", str(tiny_tier / "private.smi"), "--no-fcd"],
                     tmp_path / "b.json")
    assert str(tiny_tier / "private.smi") in opened
