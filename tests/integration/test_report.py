"""`molleak.report`: the HTML audit report, parsed (every section, tables with rows, figures)."""

from __future__ import annotations

import builtins
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_support import POOL, write_audit, write_defences, write_run

from molleak.errors import MolleakError
from molleak.report import SECTION_IDS, build_report, write_report
from molleak.rundir import Role


class ReportParser(HTMLParser):
    """Section ids, table body rows per section, svg elements, molecule cards, external references."""

    def __init__(self) -> None:
        super().__init__()
        self.section: str | None = None
        self.sections: list[str] = []
        self.rows: dict[str, int] = {}
        self.svgs: dict[str, int] = {}
        self.cards: list[str] = []
        self.external: list[str] = []
        self.missing: dict[str, list[str]] = {}
        self._in_tbody = False
        self._in_missing = False
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
            self.sections.append(self.section)
        for key in ("src", "href", "xlink:href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(f"{tag} {key}={a[key]}")
        if tag in ("link", "script", "img", "iframe"):
            self.external.append(tag)
        if self.section is None:
            return
        if tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody:
            self.rows[self.section] = self.rows.get(self.section, 0) + 1
        elif tag == "svg":
            self.svgs[self.section] = self.svgs.get(self.section, 0) + 1
        elif tag == "div" and "mol" in (a.get("class") or "").split():
            self.cards.append(a["class"])
        if "missing" in (a.get("class") or "").split():
            self._in_missing = True
            self.missing.setdefault(self.section, []).append("")

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False
        elif tag in ("p", "li"):
            self._in_missing = False

    def handle_data(self, data):
        if self.section is None:
            return
        self.text.setdefault(self.section, []).append(data)
        if self._in_missing:
            self.missing[self.section][-1] += data


def parse(page: str) -> ReportParser:
    p = ReportParser()
    p.feed(page)
    p.close()
    return p


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory) -> Path:
    root = write_audit(tmp_path_factory.mktemp("audit"))
    write_defences(root / "defences")
    return root


