"""`molleak.report.docblocks` and `scripts/figures.py`: the documented demo tables are written from an
audit's `audit.json` by the demo's own printer and a changed number is caught."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from test_report_support import attribution_example, write_run

from molleak.config import load_config
from molleak.errors import InputFileError, MolleakError
from molleak.plans.audit import format_table
from molleak.report.docblocks import (
    begin_marker,
    check_blocks,
    demo_block_name,
    end_marker,
    render_block,
    render_seeds_block,
    seeds_block_name,
    write_blocks,
)
from molleak.report.summary import summarize_runs
from molleak.runs import write_json_atomic

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "figures.py"


def _audit_dir(root: Path, tier: str = "tiny") -> Path:
    """An audit directory as `run_audit` writes it: headline rows and verdicts from the one summary model,
    config.json holding the shipped demo config's inputs."""
    runs = {"one_step/adapter": write_run(root / "runs" / "a", method="adapter", victim="/x/victim.pt", seed=0),
            "one_step/adapter@reference": write_run(root / "runs" / "r", method="adapter", victim="/x/reference.pt",
                                                    seed=1, role="reference")}
    model = summarize_runs(runs, {"one_step": attribution_example()})
    write_json_atomic(root / "audit.json", {"runs": {k: str(v) for k, v in runs.items()},
                                            "headline": [row.model_dump(mode="json") for row in model.rows],
                                            "seconds": 12.3, "verdicts": {v.key: v.text for v in model.verdicts}})
    config = load_config(None)
    config.data.tier = tier
    inputs = config.model_dump()
    write_json_atomic(root / "config.json", {**inputs, "inputs": inputs, "seed": 0})
    return root


def _docs(tmp_path: Path, name: str) -> list[Path]:
    stale = f"{begin_marker(name)}\n```\nrun  role\none_step/adapter  victim  0.999\n```\n{end_marker(name)}\n"
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nprose before\n\n{stale}\nprose after\n")
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text(f"## The demo audit\n\n{stale}")
    return [readme, bench]


def test_blocks_are_written_from_the_run_and_a_changed_number_is_caught(tmp_path):
    audit = _audit_dir(tmp_path / "audit")
    name = demo_block_name(audit)
    assert name == "demo-tiny"
    docs = _docs(tmp_path, name)
    content = render_block(audit)
    rows = json.loads((audit / "audit.json").read_text())["headline"]
    # the demo's own printer made the table (no wall-time column), and the verdicts follow it
    table = [line.rstrip() for line in format_table(rows, seconds=False).splitlines()]
    assert content.splitlines()[1:len(table) + 1] == table
    assert table[0].split()[-1] == "queries" and " s " not in f"{table[0]} "
    assert "- `one_step.verdict`: leakage detected" in content

    assert "0.999" in check_blocks(docs, name, content)  # the stale block differs
    assert write_blocks(docs, name, content) == docs
    assert check_blocks(docs, name, content) == ""
    readme = docs[0].read_text()
    assert readme.startswith("# title\n\nprose before\n\n") and readme.endswith("\nprose after\n")
    assert readme.count(table[2]) == 1 and docs[1].read_text().count(table[2]) == 1
    assert write_blocks(docs, name, content) == []  # already agree: nothing rewritten

    # one number edited by hand in one document: the check names that line
    value = table[2].split()[2]
    edited = table[2].replace(value, "0.123", 1)
    docs[1].write_text(docs[1].read_text().replace(table[2], edited))
    diff = check_blocks(docs, name, content)
    assert f"-{edited}" in diff and f"+{table[2]}" in diff and "BENCHMARKS.md" in diff and "README.md" not in diff

    # a run whose number moved: the re-rendered block no longer matches the (restored) documents
    write_blocks(docs, name, content)
    moved = json.loads((audit / "audit.json").read_text())
    moved["headline"][0]["auc"]["value"] += 0.05
    moved["seconds"] = 99.9
    write_json_atomic(audit / "audit.json", moved)
    assert check_blocks(docs, name, render_block(audit)) != ""
    # while the wall time alone changes nothing
    moved["headline"][0]["auc"]["value"] -= 0.05
    moved["headline"][0]["seconds"] = 1234.0
    write_json_atomic(audit / "audit.json", moved)
    assert check_blocks(docs, name, render_block(audit)) == ""


