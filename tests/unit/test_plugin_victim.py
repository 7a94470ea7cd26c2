"""Plug-in victims (`module:callable`, entry points): the same counting, budget and cache as every
victim, and one clear error for a bad plug-in. Modules are written into tmp_path and put on sys.path."""

from __future__ import annotations

import itertools
import json
import sys
import textwrap

import numpy as np
import pytest

from molleak.errors import InputFileError, MolleakError, QueryBudgetExceeded
from molleak.victims.open import open_victim, spec_kind, victim_ref
from molleak.victims.plugin import PluginVictim

_ids = itertools.count()

GOOD = """
import numpy as np

calls = []

def embed(smiles):
    calls.append(list(smiles))
    return np.array([[len(s), s.count("c"), s.count("O")] for s in smiles], dtype=np.float64)

class Model:
    dim = 3
    provenance = {"strategy": "hand-made"}
    def embed(self, smiles):
        return embed(smiles)

wrong_shape = lambda smiles: np.zeros(len(smiles))
too_few = lambda smiles: np.zeros((len(smiles) - 1, 3))
with_nan = lambda smiles: np.full((len(smiles), 3), np.nan)
huge = lambda smiles: np.full((len(smiles), 3), 1e300)
strings = lambda smiles: np.array([["a"] * 3 for _ in smiles])
ragged = lambda smiles: [[1.0] * (i + 1) for i in range(len(smiles))]
def raises(smiles):
    raise ValueError("model offline")
constant = 42
"""


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    """Write a module (GOOD by default) under a fresh name; returns that name."""

    def write(source: str = GOOD) -> str:
        name = f"plugin_victim_{next(_ids)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        return name

    return write


def test_plugin_counts_caches_and_budgets_like_every_victim(plugin):
    mod = plugin()
    victim = open_victim(f"{mod}:embed", budget=3)
    assert isinstance(victim, PluginVictim) and victim.name == f"{mod}:embed" and victim.dim is None
    out = victim.embed(["OCC", "CCO", "c1ccccc1"])  # OCC and CCO are one molecule
    calls = sys.modules[mod].calls
    assert calls == [["CCO", "c1ccccc1"]]  # canonical SMILES, each once
    assert out.dtype == np.float32 and out.shape == (3, 3) and victim.dim == 3
    assert out[0].tolist() == out[1].tolist() == [3, 0, 1] and victim.queries == 2 and victim.remaining == 1
    victim.embed(["CCO", "c1ccccc1"])
    assert len(calls) == 1 and victim.queries == 2  # cached: not computed, not counted
    with pytest.raises(QueryBudgetExceeded, match=f"victim plug-in {mod}:embed: 2 new queries would exceed "
                                                  f"the budget of 3 \\(2 used\\)"):
        victim.embed(["CCN", "CCCl"])
    assert len(calls) == 1  # refused before the plug-in was called
    assert victim.embed([]).shape == (0, 3)


def test_plugin_object_class_and_chunks(plugin):
    mod = plugin()
    victim = open_victim(f"{mod}:Model", batch_size=2)  # a class: built with no arguments
    assert victim.dim == 3 and victim.provenance == {"strategy": "hand-made", "plugin": f"{mod}:Model"}
    assert victim.embed(["C", "CC", "CCC", "CCCC", "CCCCC"]).shape == (5, 3)
    assert [len(c) for c in sys.modules[mod].calls] == [2, 2, 1] and victim.queries == 5
    assert open_victim(f"{mod}:Model").identity_sha256() != open_victim(f"{mod}:embed").identity_sha256()


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("wrong_shape", r"returned an array of shape \(2,\) for 2 molecules, expected \(2, d\)"),
        ("too_few", r"returned an array of shape \(1, 3\) for 2 molecules"),
        ("with_nan", r"returned non-finite embeddings for 2 molecules"),
        ("huge", r"returned non-finite embeddings for 2 molecules"),  # over float32's range
        ("strings", r"returned an array of <U1, not of numbers"),
        ("ragged", r"returned something that is not an array"),
        ("raises", r"raised ValueError: model offline"),
    ],
)
def test_bad_plugin_output_is_one_clear_error(plugin, attr, message):
    mod = plugin()
    victim = open_victim(f"{mod}:{attr}")
    with pytest.raises(MolleakError, match=f"^victim plug-in {mod}:{attr} {message}") as exc:
        victim.embed(["CCO", "CCN"])
    assert len(str(exc.value).splitlines()) == 1