@pytest.fixture(scope="module")
def audit_report(audit_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report.html"
    summary = write_report(audit_dir, out, command="pytest")
    return summary, out.read_text(encoding="utf-8")


def test_every_section_is_present_and_filled(audit_report):
    summary, page = audit_report
    p = parse(page)
    assert p.sections == list(SECTION_IDS) and p.sections[0] == "decision"
    assert summary.runs == 6 + 8 and summary.evaluated == 5 + 8
    assert summary.missing == [], summary.missing
    for sid in ("decision", "summary", "tables", "attribution", "provenance"):
        assert p.rows.get(sid, 0) > 0, f"section {sid} has no table rows"
    for sid in ("decision", "precision", "alpha", "roc", "learning-curve", "molecules", "defences"):
        assert p.svgs.get(sid, 0) > 0, f"section {sid} has no figure"
    # one precision and one ROC figure per victim (victim, reference, random_init), the victim-free
    # runs drawn in each; the random-init run wrote no labels, so its ROC holds only the prior's curve
    assert p.svgs["precision"] == 4 and p.svgs["roc"] == 4  # victim, reference, random_init, zoo_gin
    roc = page[page.index('<section id="roc">'):page.index('<section id="learning-curve">')]
    assert "adapter, 1-step [random-init victim] AUC" not in roc
    assert roc.count("prior_fp, 1-step [victim-free]") == 4


def test_report_opens_without_network(audit_report):
    _, page = audit_report
    p = parse(page)
    assert p.external == []
    # namespace declarations name URLs but fetch nothing; no other URL may appear
    assert "http" not in re.sub(r"""xmlns(:\w+)?=(["'])[^"']*\2""", "", page)


def test_headline_shows_base_rates_controls_and_verdict(audit_report, audit_dir):
    _, page = audit_report
    p = parse(page)
    summary = " ".join(p.text["summary"])
    res = json.loads((audit_dir / "victim_adapter" / "results.json").read_text())
    assert f"{res['base_rate_substructure']:.3f}" in summary
    assert f"{res['precision_substructure@20']:.3f}" in summary
    headline = page[page.index('<section id="summary">'):page.index('<section id="tables">')]
    for role in ("victim", "reference victim", "random-init victim", "victim-free"):
        assert f"<td>{role}</td>" in headline, role
    assert "Controls not present" not in summary
    # verdicts in words: the attribution block's and the membership audit's
    assert "leakage detected: the victim prefers private-only hits" in summary
    assert "membership" in summary and "victim AUC" in summary


def test_molecule_grid_marks_hits_from_evaluation_labels(audit_report, audit_dir):
    _, page = audit_report
    classes = {c.split()[1] for c in parse(page).cards}
    assert {"exact", "substructure", "miss"} <= classes
    # one run alone: every drawn molecule marked exactly as the evaluation's labels.tsv says, in rank order
    run = audit_dir / "victim_adapter"
    page, _, _ = build_report(run, command="pytest")
    labels = {r[0]: r for r in (line.split("\t") for line in (run / "labels.tsv").read_text().splitlines()[1:])}
    top = [line.split("\t")[1] for line in (run / "topk.tsv").read_text().splitlines()[1:]]
    expected = ["exact" if labels[s][2] == "1" else "substructure" if labels[s][1] == "1" else "miss" for s in top]
    assert [c.split()[1] for c in parse(page).cards] == expected[:24]


def test_tables_render_bench_and_run_intervals(audit_report, audit_dir):
    _, page = audit_report
    tables = " ".join(parse(page).text["tables"])
    # the aggregator's mean [interval] over the two seeds of the attack column, as table.md shows it
    from molleak.plans.bench.aggregate import fmt

    table = json.loads((audit_dir / "bench" / "table.json").read_text())
    attack = table["tables"]["table1"]["rows"][0]["columns"]["attack"]["metrics"]
    assert fmt(attack["precision_substructure@50"]) in tables
    assert "Not evaluated" in tables and "unevaluated" in tables
    assert re.search(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", tables)


def test_bench_cells_are_grouped_by_victim_with_controls(audit_report):
    _, page = audit_report
    precision = page[page.index('<section id="precision">'):page.index('<section id="alpha">')]
    # the bench victim's panel: its seeds averaged, its reference / untrained cells and the prior beside it
    panel = next(f for f in precision.split("<figure>") if "victim: zoo_gin" in f)
    for label in ("adapter, 1-step (mean of 2 seeds", "adapter, 1-step [reference victim] (mean of 2 seeds",
                  "adapter, 1-step [random-init victim] (mean of 2 seeds", "prior_fp, 1-step [victim-free]"):
        assert label in panel, label
    assert "victim: zoo_gin.reference" not in page


def test_unevaluated_run_renders_and_names_what_is_missing(tmp_path):
    run = write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0, evaluate=False, labels=False)
    page, data, missing = build_report(run, command="pytest")
    p = parse(page)
    assert p.sections == list(SECTION_IDS)
    assert {"attribution", "roc", "learning-curve"} <= set(missing)
    assert "precision" in missing  # no results.json: no precision to draw
    assert any("None of the 1 run(s) has been evaluated" in m for m in p.missing["summary"])
    assert any("not tested" in m for m in p.missing["summary"])
    assert p.svgs.get("alpha", 0) == 1 and p.svgs.get("molecules", 0) >= 20  # what exists is still shown
    assert "unlabelled" in " ".join(p.cards)


def test_corrupt_file_is_a_note_not_a_crash(tmp_path):
    run = write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0)
    (run / "results.json").write_text("{not json")
    page, data, _ = build_report(run, command="pytest")
    assert data.runs[0].problems and "results.json unreadable" in data.runs[0].problems[0]
    assert "results.json unreadable" in page