def test_figures_script_writes_and_checks(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("figures_script", SCRIPT)
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    audit = _audit_dir(tmp_path / "audit", tier="small")
    docs = _docs(tmp_path, "demo-small")
    args = [str(audit), "--docs", *map(str, docs)]
    assert figures.main(["--check", *args]) == 1
    assert "0.999" in capsys.readouterr().out
    assert figures.main(["--write", *args]) == 0
    assert figures.main(["--check", *args]) == 0
    assert "agree" in capsys.readouterr().out
    # documents without the block, and a run of another config: one clear error each
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    assert figures.main(["--check", str(audit), "--docs", str(other)]) == 2
    assert "holds <!-- figures:demo-small begin -->" in capsys.readouterr().err


def test_only_a_demo_run_is_documented(tmp_path):
    audit = _audit_dir(tmp_path / "audit")
    config = json.loads((audit / "config.json").read_text())
    config["inputs"]["victim"]["epochs"] += 1
    write_json_atomic(audit / "config.json", config)
    with pytest.raises(MolleakError, match=r"config\.json: not the shipped demo config .*victim"):
        demo_block_name(audit)
    with pytest.raises(InputFileError, match=r"nowhere/config\.json: no such file"):
        demo_block_name(tmp_path / "nowhere")
    (audit / "audit.json").write_text("{not json")
    with pytest.raises(InputFileError, match=r"audit\.json: not readable as JSON"):
        render_block(audit)
    docs = _docs(tmp_path, "demo-tiny")
    docs[0].write_text(f"{begin_marker('demo-tiny')}\nno end\n")
    with pytest.raises(MolleakError, match=r"README\.md: <!-- figures:demo-tiny begin --> without a matching"):
        check_blocks(docs, "demo-tiny", "x\n")


def _seed_audit_dir(root: Path, seed: int, p_member: float) -> Path:
    """The demo config at victim seed `seed`, with its private-only test and membership p-values."""
    audit = _audit_dir(root)
    config = json.loads((audit / "config.json").read_text())
    config["inputs"]["victim"]["seed"] = seed
    write_json_atomic(audit / "config.json", config)
    write_json_atomic(audit / "attribution.json", {
        "one_step": {"substructure": attribution_example()},
        "membership": {"rows": {"victim": {"auc": {"value": 0.5 + seed / 100, "lo": 0.4, "hi": 0.6},
                                           "p_value": p_member}}}})
    return audit


def test_the_seeds_block_aggregates_over_victim_seeds_and_corrects_across_them(tmp_path):
    p_members = [0.001, 0.04, 0.3, 0.5, 0.9]
    audits = [_seed_audit_dir(tmp_path / f"s{seed}", seed, p) for seed, p in enumerate(p_members)]
    assert seeds_block_name(audits) == "demo-tiny-seeds"
    block = render_seeds_block(audits)
    assert "victim seeds 0, 1, 2, 3, 4 (n=5)" in block
    adapter = next(line for line in block.splitlines() if line.startswith("one_step/adapter "))
    one = render_block(audits[0])  # every seed's row is the same here: the mean is that value, the interval collapses
    value = next(line for line in one.splitlines() if line.startswith("one_step/adapter ")).split()[5]  # P_sub@20
    assert adapter.split()[2:5] == [value, f"[{value},", f"{value}]"]
    # membership: AUC 0.50..0.54 over seeds (mean 0.520); p < 0.05 in 2 seeds, 1 after Holm (0.001*5 < 0.05, 0.04*4 > 0.05)
    member = next(line for line in block.splitlines() if "whole-molecule membership" in line)
    assert member.startswith("- whole-molecule membership (norm): victim AUC: 0.520 [")
    assert "detected (one-sided p < 0.05) in 2 of 5 seeds, 1 of 5 after Holm's correction" in member
    assert "private-only test" in block and "5 of 5 seeds" in block  # p = 0.02 in every seed: 0.02 * 5 > 0.05
    assert "5 of 5 seeds, 0 of 5 after Holm" in block
    # below 5 seeds: the range and n, no interval
    few = render_seeds_block(audits[:2])
    assert "victim AUC: 0.505 (range 0.500-0.510, n=2)" in few
    # runs that are not the demo config at distinct victim seeds: one clear error
    with pytest.raises(MolleakError, match="distinct victim seeds"):
        seeds_block_name([audits[0], audits[0]])
    config = json.loads((audits[1] / "config.json").read_text())
    config["inputs"]["attack"]["k"] = 10
    write_json_atomic(audits[1] / "config.json", config)
    with pytest.raises(MolleakError, match=r"not the shipped demo config \(tier and victim seed aside.*attack"):
        seeds_block_name(audits)
