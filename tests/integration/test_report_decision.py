"""The report's first screen (`decision`): the verdict in words with its power, the numbers behind it,
one plot (the shadow attack's log-log ROC, else precision@K), and what to do next.

The audit directories are written directly (runs by `test_report_support`, verdicts by the real
sentence builders of `molleak.evaluate.verdicts`, shadow results by the real `evaluate_scores` and
`shadow_summary` on hand-made scores): the thing under test is the report, not the attacks.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from test_report import parse
from test_report_support import attribution_example, write_audit_layout, write_run

from molleak import rundir
from molleak.evaluate.attribution import to_jsonable
from molleak.evaluate.verdicts import NO_POWER, extraction_verdict, membership_verdict, power_sentence
from molleak.report import SECTION_IDS, build_report
from molleak.report.decision import DETECTED, NOT_DETECTED, UNDECIDED, outcome
from molleak.rundir import format_estimate
from molleak.runs import write_json_atomic

#: labels made of JSON keys, as the first screen used to show them (`./attribution.json: one_step.verdict`)
JSON_LABEL = re.compile(r"\w+\.(\w+\.)*verdict\b|attribution\.json:|\bone_step\b|\btwo_step\b|shadow_membership\.")
ABSENCE_CLAIMS = ("no leakage", "does not leak", "no signal", "safe to share", "is safe")


def section(page: str, sid: str) -> str:
    """The HTML of one section (up to the next one)."""
    start = page.index(f'<section id="{sid}">')
    end = page.find("<section id=", start + 1)
    return page[start:end if end > 0 else len(page)]


def text_of(page: str, sid: str) -> str:
    return " ".join(parse(page).text.get(sid, []))


def shadow_results(out: Path, signal: float, seed: int = 0) -> dict:
    """A `shadow_membership.json` from the real evaluation of hand-made scores: `signal` separates members
    by the white-box loss; the black-box statistic carries none."""
    from molleak.plans.shadows import RESULTS_FILE, ShadowPlan, evaluate_scores

    rng = np.random.default_rng(seed)
    n = 100
    labels = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    scores = {("loss", "lira_online"): rng.normal(size=2 * n) + signal * labels,
              ("loss", "rmia_online"): rng.normal(size=2 * n) + 0.5 * signal * labels,
              ("norm", "lira_online"): rng.normal(size=2 * n),
              ("norm", "raw"): rng.normal(size=2 * n)}
    plan = ShadowPlan(n_shadows=4, n_boot=50, seed=seed)
    result = to_jsonable(evaluate_scores(scores, labels, None, plan))
    result.update({"plan": json.loads(json.dumps(asdict(plan))), "n_members": n, "n_targets": 2 * n,
                   "out": str(out)})
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / RESULTS_FILE, result)
    return result


def shadow_block(result: dict, power: dict | None = None) -> dict:
    """The audit's `shadow_membership` block (`shadow_summary`), with a measured power quoted when given."""
    from molleak.plans.shadows import shadow_summary

    block = shadow_summary(result, "attrmask", None)
    if power is not None:  # what shadow_summary writes when given a power ladder for this recipe
        block["power"] = power
        block["verdict"] = block["verdict"].replace(NO_POWER, power_sentence(power))
    return to_jsonable(block)


def write_victim_runs(root: Path) -> Path:
    """The one-step runs of an audit: the victim's adapter, the same attack on the reference, the prior."""
    write_run(root / "runs" / "adapter", method="adapter", victim="/x/victim.pt", seed=1)
    write_run(root / "runs" / "adapter@reference", method="adapter", victim="/x/reference.pt", seed=2,
              role="reference")
    write_run(root / "runs" / "prior_fp", method="prior_fp", victim=None, seed=3, alpha=False)
    return root


def test_outcome_reads_the_verdict_sentences():
    diff = {"difference": {"value": 0.01, "lo": -0.05, "hi": 0.07}, "n_private_only": 40, "n_reference_only": 35}
    assert outcome(extraction_verdict({**diff, "p_value": 0.4})) == NOT_DETECTED
    assert outcome(extraction_verdict({**diff, "p_value": 0.001})) == DETECTED
    undefined = {**diff, "difference": {"value": float("nan"), "lo": float("nan"), "hi": float("nan")}}
    assert outcome(extraction_verdict(undefined)) == UNDECIDED
    assert outcome(attribution_example()["verdict"]) == DETECTED  # an older sentence
    assert outcome("no private-specific leakage detected: AUC difference 0.01") == NOT_DETECTED


