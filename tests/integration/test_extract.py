"""End-to-end extraction on the tiny tier: extract (without the private set), then evaluate."""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from molleak.attack.run import ExtractConfig, run_extract
from molleak.errors import MolleakError


@pytest.fixture()
def no_private_reads(monkeypatch):
    """Fail any attempt to open a file whose path mentions the private set."""
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def check(path):
        text = os.fspath(path) if isinstance(path, str | bytes | os.PathLike) else ""
        text = text.decode() if isinstance(text, bytes) else text
        opened.append(text)
        if "private" in os.path.basename(text):
            raise AssertionError(f"the attack path opened the private set: {text}")

    def guarded_open(file, *args, **kwargs):
        check(file)
        return real_open(file, *args, **kwargs)

    def guarded_os_open(path, *args, **kwargs):
        check(path)
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    return opened


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


def test_extract_never_reads_private_then_evaluate_scores_it(tmp_path, attacker_dir, tiny_tier, tiny_victim,
                                                             no_private_reads, monkeypatch):
    run = tmp_path / "run"
    cfg = ExtractConfig(out=str(run), aux=str(attacker_dir / "aux.smi"), victim=str(tiny_victim),
                        vocab=str(attacker_dir / "vocab"), method="adapter", k=20, seed=3, workers=1,
                        options={"steps": 30, "out_dim": 16})
    summary = run_extract(cfg)
    assert no_private_reads, "the guard saw no file opened at all"
    for name in ("config.json", "metadata.json", "pool.tsv.gz", "scores.tsv", "topk.tsv", "extract.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["seed"] == 3
    pool = summary["pool"]
    assert pool["records"] >= pool["unique"] > 20
    scores = _read_tsv(run / "scores.tsv")
    assert len(scores) == pool["unique"] == len({r[0] for r in scores})
    assert all(r[2] for r in scores)  # alpha kept per candidate
    top = _read_tsv(run / "topk.tsv")
    assert [int(r[0]) for r in top] == list(range(1, 21))
    values = [float(r[2]) for r in top]
    assert values == sorted(values, reverse=True) and len({r[1] for r in top}) == 20
    assert max(float(r[1]) for r in scores) == values[0]
    assert all("*" not in r[1] for r in top)
    # queries: every distinct template, motif and candidate SMILES once, counted by the victim
    assert 0 < summary["queries"] <= pool["unique"] + 10 + 20
    assert 0 < summary["seconds_score"] <= summary["seconds_total"]
    assert summary["score_info"]["heldout_auc"] is not None

    from molleak.evaluate.evaluate import evaluate_run

    monkeypatch.undo()  # evaluation is the one place allowed to read the private set
    res = _evaluate(run, tiny_tier, k_list=(5, 10, 20))
    for key in ("precision_substructure@20", "precision_exact@20", "base_rate_substructure", "base_rate_exact",
                "auc", "tpr@1%fpr", "tpr@0.1%fpr", "fcd_random@20", "queries", "seconds_score", "seconds_total"):
        assert key in res, key
    assert 0.0 <= res["base_rate_substructure"] <= 1.0
    lo, hi = res["precision_substructure@20_ci95"]
    assert lo <= res["precision_substructure@20"] <= hi
    assert res["queries"] == summary["queries"]
    # precision@20 agrees with labelling the written top-20 independently
    from molleak.data.smiles_io import read_smiles
    from molleak.oracle import Bank, label

    private = read_smiles(tiny_tier / "private.smi").smiles
    lab = label([r[1] for r in top], Bank(private), counts=False, workers=1)
    assert res["precision_substructure@20"] == pytest.approx(lab.substructure.mean())
    assert res["banks"]["reference"]["n"] > 0
    assert (run / "results.json").is_file()
    assert evaluate_run is not None


def _evaluate(run, tier, k_list):
    from molleak.evaluate.evaluate import evaluate_run

    return evaluate_run(run, tier / "private.smi", extra_banks={"reference": tier / "reference.smi"},
                        k_list=k_list, fcd_seeds=2)


def test_victim_free_method_never_loads_the_victim_and_an_interrupted_run_reuses_its_pool(tmp_path, attacker_dir,
                                                                                         caplog):
    run = tmp_path / "run"
    base = {"out": str(run), "aux": str(attacker_dir / "aux.smi"), "vocab": str(attacker_dir / "vocab"),
            "k": 10, "seed": 1, "workers": 1}
    first = run_extract(ExtractConfig(**base, method="prior_freq", victim=str(tmp_path / "missing.pt")))
    assert first["queries"] == 0 and first["victim"] is None
    (run / "extract.json").unlink()  # interrupted after the pool was written
    caplog.set_level("INFO")
    again = run_extract(ExtractConfig(**base, method="prior_freq"))
    assert "reusing the pool" in caplog.text
    assert again["pool"]["sha256"] == first["pool"]["sha256"]
    with pytest.raises(MolleakError, match="needs a victim|pass --victim"):
        run_extract(ExtractConfig(**base, method="eq1"))


def test_calibrated_with_the_victim_as_its_own_shadow_reduces_to_the_prior(tmp_path, attacker_dir, tiny_victim):
    """Victim and shadow identical: the calibrated score is 0 everywhere and the prior orders the pool."""
    base = {"aux": str(attacker_dir / "aux.smi"), "vocab": str(attacker_dir / "vocab"), "victim": str(tiny_victim),
            "k": 15, "seed": 2, "workers": 1}
    cal = run_extract(ExtractConfig(**base, out=str(tmp_path / "cal"), method="calibrated",
                                    options={"shadow": str(tiny_victim), "steps": 10, "out_dim": 8}))
    run_extract(ExtractConfig(**base, out=str(tmp_path / "fp"), method="prior_fp"))
    top_cal = [r[1] for r in _read_tsv(tmp_path / "cal" / "topk.tsv")]
    top_fp = [r[1] for r in _read_tsv(tmp_path / "fp" / "topk.tsv")]
    assert top_cal == top_fp
    assert cal["score_info"]["victim_adapter"]["heldout_auc"] == cal["score_info"]["shadow_adapter"]["heldout_auc"]


def test_extract_with_a_given_pool_and_budget(tmp_path, attacker_dir, tiny_victim):
    from molleak.candidates.enumerate import enumerate_pool
    from molleak.candidates.pool import write_pool
    from molleak.candidates.vocab import Vocabulary
    from molleak.errors import QueryBudgetExceeded

    records = enumerate_pool(Vocabulary.load(attacker_dir / "vocab"), 1, templates=[0, 1], workers=1)
    write_pool(tmp_path / "pool.tsv", records)
    base = {"aux": str(attacker_dir / "aux.smi"), "pool": str(tmp_path / "pool.tsv"), "victim": str(tiny_victim),
            "k": 5, "seed": 0, "workers": 1}
    out = run_extract(ExtractConfig(**base, out=str(tmp_path / "a"), method="eq1", options={"alpha": 0.5}))
    assert out["pool"]["records"] == len(records) and not (tmp_path / "a" / "pool.tsv.gz").exists()
    with pytest.raises(QueryBudgetExceeded):
        run_extract(ExtractConfig(**base, out=str(tmp_path / "b"), method="eq1", budget=3))
    values = np.array([float(r[1]) for r in _read_tsv(tmp_path / "a" / "scores.tsv")])
    assert np.isfinite(values).all()
