"""`molleak.report.summary`: roles from config.json (never from paths), verdicts from their known keys,
the audit's headline table from the same model, and the run contract's readers the report uses."""

from __future__ import annotations

import json

import pytest
from test_report_support import attribution_example, write_run

from molleak import rundir
from molleak.errors import InputFileError
from molleak.report import build_report
from molleak.report.load import discover
from molleak.report.summary import build_summary, verdicts_of
from molleak.rundir import Role, format_estimate
from molleak.runs import write_json_atomic


def test_role_comes_from_the_config_not_the_path(tmp_path):
    # every name on the way says "reference", but the config says this run attacked the victim
    mislabelled = write_run(tmp_path / "reference" / "reference_adapter", method="adapter",
                            victim="/x/reference_models/reference.pt", seed=0, role="victim")
    # and a reference run whose paths say nothing of it
    write_run(tmp_path / "plain" / "adapter", method="adapter", victim="/x/model.pt", seed=1, role="reference")
    data = discover(tmp_path)
    roles = {r.name: r.role for r in data.runs}
    assert roles == {"reference/reference_adapter": Role.VICTIM, "plain/adapter": Role.REFERENCE}
    rows = {tuple(r.runs): r for r in build_summary(data).rows}
    assert rows[("reference/reference_adapter",)].role_label == "victim"
    assert rows[("plain/adapter",)].role_label == "reference victim"
    page, _, _ = build_report(mislabelled, command="pytest")
    headline = page[page.index('<section id="summary">'):page.index('<section id="tables">')]
    assert "<td>victim</td>" in headline and "<td>reference victim</td>" not in headline
    assert "Controls not present in this directory: victim-free, random-init victim, reference victim" in headline


def test_a_config_with_an_unknown_role_is_a_note_not_a_run(tmp_path):
    run = write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0)
    write_run(tmp_path / "good", method="adapter", victim="/x/victim.pt", seed=1)
    config = json.loads((run / rundir.CONFIG_FILE).read_text())
    write_json_atomic(run / rundir.CONFIG_FILE, {**config, "role": "boss"})
    data = discover(tmp_path)
    assert [r.name for r in data.runs] == ["good"]
    assert len(data.notes) == 1 and "run/config.json unreadable" in data.notes[0] and "role" in data.notes[0]


def test_verdicts_come_from_their_known_keys(tmp_path):
    leak = attribution_example()
    none = {**attribution_example(), "verdict": "no private-specific leakage detected: AUC difference 0.01"}
    attribution = {
        # the audit's layout: attribute_runs's {kind: attribution_report} per extraction depth
        "one_step": {"substructure": leak, "exact": none},
        "membership": {"rows": {}, "verdict": "victim: membership detected: victim AUC 0.61"},
        # keys that merely contain "verdict", or verdicts of other experiments, are not verdicts
        "notes": {"reviewer_verdict": "bogus: not read"},
        "verdict_comment": "bogus: not read either",
        "cells": [{"canaries": {"rows": {}, "verdict": "bogus: a canary cell"}}],
        "two_step": {"verdict": "bogus: no private-only test beside it"},
    }
    found = verdicts_of(attribution, "attribution.json")
    assert [(v.key, v.test) for v in found] == [("one_step.substructure.verdict", "private-only test"),
                                                ("one_step.exact.verdict", "private-only test"),
                                                ("membership.verdict", "membership")]
    assert [v.text for v in found] == [leak["verdict"], none["verdict"], attribution["membership"]["verdict"]]

    # in a directory: the same verdicts, each once, though results.json repeats the substructure one
    write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0, attribution=leak)
    write_json_atomic(tmp_path / "attribution.json", attribution)
    summary = build_summary(discover(tmp_path))
    assert sorted(v.text for v in summary.verdicts) == sorted(v.text for v in found)
    assert {v.source for v in summary.verdicts} == {"run", "./attribution.json"}
    page, _, _ = build_report(tmp_path, command="pytest")
    headline = page[page.index('<section id="summary">'):page.index('<section id="tables">')]
    assert "bogus" not in headline and headline.count(leak["verdict"]) == 1


def test_audit_headline_table_is_built_from_the_summary(tmp_path):
    from molleak.plans.audit import format_table
    from molleak.report.summary import summarize_runs

    runs = {"one_step/adapter": write_run(tmp_path / "a", method="adapter", victim="/x/victim.pt", seed=0),
            "one_step/adapter@reference": write_run(tmp_path / "r", method="adapter", victim="/x/reference.pt",
                                                    seed=0, role="reference"),
            "one_step/sa": write_run(tmp_path / "s", method="sa", victim=None, seed=0, evaluate=False)}
    rows = [row.model_dump(mode="json") for row in summarize_runs(runs).rows]  # as run_audit writes them
    assert [(r["runs"], r["role"]) for r in rows] == [(["one_step/adapter"], "victim"),
                                                      (["one_step/adapter@reference"], "reference")]
    text = format_table(rows)
    res = rundir.read_results(tmp_path / "a")
    # precision@K beside its Wilson interval, written by the one formatter
    assert format_estimate(res.estimate("precision_substructure@20")) in text.splitlines()[2]
    assert "[" in format_estimate(res.estimate("precision_substructure@20"))
    assert "reference victim" in text.splitlines()[3]


def test_labels_and_curve_readers_reject_bad_files_in_one_line(tmp_path):
    (tmp_path / rundir.LABELS_FILE).write_text("smiles\tsubstructure\texact\nCCO\t1\tyes\n")
    with pytest.raises(InputFileError, match=r"row 2: label 'yes' is not 0 or 1"):
        rundir.read_labels(tmp_path)
    (tmp_path / rundir.LABELS_FILE).write_text("smiles\tsub\nCCO\t1\n")
    with pytest.raises(InputFileError, match="expected 'smiles\\\\tsubstructure\\\\texact'"):
        rundir.read_labels(tmp_path)
    (tmp_path / rundir.CURVE_FILE).write_text("update\tqueries\n1\t20\n2\n")
    with pytest.raises(InputFileError, match="line 3: 1 cells for 2 columns"):
        rundir.read_curve(tmp_path)
    (tmp_path / rundir.CURVE_FILE).write_text("update\tqueries\tnote\n1\t20\tok\n")
    curve = rundir.read_curve(tmp_path)
    assert curve.columns == ["update", "queries", "note"] and curve.rows[0][:2] == [1.0, 20.0]
