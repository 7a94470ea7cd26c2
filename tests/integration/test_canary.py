"""Canary positive control: the membership pipeline end to end on tiny data.

(1) A victim whose embedding is displaced exactly at the canaries (a lookup-table memoriser around a
real GIN) must be detected by a neighbourhood statistic, and must *not* be when it memorised other
molecules: the neighbours, their owners and the calibration decide both. (2) A *trained* contrastive
victim (GraphCL) with heavily repeated canaries must be detected (slow). (3) The canary grid runs,
resumes, records raw and Holm-adjusted p per cell, and its reference victim never trains on a
molecule the tests score (read back from the checkpoints' training files). (4) Canary recovery by the
extraction attack, including molecules the attack cannot score. Detection strength at realistic
repetition counts is a measurement: BENCHMARKS.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from molleak.chem import canonical_smiles
from molleak.evaluate.grid import lead_verdicts
from molleak.evaluate.membership import membership_audit
from molleak.models.victim import Victim
from molleak.plans.leakage import run_canary


class MemorisingVictim:
    """A real victim plus a large, molecule-specific offset for each memorised molecule (its
    one-edit neighbours are not memorised: they keep the base embedding)."""

    def __init__(self, base: Victim, memorised: list[str], scale: float = 5.0, seed: int = 0):
        self.base = base
        rng = np.random.default_rng(seed)
        self.offsets = {canonical_smiles(s): scale * rng.normal(size=base.dim) for s in memorised}

    def embed(self, smiles):
        emb = self.base.embed(smiles).astype(np.float64)
        for i, s in enumerate(smiles):
            off = self.offsets.get(canonical_smiles(s))
            if off is not None:
                emb[i] += off
        return emb


def test_memorised_canaries_are_detected_by_their_neighbourhoods(tiny_victim, moses_sample):
    """By design: a memorised molecule's embedding is moved by an offset of norm about 5 * sqrt(32) = 28
    in a random direction while its neighbours keep the base embedding, so its `sharpness` (mean
    cosine distance to its neighbours) jumps, and victim minus reference (the same base weights) is
    exactly 0 for every molecule that was not memorised and positive for every memorised one: the
    calibrated AUC must be 1 and the one-sided Mann-Whitney p of complete separation of 60 vs 60 is
    below 1e-6. Wrong neighbours (another molecule's), wrong owners or swapped labels break this.
    The same victim memorising 60 *other* molecules is a null: both AUC intervals must cover 0.5 and
    the verdict must not say detected (the test's false-positive rate is the interval's 5%)."""
    canaries, nonmembers, others = moses_sample[2000:2060], moses_sample[2060:2120], moses_sample[2120:2180]
    base = Victim.from_checkpoint(tiny_victim)
    reference = Victim.from_checkpoint(tiny_victim)  # same weights, never memorised anything
    kw = {"n_neighbours": 4, "n_boot": 200, "statistic": "sharpness"}
    audit = membership_audit(MemorisingVictim(base, canaries), canaries, nonmembers, {"reference": reference}, **kw)
    calibrated = audit["rows"]["victim-minus-reference"]
    assert calibrated["auc"].value == 1.0 and calibrated["p_value"] < 1e-6
    assert audit["rows"]["victim"]["auc"].lo > 0.5 and audit["rows"]["victim"]["p_value"] < 0.05
    assert audit["rows"]["reference"]["auc"].covers(0.5)
    lead_verdicts(audit, "memorised canaries")
    assert audit["verdict"].startswith("victim-only: memorised canaries: victim AUC") and "; detected (" in audit["verdict"]
    assert "; detected (" in audit["reference_contrast"]

    null = membership_audit(MemorisingVictim(base, others), canaries, nonmembers, {"reference": reference}, **kw)
    assert null["rows"]["victim"]["auc"].covers(0.5) and null["rows"]["victim-minus-reference"]["auc"].covers(0.5)
    lead_verdicts(null, "unmemorised canaries")
    assert "not detected" in null["verdict"] and "power not measured for this recipe" in null["verdict"]


@pytest.mark.slow  # about 2.5 minutes on 2 cores (20 epochs of GraphCL); the memorised-canary test above stays fast
def test_a_trained_victim_that_saw_canaries_ten_times_for_twenty_epochs_is_detected(tiny_tier, tmp_path,
                                                                                     one_torch_thread):
    # 100 private molecules + 150 canaries x 10 (so each canary is seen 200 times), GraphCL GIN 3x128.
    # Measured with this call (BENCHMARKS.md): calibrated AUC 0.640 [0.588, 0.694] (seed 0); seeds 1
    # and 2 give 0.638 [0.568, 0.686] and 0.665 [0.604, 0.725]. 150 canaries keep the interval narrow.
    res = run_canary(tiny_tier, tmp_path, repeats=[10], epochs=[20], n_private=100, n_canaries=150,
                     strategy="graphcl", encoder_config={"num_layers": 3, "emb_dim": 128}, batch_size=32,
                     n_neighbours=4, n_boot=200, seed=0, statistic="norm")
    audit = res["cells"][0]["canaries"]
    calibrated = audit["rows"]["victim-minus-reference"]["auc"]
    assert calibrated["lo"] > 0.5, f"trained-victim canaries not detected: {calibrated}"
    assert audit["reference_contrast"].startswith("reference contrast: ") and "; detected (" in audit["reference_contrast"]


def trained_on(checkpoint) -> list[str]:
    """What a model was trained on, from its checkpoint alone: the training file its provenance names,
    checked against the sha256 the trainer recorded (one line per training example, repeats kept)."""
    from pathlib import Path

    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.runs import sha256_lines

    prov = read_checkpoint_file(checkpoint)["provenance"]
    lines = Path(prov["train_file"]).read_text().splitlines()
    assert sha256_lines(lines) == prov["train_sha256"] and len(lines) == prov["n_train"], checkpoint
    return lines


def test_canary_grid_runs_resumes_and_keeps_the_null(tiny_tier, tmp_path):
    from molleak.evaluate.metrics import holm_adjust

    kw = {"repeats": [2, 4], "epochs": [2], "n_private": 30, "n_canaries": 10, "encoder_config":
          {"num_layers": 2, "emb_dim": 16}, "batch_size": 16, "n_neighbours": 4, "n_boot": 100, "seed": 0}
    res = run_canary(tiny_tier, tmp_path, **kw)
    assert [(c["repeats"], c["epochs"]) for c in res["cells"]] == [(2, 2), (4, 2)]
    cell = res["cells"][1]
    rows = cell["canaries"]["rows"]
    assert set(rows) == {"victim", "reference", "victim-minus-reference"}
    assert cell["canaries"]["n_members"] == 10 and cell["canaries"]["n_nonmembers"] == 10
    ref_auc = rows["reference"]["auc"]
    assert ref_auc["lo"] <= 0.5 <= ref_auc["hi"]
    # the victim-only test leads; the reference contrast comes second
    assert cell["canaries"]["verdict"].startswith("victim-only: canaries (r=4, 2 epochs), 10 vs 10 unplanted")
    assert cell["canaries"]["reference_contrast"].startswith("reference contrast: ")

    # raw and Holm-adjusted p per cell: each family adjusted over the grid's 2 cells
    for family, (group, _, row) in (("canaries, victim-only", ("canaries", "rows", "victim")),
                                    ("private members, reference contrast",
                                     ("private_members", "rows", "victim-minus-reference"))):
        blocks = [c[group]["rows"][row] for c in res["cells"]]
        assert [b["p_holm"] for b in blocks] == pytest.approx(holm_adjust([b["p_value"] for b in blocks]))
        assert all(b["holm_family"] == {"name": family, "m": 2} for b in blocks)
        assert all(b["survives_holm"] == (b["p_holm"] <= 0.05) for b in blocks)
        assert res["holm"][family]["m"] == 2

    # what each model trained on, read from its checkpoint: the reference never saw a scored molecule
    params = cell["params"]
    canaries, nonmembers = params["canaries"], params["nonmembers"]
    victim_ckpt, reference_ckpt = tmp_path / "models" / "r4_e2_victim.pt", tmp_path / "models" / "r4_e2_reference.pt"
    victim_train, reference_train = trained_on(victim_ckpt), trained_on(reference_ckpt)
    assert len(victim_train) == 30 + 4 * 10 and all(victim_train.count(c) == 4 for c in canaries)
    assert not set(victim_train) & set(nonmembers)
    assert not set(reference_train) & (set(canaries) | set(nonmembers))
    assert len(reference_train) == len(victim_train)  # as many examples, its own molecules planted as often
    assert all(reference_train.count(m) == 4 for m in params["reference_canaries"])

    saved = json.loads((tmp_path / "cells" / "r4_e2" / "cell.json").read_text())["result"]
    mtime = victim_ckpt.stat().st_mtime
    again = run_canary(tiny_tier, tmp_path, **kw)  # resumes: reads the cell, trains nothing
    assert victim_ckpt.stat().st_mtime == mtime
    for name, row in saved["canaries"]["rows"].items():  # the stored cell, plus the grid's Holm fields
        assert {k: again["cells"][1]["canaries"]["rows"][name][k] for k in row} == row


def _named(name):
    class Named:
        def __init__(self):
            self.name = name

    return Named()


def test_canary_extraction_reports_recovery_when_the_attack_ranks_canaries_first(moses_sample, monkeypatch):
    """The recovery metrics on a constructed attack: through the victim it ranks the canaries first;
    through the reference victim (which saw neither canaries nor decoys) it scores at random."""
    import molleak.attack.methods as methods
    from molleak.attack.methods import MethodOutput
    from molleak.plans.leakage import canary_extraction

    pool = moses_sample[:300]
    canaries, decoys = pool[10:30], pool[40:60]
    calls = []
    noise = np.random.default_rng(7).random(len(pool))

    def fake_run_method(ctx, method, options=None):
        calls.append((ctx.victim.name, method))
        if ctx.victim.name == "victim":
            return MethodOutput(list(pool), np.array([2.0 if s in canaries else 0.0 for s in pool]) + 1e-3 * noise,
                                [""] * len(pool))
        return MethodOutput(list(pool), noise.copy(), [""] * len(pool))

    monkeypatch.setattr(methods, "run_method", fake_run_method)
    res = canary_extraction(_named("victim"), _named("reference"), records=[], aux_smiles=[], canaries=canaries,
                            decoys=decoys, n_boot=200)
    assert calls == [("victim", "adapter"), ("reference", "adapter")]
    assert res["attack_options"] == {}
    assert res["n_canaries"] == 20 and res["n_decoys"] == 20 and res["pool_molecules"] == 300
    assert res["victim"]["canaries"]["in_top50"] == 20 and res["victim"]["decoys"]["in_top50"] <= 50 - 20
    assert res["victim"]["canaries"]["median_rank"] <= 20
    assert res["victim"]["canaries"]["mean_exposure"] > np.log2(300 / 20)
    # victim-only first: complete separation of 20 vs 20 (exact one-sided p = 1 / C(40, 20) = 7e-12; the
    # normal approximation scipy uses at this size gives 3e-8: both far below any Holm threshold)
    only = res["victim_only"]
    assert only["auc"].value == 1.0 and only["p_value"] < 1e-6
    diff = res["canary_vs_decoy"]
    ref_auc = np.mean([[a > b for b in noise[40:60]] for a in noise[10:30]])
    assert diff["victim"].value == 1.0 and diff["reference"].value == pytest.approx(ref_auc)
    assert diff["difference"].value == pytest.approx(1.0 - ref_auc)
    with pytest.raises(Exception, match="both canaries and decoys"):
        canary_extraction(_named("victim"), _named("reference"), records=[], aux_smiles=[], canaries=canaries,
                          decoys=canaries[:3], n_boot=10)


@pytest.fixture(scope="module")
def tiny_pool(tiny_tier, tmp_path_factory):
    """A one-step candidate pool mined from the tiny tier's aux set (its molecules are in no tier set)."""
    from molleak.candidates.enumerate import enumerate_pool
    from molleak.candidates.pool import write_pool
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles

    aux = read_smiles(tiny_tier / "aux.smi").smiles
    pool = tmp_path_factory.mktemp("pool") / "pool.tsv"
    write_pool(pool, enumerate_pool(mine_vocabulary(aux, n_templates=10, n_motifs=15, workers=1), 1, workers=1))
    return pool


def test_canaries_drawn_from_a_pool_are_in_no_set_and_the_attack_runs(tiny_tier, tiny_pool, tmp_path):
    from molleak.data.smiles_io import read_smiles

    res = run_canary(tiny_tier, tmp_path / "run", repeats=[3], epochs=[1], n_private=30, n_canaries=8,
                     encoder_config={"num_layers": 2, "emb_dim": 16}, batch_size=16, n_neighbours=2, n_boot=50,
                     pool=tiny_pool)
    assert res["canary_source"] == str(tiny_pool)
    (cell,) = res["cells"]
    canaries, decoys = cell["params"]["canaries"], cell["params"]["nonmembers"]
    tier_sets = set()
    for name in ("private", "reference", "aux", "holdout"):
        tier_sets.update(read_smiles(tiny_tier / f"{name}.smi").smiles)
    assert len(canaries) == 8 and not set(canaries) & tier_sets
    # the extraction's decoys are unplanted: the reference victim's training file holds none of them
    assert not set(trained_on(tmp_path / "run" / "models" / "r3_e1_reference.pt")) & (set(decoys) | set(canaries))
    ext = cell["extraction"]
    assert ext["attack"] == "adapter" and ext["n_canaries"] == 8 and ext["n_decoys"] == 8
    for role in ("victim", "reference"):
        for group in ("canaries", "decoys"):
            row = ext[role][group]
            assert 1 <= row["median_rank"] <= ext["pool_molecules"]
            assert 0 <= row["mean_exposure"] <= np.log2(ext["pool_molecules"])
    assert set(ext["canary_vs_decoy"]) >= {"victim", "reference", "difference", "significant", "p_holm"}
    assert ext["victim_only"]["p_holm"] == ext["victim_only"]["p_value"]  # a grid of one cell: Holm changes nothing


def test_a_statistic_that_yields_nan_ranks_those_molecules_last_and_counts_them(tiny_tier, tiny_pool, tmp_path,
                                                                                monkeypatch):
    """The attack scores every molecule but the canaries (NaN, e.g. a statistic undefined for them):
    the canary run completes, the canaries are counted (8 of 8) and ranked after every scored molecule,
    and the victim-only AUC counts them as tied last (0, not NaN or a subset)."""
    import molleak.attack.methods as methods
    from molleak.attack.methods import MethodOutput
    from molleak.candidates.pool import read_pool, unique_smiles

    smiles = list(unique_smiles(read_pool(tiny_pool)))
    planted: set[str] = set()

    def nan_for_canaries(ctx, method, options=None):
        scores = np.array([np.nan if s in planted else float(i % 7) for i, s in enumerate(smiles)])
        return MethodOutput(smiles, scores, [""] * len(smiles))

    import molleak.plans.canary as canary

    draw = canary.draw_canary_sets

    def remember(*args, **kwargs):
        sets = draw(*args, **kwargs)
        planted.update(sets["canaries"])
        return sets

    monkeypatch.setattr(methods, "run_method", nan_for_canaries)
    monkeypatch.setattr("molleak.plans.leakage.draw_canary_sets", remember)
    res = run_canary(tiny_tier, tmp_path, repeats=[2], epochs=[1], n_private=20, n_canaries=8,
                     encoder_config={"num_layers": 2, "emb_dim": 16}, batch_size=16, n_neighbours=2, n_boot=50,
                     pool=tiny_pool)
    ext = res["cells"][0]["extraction"]
    n = ext["pool_molecules"]
    assert n == len(smiles) and ext["n_canaries"] == 8 and ext["n_decoys"] == 8
    victim = ext["victim"]
    assert victim["unscored"] == 8 and victim["canaries"]["unscored"] == 8 and victim["decoys"]["unscored"] == 0
    assert victim["canaries"]["median_rank"] > n - 8  # the last 8 places
    assert victim["canaries"]["in_top200"] == 0 or n <= 200
    assert ext["victim_only"]["auc"]["value"] == 0.0 and ext["canary_vs_decoy"]["victim"]["value"] == 0.0
    assert ext["victim_only"]["p_value"] > 0.99


def test_unscored_molecules_get_the_last_ranks_instead_of_none():
    """A statistic that yields NaN for some molecules: every molecule still gets a rank, NaN last."""
    from molleak.plans.leakage import full_ranks

    scores = np.array([0.5, np.nan, 2.0, -np.inf, np.nan, 1.0])
    rank = full_ranks(scores, seed=3)
    assert sorted(rank.tolist()) == [1, 2, 3, 4, 5, 6]
    assert rank[2] == 1 and rank[5] == 2 and rank[0] == 3
    assert set(rank[[1, 3, 4]].tolist()) == {4, 5, 6}  # NaN and -inf: not scored, last
