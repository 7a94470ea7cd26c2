"""Output defences of the served victim (`molleak.serve.defences`): noise scale, quantisation levels,
the same answer for the same (key, molecule), the defence in the query log, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molleak.errors import InputFileError, MolleakError
from molleak.serve.defences import SECRET_ENV, Defence, parse_defence_options, quantize, server_secret
from molleak.serve.keys import Keys, KeysFile, key_sha256, load_keys

SMILES = [f"C{'C' * i}O" for i in range(400)]  # distinct keys (the defence never parses them)


def test_no_defence_is_the_identity():
    rows = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    assert Defence().apply(rows, SMILES[:3], "alice", b"s") is rows and Defence().record() == {}
    assert Defence().describe() == "none"


def test_noise_scale_measured_on_outputs_matches_the_setting():
    rows = np.random.default_rng(1).normal(size=(400, 64))
    for std in (0.01, 0.1, 1.0):
        out = Defence(noise_std=std).apply(rows, SMILES, "alice", b"secret")
        noise = out - rows
        assert abs(noise.std() / std - 1) < 0.03 and abs(noise.mean()) < 3 * std / np.sqrt(noise.size)
        # independent across molecules and dimensions: no correlation between rows
        assert abs(np.corrcoef(noise[:-1].ravel(), noise[1:].ravel())[0, 1]) < 0.03


def test_same_molecule_same_answer_so_averaging_gains_nothing():
    rows = np.ones((2, 16))
    d = Defence(noise_std=0.5)
    a = d.apply(rows, ["CCO", "c1ccccc1"], "alice", b"secret")
    b = d.apply(rows[::-1], ["c1ccccc1", "CCO"], "alice", b"secret")  # asked again, other order, other batch
    assert np.array_equal(a, b[::-1])
    # the mean of 100 repeated answers is the one answer: its error does not shrink
    repeats = np.stack([d.apply(rows[:1], ["CCO"], "alice", b"secret") for _ in range(100)])
    assert (repeats == a[:1]).all() and np.allclose(repeats.mean(axis=0), a[:1], rtol=0, atol=1e-12)
    assert not np.array_equal(a, d.apply(rows, ["CCO", "c1ccccc1"], "bob", b"secret"))  # another key
    assert not np.array_equal(a, d.apply(rows, ["CCO", "c1ccccc1"], "alice", b"other"))  # another secret


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_quantisation_gives_at_most_2_to_the_b_values_per_dimension(bits):
    rows = np.random.default_rng(2).normal(scale=2.0, size=(2000, 8))
    d = Defence(quantize_bits=bits, quantize_range=(-1.5, 1.5), noise_std=0.1)
    out = d.apply(rows, [f"C{i}" for i in range(2000)], "alice", b"s")
    levels = np.linspace(-1.5, 1.5, 2**bits)
    for j in range(out.shape[1]):
        values = np.unique(out[:, j])
        assert len(values) <= 2**bits and np.allclose(values, levels[np.abs(levels[:, None] - values).argmin(0)])
    assert out.min() >= -1.5 and out.max() <= 1.5
    assert np.abs(quantize(np.array([0.1]), 8, -1, 1) - 0.1).max() <= 1 / 255  # half a step of 2/255


def test_rounding_normalisation_and_top_k():
    rows = np.array([[3.0, -4.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = Defence(normalize=True, top_k=2, round_decimals=2).apply(rows, ["A", "B"], "k", b"")
    # norm sqrt(25.25): 0.597, -0.796, 0.0995, 0 -> the two largest kept -> 2 decimals; a zero row stays zero
    assert out.tolist() == [[0.6, -0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert Defence(top_k=3).record() == {"top_k": 3}


def test_the_defence_is_recorded_in_each_query_log_line_and_keys_may_override(tmp_path):
    keys = KeysFile(keys={"alice": {"sha256": key_sha256("a")},
                          "bob": {"sha256": key_sha256("b"), "defence": {"round_decimals": 3}}})
    state = Keys(keys, tmp_path, Defence(noise_std=0.05))
    try:
        alice, bob = state.find("a"), state.find("b")
        assert alice.defence == Defence(noise_std=0.05) and bob.defence == Defence(round_decimals=3)
        alice.record(1, 1, 1, ["CCO"])
        bob.record(1, 1, 1, ["CCO"])
        assert len(state.secret) == 64 and (tmp_path / "defence_secret").is_file()
    finally:
        state.close()
    assert json.loads((tmp_path / "alice.jsonl").read_text())["defence"] == {"noise_std": 0.05}
    assert json.loads((tmp_path / "bob.jsonl").read_text())["defence"] == {"round_decimals": 3}


def test_the_secret_is_made_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    first = server_secret(tmp_path)
    assert server_secret(tmp_path) == first and (tmp_path / "defence_secret").stat().st_mode & 0o077 == 0
    monkeypatch.setenv(SECRET_ENV, "from-env")
    assert server_secret(tmp_path) == b"from-env"
    assert Keys(KeysFile(keys={"a": {"sha256": key_sha256("a")}}), tmp_path / "plain").secret == b""  # no noise: none


def test_defence_settings_are_validated(tmp_path):
    sha = key_sha256("k")
    cases = {
        "noise_std = -1": "keys.a.defence.noise_std",
        "colour = 1": "keys.a.defence.colour: unknown key",
        "quantize_bits = 4": "quantize_bits needs quantize_range",
        "quantize_bits = 4\nquantize_range = [1, -1]": "lo < hi",
        "quantize_bits = 4\nquantize_range = [-1, 1]\nround_decimals = 2": "exclude each other",
    }
    for text, message in cases.items():
        path = tmp_path / "keys.toml"
        path.write_text(f'[keys.a]\nsha256 = "{sha}"\n[keys.a.defence]\n{text}\n')
        with pytest.raises(InputFileError, match="^keys file ") as exc:
            load_keys(path)
        assert message in str(exc.value), (text, str(exc.value))
    assert parse_defence_options(["noise_std=0.1", "quantize_bits=8", "quantize_range=[-2, 2]"]).record() == \
        {"noise_std": 0.1, "quantize_bits": 8, "quantize_range": [-2.0, 2.0]}
    for options, message in [(["noise"], "KEY=VALUE"), (["nois_std=1"], "unknown key (keys: normalize"),
                             (["noise_std=abc"], "noise_std")]:
        with pytest.raises(MolleakError, match="^--defence") as exc:
            parse_defence_options(options)
        assert message in str(exc.value)


def test_defended_victim_answers_as_the_served_api_does():
    # in process (the defence curve) and over HTTP (`molleak serve`) apply the same rows to canonical SMILES
    import torch

    from molleak.models.gin import GINEncoder
    from molleak.models.victim import Victim
    from molleak.serve.defences import DefendedVictim

    torch.manual_seed(0)
    victim = Victim(GINEncoder(2, 16))
    defence = Defence(noise_std=0.5)
    served = DefendedVictim(victim, defence, "alice", b"secret")
    smiles = ["CCO", "c1ccccc1O"]
    rows = served.embed(smiles)
    assert np.array_equal(rows, defence.apply(victim.embed(smiles), ["CCO", "Oc1ccccc1"], "alice", b"secret"))
    assert np.array_equal(served.embed(["OCC"]), rows[:1])  # another spelling, the same noisy answer
    assert not np.array_equal(DefendedVictim(victim, defence, "bob", b"secret").embed(smiles), rows)
    assert served.dim == victim.dim  # everything else is the victim's