def test_decision_comes_first_and_names_tests_in_words(tmp_path):
    # the demo layout: attribution.json with the private-only test (detected) and the membership verdict
    page, _, empty = build_report(write_audit_layout(tmp_path), command="pytest", top_n=2, max_grid_runs=1)
    p = parse(page)
    assert p.sections[0] == "decision" and p.sections == list(SECTION_IDS)
    assert SECTION_IDS.index("decision") < SECTION_IDS.index("summary")
    assert "decision" not in empty
    decision = text_of(page, "decision")
    assert "Extraction (private-only test)" in decision and "Membership (embedding statistic, no shadow models)" in decision
    assert not JSON_LABEL.search(decision), JSON_LABEL.search(decision)
    assert "(read from ./attribution.json)" in decision  # the source, as a muted note
    assert "Leakage detected by 2 of 2 test(s)" in decision
    assert "Do not share the model as is" in decision
    # no shadow attack here: the plot is the victim's precision@K figure, and the next step says to run it
    assert p.svgs.get("decision") == 1 and "precision@K (substructure)" in section(page, "decision")
    assert "membership.shadows" in decision
    # the numbers behind it: the strongest one-step attack against the base rate and its controls
    res = json.loads((tmp_path / "runs" / "one_step" / "adapter" / "results.json").read_text())
    ref = json.loads((tmp_path / "runs" / "one_step" / "adapter@reference" / "results.json").read_text())
    table = section(page, "decision")
    assert f"{res['precision_substructure@20']:.3f}" in table and f"{res['base_rate_substructure']:.3f}" in table
    assert f"{ref['precision_substructure@20']:.3f}" in table
    # the raw quantities moved below: the headline table keeps its rows, with a column that is not "leaks"
    summary = section(page, "summary")
    assert "<td>reference victim</td>" in summary and "above base rate?</th>" not in summary
    assert "interval above the base rate (not evidence of leakage by itself)" in summary
    assert not re.search(r"\w+\.verdict\b", text_of(page, "summary"))
    attribution = section(page, "attribution")
    assert "<details class='raw'><summary>All" in attribution and "private_only.difference" in attribution


def test_nothing_detected_says_not_detected_with_its_power(tmp_path):
    write_victim_runs(tmp_path)
    diff = {"difference": {"value": 0.01, "lo": -0.05, "hi": 0.07}, "n_private_only": 40, "n_reference_only": 35,
            "p_value": 0.4, "significant": False}
    row = {"auc": {"value": 0.51, "lo": 0.45, "hi": 0.57}, "p_value": 0.38, "n_members": 200, "n_nonmembers": 200}
    write_json_atomic(tmp_path / "attribution.json", {
        "one_step": {"substructure": {"private_only": diff, "verdict": extraction_verdict(diff)}},
        "membership": {"rows": {}, "verdict": "victim: " + membership_verdict(row)}})
    page, _, _ = build_report(tmp_path, command="pytest", top_n=2, max_grid_runs=1)
    decision = text_of(page, "decision")
    assert "Leakage not detected by the 2 test(s) run" in decision
    assert decision.count("not detected") >= 3  # the headline and each test's line
    assert "Power: " in decision and f"{NO_POWER};" in decision  # the power sentence the verdicts carry
    # the private-only test's power: the smallest difference it detects (SE 0.12 / 3.92, times 3.29)
    assert "detects an AUC difference of +0.101 or more with probability 0.95" in decision
    assert "Run `molleak power` for this recipe before concluding" in decision
    assert "Leakage detected" not in decision and "Do not share" not in decision
    assert not any(claim in decision.lower() for claim in ABSENCE_CLAIMS)
    assert not JSON_LABEL.search(decision)