def test_empty_or_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(MolleakError, match="holds no run directory"):
        build_report(tmp_path)
    with pytest.raises(MolleakError, match="directory not found"):
        build_report(tmp_path / "nope")


def test_private_set_is_read_only_when_passed(tmp_path, monkeypatch):
    run = write_run(tmp_path / "run", method="adapter", victim="/x/victim.pt", seed=0, labels=False)
    private = tmp_path / "run" / "private.smi"
    private.write_text("\n".join(POOL[:8]) + "\n")
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    page, _, _ = build_report(run, command="pytest")
    assert not any(f.endswith("private.smi") for f in opened)
    assert "not labelled" in page and "private set read by the report" in page
    monkeypatch.undo()

    page, data, missing = build_report(run, private=private, command="pytest")
    assert data.private and data.private["n"] == 8
    assert "was read by this report to label molecules (--private)" in page
    assert "roc" not in missing  # whole-pool labels now exist
    cards = parse(page).cards
    assert cards and not any("unlabelled" in c for c in cards)
    exact = [c for c in cards if c.split()[1] == "exact"]
    top = [line.split("\t")[1] for line in (run / "topk.tsv").read_text().splitlines()[1:25]]
    assert len(exact) == sum(s in POOL[:8] for s in top)


def test_write_is_atomic_and_refuses_a_directory(tmp_path, audit_dir):
    out = tmp_path / "r.html"
    write_report(audit_dir / "victim_adapter", out, command="pytest")
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == ["r.html"]
    with pytest.raises(MolleakError, match="is a directory"):
        write_report(audit_dir / "victim_adapter", tmp_path, command="pytest")


def test_demo_layout_draws_controls_beside_the_one_victim(tmp_path):
    from test_report_support import write_audit_layout

    page, data, missing = build_report(write_audit_layout(tmp_path), command="pytest")
    assert {r.role for r in data.runs} == {Role.VICTIM, Role.REFERENCE, Role.UNTRAINED, Role.PRIOR}
    assert "attribution" not in missing
    p = parse(page)
    assert p.svgs["precision"] == 1 and p.svgs["roc"] == 1
    precision = page[page.index('<section id="precision">'):page.index('<section id="alpha">')]
    for label in ("adapter, 1-step</text>", "[reference victim]", "[random-init victim]", "[victim-free]"):
        assert label in precision, label
    summary = " ".join(p.text["summary"])
    # each verdict once, though the membership verdict is stored in attribution.json and leakage.json
    assert summary.count("leakage detected: the victim prefers private-only hits") == 1
    assert summary.count("membership") >= 1 and summary.count("victim AUC") == 1
    attribution = " ".join(p.text["attribution"])
    assert "private_only.difference" in attribution and "0.080 [0.010, 0.150]" in attribution
    # the canary cells: one row per (repeats, epochs) with the canaries' membership AUC and its interval
    canary = json.loads((tmp_path / "leakage" / "canary.json").read_text())
    auc = canary["cells"][1]["canaries"]["rows"]["victim"]["auc"]
    assert f"{auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]" in attribution
    assert "canaries: victim AUC" in page


def test_runs_over_different_pools_name_their_own_base_rate(tmp_path):
    write_run(tmp_path / "one", method="adapter", victim="/x/victim.pt", seed=0, pool_sha="a")
    write_run(tmp_path / "two", method="eq1", victim="/x/victim.pt", seed=1, pool_sha="b")
    page, _, _ = build_report(tmp_path, command="pytest")
    precision = page[page.index('<section id="precision">'):page.index('<section id="alpha">')]
    base = json.loads((tmp_path / "one" / "results.json").read_text())["base_rate_substructure"]
    assert f"adapter, 1-step (base rate {base:.3f})" in precision
    assert f">base rate {base:.3f}<" not in precision  # no shared base-rate line
    summary = " ".join(parse(page).text["summary"])
    assert "n/a (no prior on this pool)" in summary
