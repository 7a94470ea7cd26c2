"""`molleak extract --method policy` end to end on the tiny tier: run layout, budget, curve, resume."""

from __future__ import annotations

import json

import pytest
import torch

from molleak.attack.run import ExtractConfig, run_extract
from molleak.candidates.vocab import mine_vocabulary
from molleak.data.smiles_io import read_smiles
from molleak.errors import MolleakError
from molleak.models.victim import Victim

OPTS = {"batch": 16, "hidden": 16, "layers": 2, "adapter_steps": 50}


@pytest.fixture(scope="module")
def vocab_dir(tiny_tier, tmp_path_factory):
    aux = read_smiles(tiny_tier / "aux.smi").smiles
    out = tmp_path_factory.mktemp("vocab")
    mine_vocabulary(aux, n_templates=10, n_motifs=15, workers=1).save(out)
    return out


def _config(tiny_tier, vocab_dir, out, method="policy", budget=300, **opts):
    return ExtractConfig(out=str(out), aux=str(tiny_tier / "aux.smi"), vocab=str(vocab_dir), steps=2,
                         method=method, options={**OPTS, **opts}, k=20, budget=budget, seed=3)


def test_policy_run_layout_budget_and_resume(tiny_tier, tiny_victim, vocab_dir, tmp_path, monkeypatch):
    private = tiny_tier / "private.smi"
    opened: list[str] = []
    real_open = open

    def spy(path, *a, **k):  # the attack path must never read the private set
        opened.append(str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    victim = Victim.from_checkpoint(tiny_victim)
    summary = run_extract(_config(tiny_tier, vocab_dir, tmp_path / "run"), victim=victim)
    monkeypatch.undo()
    assert str(private) not in opened
    run = tmp_path / "run"
    for name in ("config.json", "metadata.json", "topk.tsv", "scores.tsv", "extract.json", "curve.tsv",
                 "policy_checkpoint.pt"):
        assert (run / name).is_file(), name
    assert 0 < summary["queries"] <= 300
    assert summary["score_info"]["queries_search"] == summary["queries"]
    top = (run / "topk.tsv").read_text().splitlines()[1:]
    smiles = [line.split("\t")[1] for line in top]
    assert len(smiles) == len(set(smiles)) == 20 and all("*" not in s for s in smiles)
    curve = (run / "curve.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:5] == ["update", "episodes", "queries", "mean_reward", "archive"]
    queries = [int(line.split("\t")[2]) for line in curve[1:]]
    assert queries == sorted(queries) and queries[-1] <= 300
    state = torch.load(run / "policy_checkpoint.pt", weights_only=True)
    assert len(state["search"]["archive"]["smiles"]) == summary["n_scored"]
    # the adapter was refitted on the generated molecules (warm-up fit, then at least the final one),
    # each fit on more molecules than the last, and the ranking uses the last fit
    fits = summary["score_info"]["adapter_fits"]
    assert len(fits) >= 2 and [f["n_molecules"] for f in fits] == sorted({f["n_molecules"] for f in fits})
    assert fits[-1]["n_molecules"] == summary["n_scored"]
    assert len(state["reward"]["records"]) >= summary["n_scored"]

    # a larger budget on the same run directory resumes: the archive only grows, queries are not re-spent
    victim2 = Victim.from_checkpoint(tiny_victim)
    more = run_extract(_config(tiny_tier, vocab_dir, run, budget=450), victim=victim2)
    assert more["score_info"]["queries_search"] <= 450
    assert victim2.queries == more["score_info"]["queries_search"] - summary["score_info"]["queries_search"]
    assert more["n_scored"] >= summary["n_scored"]
    assert json.loads((run / "extract.json").read_text())["method"] == "policy"


@pytest.mark.slow
def test_random_search_and_adapter_budget_stay_in_budget(tiny_tier, tiny_victim, vocab_dir, tmp_path):
    for method in ("random-search", "adapter-budget"):
        cfg = _config(tiny_tier, vocab_dir, tmp_path / method, method=method, budget=250)
        if method == "adapter-budget":
            cfg.options = {"steps": 50}
            cfg.templates = [0, 1]
        summary = run_extract(cfg, victim=Victim.from_checkpoint(tiny_victim))
        assert 0 < summary["queries"] <= 250, (method, summary["queries"])


def test_policy_needs_a_vocabulary_and_a_budget(tiny_tier, tiny_victim, vocab_dir, tmp_path):
    with pytest.raises(MolleakError, match="budget"):
        run_extract(_config(tiny_tier, vocab_dir, tmp_path / "a", budget=None), victim=Victim.from_checkpoint(tiny_victim))
    with pytest.raises(MolleakError, match="unknown search option"):
        run_extract(_config(tiny_tier, vocab_dir, tmp_path / "b", bogus=1), victim=Victim.from_checkpoint(tiny_victim))