def test_detected_shadow_attack_draws_its_log_log_roc(tmp_path):
    write_victim_runs(tmp_path)
    result = shadow_results(tmp_path / "shadow_membership", signal=1.5)
    block = shadow_block(result)
    block["file"] = "/elsewhere/audit/shadow_membership"  # the audit folder was moved since
    write_json_atomic(tmp_path / "attribution.json", {"shadow_membership": block})
    page, _, _ = build_report(tmp_path, command="pytest", top_n=2, max_grid_runs=1)
    p = parse(page)
    html = section(page, "decision")
    decision = text_of(page, "decision")
    white, black = block["best"]["white box"], block["best"]["black box"]
    assert white["detected"] and not black["detected"]  # what the scores were made to give
    assert "Leakage detected by 1 of 1 test(s): Membership (shadow models, LiRA/RMIA)" in decision
    # TPR at 1% FPR with its interval, both access levels, beside the victim's precision and controls
    for row in (white, black):
        assert format_estimate(row["tpr_at_fpr"]["0.01"]) in decision
    assert "chance is 0.010" in decision
    res = rundir.read_results(tmp_path / "runs" / "adapter")
    assert format_estimate(res.estimate("precision_substructure@20")) in decision
    # one log-log ROC figure with the best white-box and black-box curves and chance
    assert p.svgs.get("decision") == 1
    assert "true positive rate (log scale)" in html and "false positive rate (log scale)" in html
    assert f"white box: {white['statistic']}, {white['attack']}" in html
    assert f"black box: {black['statistic']}, {black['attack']}" in html and "chance" in html
    assert "precision@K (substructure)" not in html
    assert str(tmp_path / "shadow_membership" / "shadow_membership.json") in decision
    # what to do next, from the verdict: do not share; the white-box-only route
    assert "Do not share the model as is" in decision and "output perturbation at the served API" in decision
    assert "without releasing the weights" in decision
    # the attribution section shows the block as a table, its raw keys collapsed
    attribution = section(page, "attribution")
    assert "<td>white box</td>" in attribution and "<details class='raw'>" in attribution


def test_measured_power_is_stated_with_what_it_rules_out(tmp_path):
    result = shadow_results(tmp_path / "audit" / "shadow_membership", signal=0.0, seed=3)
    power = {"r": 4, "tpr_at_1pct_fpr": 0.6, "n": 20, "source": "power ladder rung 'overfit', 3 victim seeds"}
    block = shadow_block(result, power)
    assert "not detected" in block["verdict"]
    write_run(tmp_path / "audit" / "runs" / "adapter", method="adapter", victim="/x/victim.pt", seed=1)
    write_json_atomic(tmp_path / "audit" / "attribution.json", {"shadow_membership": block})
    page, _, _ = build_report(tmp_path / "audit", command="pytest", top_n=2, max_grid_runs=1)
    decision = text_of(page, "decision")
    assert "Leakage not detected by the 1 test(s) run (Membership (shadow models, LiRA/RMIA))" in decision
    assert "this test's power is a detection rate of 0.60 at 1% FPR for a molecule seen 4 times" in decision
    assert "catches a training molecule seen 4 times with probability 0.60 at 1% FPR" in decision
    assert "rules out leakage at least that strong, no more" in decision
    assert "molleak power" not in decision  # the power is measured
    assert not any(claim in decision.lower() for claim in ABSENCE_CLAIMS)
    assert parse(page).svgs.get("decision") == 1 and "true positive rate (log scale)" in section(page, "decision")


@pytest.mark.parametrize("broken", ["absent", "not json"])
def test_unreadable_shadow_results_are_named_and_precision_drawn_instead(tmp_path, broken):
    write_victim_runs(tmp_path)
    block = shadow_block(shadow_results(tmp_path / "shadow_membership", signal=1.5))
    path = tmp_path / "shadow_membership" / "shadow_membership.json"
    if broken == "absent":
        path.unlink()
    else:
        path.write_text("{not json")
    write_json_atomic(tmp_path / "attribution.json", {"shadow_membership": block})
    page, _, _ = build_report(tmp_path, command="pytest", top_n=2, max_grid_runs=1)
    p = parse(page)
    assert any("the ROC curves cannot be drawn" in m for m in p.missing["decision"])
    assert p.svgs.get("decision") == 1 and "precision@K (substructure)" in section(page, "decision")
    # the numbers come from the block itself, so they are still there
    assert format_estimate(block["best"]["white box"]["tpr_at_fpr"]["0.01"]) in text_of(page, "decision")


def test_untested_directory_says_so_and_what_to_run(tmp_path):
    run = write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0)
    page, _, empty = build_report(run, command="pytest", top_n=2, max_grid_runs=1)
    decision = text_of(page, "decision")
    assert "Leakage was not tested" in decision and "Run `molleak audit` on this model" in decision
    assert "decision" not in empty and not any(claim in decision.lower() for claim in ABSENCE_CLAIMS)
