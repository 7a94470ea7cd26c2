"""`molleak leakage` sub-verbs (audit, canary, sweep, statistics, table) end to end, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from molleak.cli.main import main
from molleak.models.checkpoint import load_encoder


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("molleak: error:") and err.count("\n") == 1
    return err


def _small_tier(tiny_tier, out):
    """The tiny tier cut to 600 reference molecules (the tiny victim's training-set size): a fast reference."""
    out.mkdir()
    for name, n in (("private.smi", 200), ("holdout.smi", 200), ("reference.smi", 600)):
        lines = (tiny_tier / name).read_text().splitlines()[:n]
        (out / name).write_text("\n".join(lines) + "\n")
    return out


def test_audit_builds_reference_and_untrained_and_resumes(tiny_victim, tiny_tier, tmp_path, capsys):
    out = tmp_path / "leak"
    data = _small_tier(tiny_tier, tmp_path / "data")
    argv = ["leakage", "audit", "--victim", str(tiny_victim), "--data", str(data), "--out", str(out),
            "--members", "30", "--neighbours", "3", "--bootstrap", "50", "--seed", "0"]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert line.startswith("membership AUC victim") and str(out) in line
    # the victim-only verdict first (private members vs holdout), the reference contrast on the next line
    assert "; victim-only: whole-molecule membership, 30 private members vs 30 holdout" in line
    assert "\nreference contrast: whole-molecule membership" in line
    res = json.loads((out / "leakage.json").read_text())
    rows = res["membership"]["rows"]
    assert set(rows) == {"victim", "reference", "untrained", "victim-minus-reference", "victim-minus-untrained"}
    assert res["membership"]["n_members"] == 30
    _, ref_prov = load_encoder(out / "models" / "reference.pt")
    _, victim_prov = load_encoder(tiny_victim)
    assert ref_prov["config"] == victim_prov["config"]  # the same recipe ...
    assert ref_prov["train_sha256"] != victim_prov["train_sha256"]  # ... on other data
    assert ref_prov["reference_of"] == str(tiny_victim)
    _, unt_prov = load_encoder(out / "models" / "untrained.pt")
    assert unt_prov["strategy"] == "untrained"
    assert (out / "config.json").exists() and (out / "metadata.json").exists()
    mtime = (out / "models" / "reference.pt").stat().st_mtime
    assert main(argv) == 0  # rerun: reuses the reference victim and the finished cell
    assert (out / "models" / "reference.pt").stat().st_mtime == mtime
    assert json.loads((out / "leakage.json").read_text())["membership"]["rows"] == rows


def test_victim_without_recipe_is_one_line(tiny_victim, tiny_tier, tmp_path, capsys):
    encoder, _ = load_encoder(tiny_victim)
    raw = tmp_path / "raw.pth"
    torch.save(encoder.state_dict(), raw)  # a pretrain-gnns style state_dict: no provenance
    err = _error(capsys, ["leakage", "audit", "--victim", str(raw), "--data", str(tiny_tier), "--out",
                          str(tmp_path / "o")])
    assert "no pre-training config" in err


def test_missing_reference_set_is_one_line(tiny_victim, tmp_path, capsys):
    err = _error(capsys, ["leakage", "audit", "--victim", str(tiny_victim), "--data", str(tmp_path), "--out",
                          str(tmp_path / "o")])
    assert "reference set not found" in err


def test_sweep_size_beyond_tier_is_one_line(tiny_tier, tmp_path, capsys):
    err = _error(capsys, ["leakage", "sweep", "--sizes", "999999", "--data", str(tiny_tier), "--out",
                          str(tmp_path / "o")])
    assert "exceed" in err


@pytest.mark.parametrize("bad", ["0", "a,b", ""])
def test_bad_int_list_is_rejected(bad, tmp_path):
    with pytest.raises(SystemExit):
        main(["leakage", "canary", "--repeats", bad, "--data", str(tmp_path), "--out", str(tmp_path)])


def _fake_run(path, smiles, scores):
    path.mkdir()
    # the run contract's required fields (molleak.rundir.RunConfig / ExtractSummary)
    (path / "config.json").write_text(json.dumps({"role": "victim", "method": "adapter", "aux": "aux.smi",
                                                  "victim": "v.pt", "seed": 0, "k": 50}))
    (path / "extract.json").write_text(json.dumps({"method": "adapter", "k": 50, "n_scored": len(smiles)}))
    lines = ["smiles\tscore"] + [f"{s}\t{x:.6f}" for s, x in zip(smiles, scores, strict=True)]
    (path / "scores.tsv").write_text("\n".join(lines) + "\n")


def test_attribution_of_runs_detects_a_score_that_knows_p(tiny_victim, moses_sample, tmp_path, capsys):
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    private, reference, neither = moses_sample[:100], moses_sample[100:200], moses_sample[200:300]
    (data / "private.smi").write_text("\n".join(private) + "\n")
    (data / "reference.smi").write_text("\n".join(reference) + "\n")
    (data / "holdout.smi").write_text("\n".join(neither) + "\n")
    pool = private + reference + neither
    rng = np.random.default_rng(0)
    _fake_run(tmp_path / "v", pool, np.r_[np.ones(100), np.zeros(200)] + 0.1 * rng.random(300))  # knows P
    _fake_run(tmp_path / "r", pool[::-1], rng.random(300))  # knows nothing; other row order
    out = tmp_path / "o"
    argv = ["leakage", "audit", "--victim", str(tiny_victim), "--data", str(data), "--out", str(out),
            "--members", "20", "--neighbours", "2", "--bootstrap", "100", "--seed", "0",
            "--victim-run", str(tmp_path / "v"), "--reference-run", str(tmp_path / "r")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    exact_line = next(line for line in printed.splitlines() if line.startswith("exact: private-only test"))
    assert "; detected (one-sided p=" in exact_line
    att = json.loads((out / "attribution.json").read_text())
    assert att["n_shared"] == 300
    exact = att["exact"]["private_only"]
    assert exact["n_private_only"] == 100 and exact["n_reference_only"] == 100
    assert exact["victim"]["value"] > 0.99 and exact["difference"]["lo"] > 0.3
    assert att["exact"]["victim"]["private"]["precision_at_k"]["50"]["value"] == 1.0
    # the attribution table over this audit directory and one not run
    assert main(["leakage", "table", "--kind", "attribution", str(out), str(tmp_path / "leak_none")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| victim | scored by |")
    assert [line.split(" | ")[1] for line in table[2:4]] == ["victim", "reference victim"]
    assert "| none | (not run: attribution.json, leakage.json missing)" in table[4]
    verdict = next(line for line in table if line.startswith("- o: private-only test"))
    assert ": detected (one-sided p=" in verdict and "membership, victim-only (norm, 20 vs 20" in verdict


def test_one_run_without_the_other_is_one_line(tiny_victim, tmp_path, capsys):
    err = _error(capsys, ["leakage", "audit", "--victim", str(tiny_victim), "--data", str(tmp_path), "--out",
                          str(tmp_path / "o"), "--victim-run", str(tmp_path)])
    assert "both --victim-run and --reference-run" in err


def test_canary_pool_errors_are_one_line(tiny_tier, tmp_path, capsys):
    base = ["leakage", "canary", "--data", str(tiny_tier), "--out", str(tmp_path / "o")]
    assert "no such file" in _error(capsys, [*base, "--canary-pool", str(tmp_path / "nope.tsv")])
    pool = tmp_path / "pool.tsv"
    pool.write_text("")
    assert "does not query the victim" in _error(capsys, [*base, "--canary-pool", str(pool), "--attack", "qed"])
    assert "unknown score" in _error(capsys, [*base, "--canary-pool", str(pool), "--attack", "nope"])


def test_canary_recovery_by_the_membership_attack_from_the_cli(tiny_tier, tmp_path, capsys):
    """The canary grid through the CLI with the membership-guided attack, on a victim too small for the
    effect to be reliably there (6 canaries, 1 epoch; BENCHMARKS.md measures detection on larger ones).
    So this checks what must hold whatever the effect: every test of the 2-cell grid carries its raw p
    and exactly the Holm adjustment of the two cells' p-values; the summary lines lead with the
    victim-only test and print canary.json's numbers; each model trained on what its checkpoint's
    training file says, and the reference victim on no canary and no decoy; ranks lie in the pool."""
    from molleak.candidates.enumerate import enumerate_pool
    from molleak.candidates.pool import write_pool
    from molleak.candidates.vocab import mine_vocabulary
    from molleak.data.smiles_io import read_smiles
    from molleak.evaluate.metrics import holm_adjust
    from molleak.models.checkpoint import read_checkpoint_file
    from molleak.runs import sha256_lines

    data = tmp_path / "data"
    data.mkdir()
    for name, n in (("private.smi", 30), ("reference.smi", 30), ("holdout.smi", 100), ("aux.smi", 200)):
        (data / name).write_text("\n".join((tiny_tier / name).read_text().splitlines()[:n]) + "\n")
    pool = tmp_path / "pool.tsv"
    aux = read_smiles(data / "aux.smi").smiles
    write_pool(pool, enumerate_pool(mine_vocabulary(aux, n_templates=8, n_motifs=10, workers=1), 1, workers=1))
    out = tmp_path / "canary"
    assert main(["leakage", "canary", "--canary-pool", str(pool), "--attack", "membership",
                 "--attack-option", "epochs=1", "--data", str(data), "--out", str(out), "--repeats", "1,3",
                 "--epochs", "1", "--private-size", "30", "--canaries", "6", "--emb-dim", "16", "--batch-size", "16",
                 "--bootstrap", "50", "--seed", "0"]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "canary.json").read_text())
    cells = res["cells"]
    assert [(c["repeats"], c["epochs"]) for c in cells] == [(1, 1), (3, 1)]
    for path in (("canaries", "rows", "victim"), ("canaries", "rows", "victim-minus-reference"),
                 ("extraction", "victim_only"), ("extraction", "canary_vs_decoy")):
        blocks = [c[path[0]][path[1]] if len(path) == 2 else c[path[0]][path[1]][path[2]] for c in cells]
        raw = [b["p_value"] for b in blocks]
        assert all(0.0 <= p <= 1.0 for p in raw)
        assert [b["p_holm"] for b in blocks] == pytest.approx(holm_adjust(raw))
        assert all(b["survives_holm"] == (b["p_holm"] <= 0.05) for b in blocks)

    # the summary leads with the victim-only tests and prints what canary.json holds
    lead = next(line for line in printed.splitlines() if line.startswith("canary membership AUC, victim-only"))
    for c in cells:
        v = c["canaries"]["rows"]["victim"]
        assert f"r{c['repeats']}/e1: {v['auc']['value']:.3f} [" in lead
    extraction = next(line for line in printed.splitlines() if line.startswith("canary extraction (membership)"))
    assert "victim-only" in extraction and printed.index(extraction) < printed.index("reference contrast (victim -")
    assert "| r | epochs | group | victim AUC (victim-only) | p / Holm p |" in printed
    assert "\n| 3 | 1 | canaries |" in printed and "\n| 3 | 1 | private_members |" in printed

    # what each model saw, from its checkpoint: its training file, hashing to the recorded sha256
    for c in cells:
        canaries, decoys = set(c["params"]["canaries"]), set(c["params"]["nonmembers"])
        seen = {}
        for role in ("victim", "reference"):
            prov = read_checkpoint_file(out / "models" / f"r{c['repeats']}_e1_{role}.pt")["provenance"]
            lines = Path(prov["train_file"]).read_text().splitlines()
            assert sha256_lines(lines) == prov["train_sha256"]
            seen[role] = lines
        assert canaries <= set(seen["victim"]) and not decoys & set(seen["victim"])
        assert not (canaries | decoys) & set(seen["reference"])
        ext = c["extraction"]
        assert ext["attack"] == "membership" and ext["attack_options"] == {"epochs": 1}
        assert ext["n_canaries"] == 6 and ext["n_decoys"] == 6
        for role in ("victim", "reference"):
            for group in ("canaries", "decoys"):
                assert 1 <= ext[role][group]["median_rank"] <= ext["pool_molecules"]
                assert 0 <= ext[role][group]["in_top50"] <= ext[role][group]["in_top200"] <= 6
    assert (out / "models" / "attack_e1" / "shadow.pt").is_file()  # the attacker's shadow, trained on aux
    # the canary table, from the directory or its canary.json
    assert main(["leakage", "table", "--kind", "canary", str(out), str(out / "canary.json")]) == 0
    table = capsys.readouterr().out
    assert table.count("| r | epochs | membership AUC victim-only | p / Holm p | membership: canary-vs-decoy") == 2
    assert table.count("\n| 3 | 1 | ") == 2 and "Pool: " in table and "Surviving cells: " in table


def test_sweep_runs_a_sparse_grid_of_cells_and_resumes(tiny_tier, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["leakage", "sweep", "--cells", "40x1,20x2", "--data", str(tiny_tier), "--out", str(out),
            "--members", "20", "--emb-dim", "16", "--batch-size", "16", "--bootstrap", "50", "--seed", "0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "sweep membership AUC, victim-only" in printed and "n40/e1" in printed
    assert "| N | epochs | victim AUC (victim-only) | p / Holm p |" in printed
    assert "\n| 40 | 1 | " in printed and "\n| 20 | 2 | " in printed
    res = json.loads((out / "sweep.json").read_text())
    assert [(c["size"], c["epochs"]) for c in res["cells"]] == [(40, 1), (20, 2)]
    for c in res["cells"]:
        rows = c["membership"]["rows"]
        assert c["membership"]["n_members"] == 20 and set(rows) == {"victim", "reference", "victim-minus-reference"}
        assert c["membership"]["verdict"].startswith("victim-only: membership after ")
    from molleak.evaluate.metrics import holm_adjust

    for row in ("victim", "victim-minus-reference"):  # raw and Holm-adjusted p over the sweep's 2 cells
        blocks = [c["membership"]["rows"][row] for c in res["cells"]]
        assert [b["p_holm"] for b in blocks] == pytest.approx(holm_adjust([b["p_value"] for b in blocks]))
        assert all(b["holm_family"]["m"] == 2 for b in blocks)
    victim = out / "models" / "n20_e2_victim.pt"
    mtime = victim.stat().st_mtime
    assert main(argv) == 0  # resumes: every cell read back, nothing trained
    assert victim.stat().st_mtime == mtime


@pytest.mark.parametrize("bad", ["2000", "2000x", "x5", "0x5", "a x b"])
def test_bad_sweep_cells_are_rejected(bad, tmp_path):
    with pytest.raises(SystemExit):
        main(["leakage", "sweep", "--cells", bad, "--data", str(tmp_path), "--out", str(tmp_path)])


@pytest.mark.parametrize("verb", ["audit", "canary", "sweep", "statistics", "table"])
def test_every_sub_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["leakage", verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: molleak leakage {verb}")
    assert ("--victim VICTIM" in out) == (verb == "audit") and ("--canary-pool" in out) == (verb == "canary")
    assert ("--cells" in out) == (verb == "sweep") and ("--strategies" in out) == (verb == "statistics")


def test_leakage_without_sub_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["leakage"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["leakage", "audit", "--canary", "--data", "d", "--out", "o"])  # options belong to their sub-verb


def test_canary_table_of_a_missing_run_is_one_line(tmp_path, capsys):
    err = _error(capsys, ["leakage", "table", "--kind", "canary", str(tmp_path)])
    assert "no canary.json" in err


def test_statistics_scores_every_statistic_on_canary_victims(tiny_tier, tmp_path, capsys):
    from molleak.attack.membership import STATISTICS

    out = tmp_path / "stats"
    argv = ["leakage", "statistics", "--data", str(tiny_tier), "--out", str(out), "--strategies", "attrmask",
            "--private-size", "30", "--canaries", "8", "--repeats", "2", "--epochs", "1", "--layers", "2",
            "--emb-dim", "16", "--batch-size", "16", "--neighbours", "2", "--bootstrap", "50", "--seed", "0"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("30 private + 8 canaries x 2, 1 epochs, GIN 2x16, seed 0")
    assert lines[1] == "| strategy | statistic | victim AUC | reference AUC (null) | calibrated AUC |"
    assert [line.split(" | ")[1] for line in lines[3:]] == list(STATISTICS)
    res = json.loads((out / "statistics.json").read_text())
    assert [r["statistic"] for r in res["rows"]] == list(STATISTICS)
    assert res["rows"][0]["membership"]["n_members"] == 8
    assert (out / "attrmask_victim.pt").is_file() and (out / "attrmask_reference.pt").is_file()  # kept for reuse
    assert (out / "config.json").is_file()


def test_statistics_unknown_strategy_is_one_line(tiny_tier, tmp_path, capsys):
    err = _error(capsys, ["leakage", "statistics", "--data", str(tiny_tier), "--out", str(tmp_path / "o"),
                          "--strategies", "attrmask,nope"])
    assert "nope" in err
