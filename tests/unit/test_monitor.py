"""Query monitoring (`molleak.serve.monitor`, `molleak monitor`): fires on an enumeration stream and on
neighbour probing built from fixture data, stays quiet on a diverse stream of the same length; bad log
lines give one error naming the line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molleak.errors import InputFileError
from molleak.serve.monitor import MonitorConfig, _features, env_distance, monitor_stream, read_query_log


@pytest.fixture(scope="module")
def enumeration_stream(moses_sample) -> list[str]:
    """A one-step pool asked as `--method adapter` asks it (cores, motifs, products at first appearance)."""
    from molleak.attack.scoring.base import StepTable
    from molleak.candidates.enumerate import enumerate_pool
    from molleak.candidates.vocab import mine_vocabulary

    vocab = mine_vocabulary(moses_sample[1000:1300], n_templates=20, n_motifs=40, workers=1)
    return StepTable.build(enumerate_pool(vocab, steps=1, workers=1)).smiles


@pytest.fixture(scope="module")
def probing_stream(moses_sample) -> list[str]:
    """Membership probing: each molecule followed by its one-edit neighbours."""
    from molleak.attack.membership import draw_neighbours

    hoods = draw_neighbours(moses_sample[2000:2040], n_neighbours=8, seed=0)
    return [s for m, ns in zip(hoods.smiles, hoods.neighbours, strict=True) for s in [m, *ns]]


def test_fires_on_enumeration(enumeration_stream):
    result = monitor_stream(enumeration_stream)
    assert len(enumeration_stream) > 200 and result.fired and result.at is not None and result.at <= 100
    assert set(result.rules) <= {"one_edit", "scaffold_repeat", "fragments"} and result.rules
    assert result.stats["window"] == result.at  # fired inside the first window


def test_fires_on_neighbour_probing(probing_stream):
    result = monitor_stream(probing_stream)
    assert result.fired and "one_edit" in result.rules and result.at == MonitorConfig().min_queries
    assert result.stats["one_edit"] >= 0.8


def test_quiet_on_a_diverse_stream_of_the_same_length(moses_sample, enumeration_stream):
    rng = np.random.default_rng(0)
    diverse = [moses_sample[i] for i in rng.permutation(len(moses_sample))[:len(enumeration_stream)]]
    result = monitor_stream(diverse)
    assert not result.fired and result.at is None and result.molecules == len(diverse)
    assert all(result.peak[k] < v for k, v in MonitorConfig().thresholds().items())


def test_one_edit_bound_holds_for_the_attack_s_own_edits(moses_sample):
    """The design's bound (16 environments): one-edit neighbours of molleak's membership probing fall within it."""
    from molleak.attack.membership import draw_neighbours

    hoods = draw_neighbours(moses_sample[500:530], n_neighbours=8, seed=1)
    within = []
    for m, ns in zip(hoods.smiles, hoods.neighbours, strict=True):
        a = _features(m, None)
        for n in ns:
            b = _features(n, None)
            within.append(abs(a.heavy - b.heavy) <= 1 and env_distance(a.envs, b.envs) <= 16)
    assert np.mean(within) >= 0.95  # the rest: an edit that changed aromaticity


def test_repeats_and_invalid_smiles_are_not_counted():
    result = monitor_stream(["CCO"] * 200 + ["not a smiles", "C1CC"])
    assert result.molecules == 1 and result.invalid == 2 and not result.fired and result.peak == {}


def _log(path, entries):
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))
    return path


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2: not JSON"),
    ({"time": "2026-01-01T00:00:00+00:00"}, "line 2: missing field 'smiles'"),
    ({"smiles": ["CCO"]}, "line 2: missing field 'time'"),
    ({"time": "2026-01-01T00:00:00+00:00", "smiles": "CCO"}, "line 2: 'smiles' is not a list"),
    ({"time": "yesterday", "smiles": ["CCO"]}, "line 2: 'time' 'yesterday' is not an ISO 8601 time"),
    ([1, 2], "line 2: expected a JSON object"),
])
def test_bad_log_lines_give_one_error_naming_the_line(tmp_path, line, message):
    good = {"time": "2026-01-01T00:00:00.000+00:00", "n": 1, "smiles": ["CCO"]}
    path = _log(tmp_path / "alice.jsonl", [good, line, good])
    with pytest.raises(InputFileError, match=f"^query log {path} ") as exc:
        read_query_log(path)
    assert message in str(exc.value) and len(str(exc.value).splitlines()) == 1


def test_monitor_verb_reads_a_query_log(tmp_path, probing_stream, moses_sample, capsys):
    """The verb's own parser and run (importing every verb through `molleak.cli.main` costs torch's import:
    `molleak: error:` and exit 2 for a MolleakError are the CLI's, tested with the other verbs)."""
    import argparse

    from molleak.cli import monitor

    parser = argparse.ArgumentParser()
    monitor.register(parser.add_subparsers())

    def main(argv: list[str]) -> int:
        args = parser.parse_args(argv)
        return args.func(args)

    entries = [{"time": f"2026-01-01T00:00:{i:02d}.000+00:00", "n": 90, "smiles": probing_stream[90 * i:90 * (i + 1)]}
               for i in range(4)]
    smiles, times = read_query_log(_log(tmp_path / "probe.jsonl", entries))
    assert smiles == probing_stream[:360] and times[90] - times[0] == 1.0
    (tmp_path / "screen.smi").write_text("\n".join(moses_sample[:300]) + "\n")
    assert main(["monitor", str(tmp_path / "probe.jsonl"), str(tmp_path / "screen.smi")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'probe.jsonl'}: ALERT after 50 molecules (one_edit") and "per_minute=" in out[0]
    assert out[1].startswith(f"{tmp_path / 'screen.smi'}: quiet over 300 molecules; peaks: one_edit=")
    assert main(["monitor", "--exit-code", str(tmp_path / "probe.jsonl")]) == 1
    _log(tmp_path / "bad.jsonl", [entries[0], "{oops"])
    with pytest.raises(InputFileError, match="^query log .*bad.jsonl line 2: not JSON"):
        main(["monitor", str(tmp_path / "bad.jsonl")])