def test_a_plugin_that_changes_its_width_is_refused(plugin):
    mod = plugin("import numpy as np\ndef embed(smiles):\n    return np.zeros((len(smiles), len(smiles)))\n")
    victim = open_victim(f"{mod}:embed")
    victim.embed(["CCO", "CCN"])
    with pytest.raises(MolleakError, match=r"shape \(3, 3\) for 3 molecules, expected \(3, 2\)"):
        victim.embed(["C", "CC", "CCC"])


def test_bad_plugins_are_one_clear_error(plugin, tmp_path):
    mod = plugin()
    broken = plugin("import numpy\nraise RuntimeError('no GPU here')\n")
    cases = [
        (f"{mod}:constant", f"victim plug-in {mod}:constant is a int, not a callable or an object with an embed"),
        (f"{mod}:missing", f"victim plug-in {mod}:missing: {mod} has no attribute missing"),
        ("no_such_module_xyz:embed", "cannot import module no_such_module_xyz (ModuleNotFoundError"),
        (f"{broken}:embed", f"cannot import module {broken} (RuntimeError: no GPU here)"),
        (str(tmp_path / "missing.pt"), "victim checkpoint not found"),
        ("ghost-model", "victim checkpoint not found: ghost-model"),
    ]
    for spec, message in cases:
        with pytest.raises(MolleakError) as exc:
            open_victim(spec)
        assert message in str(exc.value) and len(str(exc.value).splitlines()) == 1, (spec, str(exc.value))


def test_entry_point_names_a_plugin(plugin, tmp_path, monkeypatch):
    mod = plugin()
    dist = tmp_path / "my_victims-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-victims\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[molleak.victims]\nhand-made = {mod}:Model\n")
    assert spec_kind("hand-made") == "plugin"
    victim = open_victim("hand-made", budget=1)
    assert victim.embed(["CCO"]).shape == (1, 3) and victim.name == "hand-made"


def test_spec_kinds_and_refs(plugin, tmp_path):
    mod = plugin()
    (tmp_path / "v.pt").write_bytes(b"x")
    assert spec_kind(str(tmp_path / "v.pt")) == "checkpoint" and spec_kind("http://127.0.0.1:8000") == "http"
    assert spec_kind(f"{mod}:embed") == "plugin" and spec_kind("missing.pt") == "checkpoint"
    ref = victim_ref(f"{mod}:embed")
    assert ref.path == f"{mod}:embed" and len(ref.sha256) == 64
    (tmp_path / f"{mod}.py").write_text(GOOD + "\n# changed\n")
    assert victim_ref(f"{mod}:embed").sha256 != ref.sha256  # the source is the plug-in's identity
    with pytest.raises(InputFileError, match="victim checkpoint not found"):
        victim_ref(str(tmp_path / "nope.pt"))


def test_extract_config_refuses_a_key_in_the_url():
    from molleak.attack.run import extract_config

    with pytest.raises(MolleakError, match="extract: victim: .*no credentials or query string.*MOLLEAK_API_KEY"):
        extract_config(out="o", aux="a", victim="http://me:secret@127.0.0.1:8000")
    with pytest.raises(MolleakError, match="no credentials or query string"):
        extract_config(out="o", aux="a", victim="http://127.0.0.1:8000/?api_key=secret")
    assert extract_config(out="o", aux="a", victim="http://127.0.0.1:8000").victim == "http://127.0.0.1:8000"


def test_extract_with_a_plugin_victim(plugin, moses_sample, tmp_path, capsys):
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.cli.main import main

    attacker_dir = tmp_path / "attacker"
    attacker_dir.mkdir()
    (attacker_dir / "aux.smi").write_text("\n".join(moses_sample[:300]) + "\n")
    mine_vocabulary(moses_sample[:300], n_templates=10, n_motifs=20, workers=1).save(attacker_dir / "vocab")
    mod = plugin()
    rc = main(["-q", "extract", "--victim", f"{mod}:embed", "--aux", str(attacker_dir / "aux.smi"), "--vocab",
               str(attacker_dir / "vocab"), "--method", "eq1", "--option", "alpha=0.5", "--k", "5", "--seed", "1",
               "--workers", "1", "--out", str(tmp_path / "run")])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "extract.json").read_text())
    assert summary["queries"] == sum(len(c) for c in sys.modules[mod].calls) > 0
    assert summary["victim"]["path"] == f"{mod}:embed"
    rc = main(["-q", "extract", "--victim", f"{mod}:with_nan", "--aux", str(attacker_dir / "aux.smi"), "--vocab",
               str(attacker_dir / "vocab"), "--method", "eq1", "--k", "5", "--seed", "1", "--workers", "1",
               "--out", str(tmp_path / "nan")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"molleak: error: victim plug-in {mod}:with_nan returned non-finite embeddings for ")
