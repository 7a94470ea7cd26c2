"""Where plans run: `make_executor`, the `--backend/--address` options of the plan verbs and their
`--config` keys (an audit config's `[backend]` section), a cell's Ray options, the progress display,
and one clear error when Ray is not installed (no Ray needed for these tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from molleak.cli.common import apply_config, plan_executor
from molleak.cli.main import build_parser, main
from molleak.config import AuditConfig, BackendConfig, load_audit_file, load_config
from molleak.errors import InputFileError, MolleakError
from molleak.plans.ray_executor import ray_options
from molleak.plans.runner import CELL_KINDS, Cell, LocalExecutor, make_executor, run_plan

PLAN_VERBS = [["zoo"], ["bench"], ["audit", "--config", "c.toml", "--out", "o"], ["demo"],
              ["leakage", "canary", "--data", "d", "--out", "o"],
              ["leakage", "sweep", "--data", "d", "--out", "o"],
              ["membership", "--victim", "v.pt", "--members", "m", "--nonmembers", "n", "--population", "p",
               "--out", "o"],
              ["power", "--data", "d", "--out", "o"]]


def test_make_executor_local_and_its_errors():
    assert isinstance(make_executor(), LocalExecutor) and make_executor().workers == 1
    assert make_executor("local", 2).workers == 2
    with pytest.raises(MolleakError, match="unknown backend 'spark'"):
        make_executor("spark")
    with pytest.raises(MolleakError, match="ray backend"):
        make_executor("local", address="head:6379")


def test_without_ray_the_ray_backend_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MolleakError, match=r"pip install 'molleak\[ray\]'"):
        make_executor("ray")
    assert main(["zoo", "--data", "d", "--out", "o", "--backend", "ray"]) == 2
    err = capsys.readouterr().err
    assert "molleak: error:" in err and "pip install 'molleak[ray]'" in err and "Traceback" not in err


@pytest.mark.parametrize("words", PLAN_VERBS, ids=" ".join)
def test_every_plan_verb_takes_backend_and_address(words):
    args = build_parser().parse_args([*words, "--backend", "ray", "--address", "head:6379"])
    assert (args.backend, args.address) == ("ray", "head:6379")
    default = build_parser().parse_args(words)
    assert default.backend is None and plan_executor(default) is None  # local: the verb's own executor


def test_address_without_the_ray_backend_is_refused(capsys):
    assert main(["zoo", "--data", "d", "--out", "o", "--address", "head:6379"]) == 2
    assert "--address is for --backend ray" in capsys.readouterr().err


def test_ray_options_come_from_the_cell_s_resources():
    assert ray_options(Cell("a", "victim", {}), 3) == {"num_cpus": 1.0, "max_retries": 3}
    cell = Cell("b", "victim", {}, resources={"cpus": 2, "memory_gb": 1.5, "gpus": 0.25})
    assert ray_options(cell, 0) == {"num_cpus": 2.0, "max_retries": 0, "memory": int(1.5 * 1024**3),
                                    "num_gpus": 0.25}


def _parsed(words: list[str]):
    return apply_config(build_parser().parse_args(words))


def _no_ray(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError: asking for Ray is an error


def test_backend_and_address_come_from_a_verb_s_config_file_and_flags_win(tmp_path, monkeypatch):
    cfg = tmp_path / "zoo.toml"
    cfg.write_text('data = "d"\nout = "o"\nbackend = "ray"\naddress = "head:6379"\nworkers = 3\n')
    args = _parsed(["zoo", "--config", str(cfg)])
    assert (args.backend, args.address, args.workers) == ("ray", "head:6379", 3)
    _no_ray(monkeypatch)
    with pytest.raises(MolleakError, match="needs Ray"):
        plan_executor(args, args.workers)
    # `--backend local` replaces the file's backend, and the address that went with it
    local = _parsed(["zoo", "--config", str(cfg), "--backend", "local"])
    assert local.backend == "local" and plan_executor(local) is None
    moved = _parsed(["zoo", "--config", str(cfg), "--address", "other:1"])
    assert (moved.backend, moved.address) == ("ray", "other:1")

    bench = tmp_path / "bench.toml"
    bench.write_text('suite = "table1"\nout = "o"\nbackend = "ray"\n')
    args = _parsed(["bench", "--config", str(bench)])
    assert (args.backend, args.address) == ("ray", None)


@pytest.mark.parametrize("text, problem", [('backend = "spark"', "backend"), ('address = 6379', "address"),
                                           ('backnd = "ray"', "unknown key")])
def test_a_bad_backend_key_is_one_error_naming_the_file(tmp_path, text, problem):
    cfg = tmp_path / "zoo.toml"
    cfg.write_text(f'data = "d"\nout = "o"\n{text}\n')
    with pytest.raises(InputFileError, match=rf"config {cfg}: .*{problem}"):
        _parsed(["zoo", "--config", str(cfg)])


def test_an_audit_config_s_backend_section_says_where_and_leaves_the_audit_unchanged(tmp_path, monkeypatch):
    plain = tmp_path / "plain.toml"
    plain.write_text("[victim]\nepochs = 2\n")
    cfg = tmp_path / "audit.toml"
    cfg.write_text('[victim]\nepochs = 2\n\n[backend]\nkind = "ray"\naddress = "auto"\nworkers = 2\n')
    audit, backend = load_audit_file(cfg)
    assert backend == BackendConfig(kind="ray", address="auto", workers=2)
    # where the cells run is no input of the audit: its config (and so its hash) is the one without the section
    assert isinstance(audit, AuditConfig) and audit.model_dump() == load_config(plain).model_dump()
    assert load_audit_file(plain)[1] == BackendConfig()

    args = build_parser().parse_args(["audit", "--config", str(cfg), "--out", "o"])
    _no_ray(monkeypatch)
    with pytest.raises(MolleakError, match="needs Ray"):
        plan_executor(args, config=backend)
    local = build_parser().parse_args(["audit", "--config", str(cfg), "--out", "o", "--backend", "local"])
    executor = plan_executor(local, config=backend)  # the flag wins; the section's address goes with its kind
    assert isinstance(executor, LocalExecutor) and executor.workers == 2

    bad = tmp_path / "bad.toml"
    bad.write_text('[backend]\nkind = "ray"\ncpus = 2\n')
    with pytest.raises(InputFileError, match=rf"config {bad}: backend.cpus: unknown key"):
        load_audit_file(bad)


def test_the_progress_display_counts_done_running_failed_and_time_left(tmp_path, caplog):
    def sometimes_fails(params: dict, cell_dir: Path) -> dict:
        if params["fail"]:
            raise MolleakError("this cell cannot run")
        return {}

    if "test-sometimes-fails" not in CELL_KINDS:
        CELL_KINDS.register("test-sometimes-fails")(sometimes_fails)
    cells = [Cell(f"c{i}", "test-sometimes-fails", {"fail": i == 1}) for i in range(3)]
    with caplog.at_level("INFO", logger="molleak.plans.runner"):
        plan = run_plan(cells, tmp_path, LocalExecutor(1), what="plan")
    assert (plan.ran, plan.failed) == (3, 1)
    lines = [r.getMessage() for r in caplog.records if " cells done, " in r.getMessage()]
    assert [line.split("; about")[0] for line in lines] == ["plan: 1/3 cells done, 1 running, 0 failed",
                                                           "plan: 2/3 cells done, 1 running, 1 failed",
                                                           "plan: 3/3 cells done, 0 running, 1 failed"]
    assert all(" s left; c" in line for line in lines)


WORKER_KIND = "test-worker-identity"
if WORKER_KIND not in CELL_KINDS:

    @CELL_KINDS.register(WORKER_KIND)
    def _worker_identity(params, cell_dir):
        """A cell kind only this test module registers: which process ran it, on how many threads."""
        import os

        import torch
        from tqdm.auto import tqdm

        bar = tqdm(range(1))
        bar.close()
        return {"pid": os.getpid(), "threads": torch.get_num_threads(), "bars_hidden": bar.disable}


def test_a_local_pool_serves_every_plan_on_the_callers_threads_and_knows_its_cell_kinds(tmp_path):
    import os

    with LocalExecutor(2, threads=2) as executor:
        plans = [run_plan([Cell(f"{name}{i}", WORKER_KIND, {"i": i}) for i in range(4)], tmp_path / name, executor)
                 for name in ("first", "second")]
        assert executor._pool is not None
    assert executor._pool is None  # closed on leaving the block
    records = [plan.result(f"{name}{i}") for plan, name in zip(plans, ("first", "second"), strict=True)
               for i in range(4)]
    pids = {r["pid"] for r in records}
    # a kind registered by this module ran in spawned workers (they imported it), two of them in all:
    # the second plan reused the first one's processes; each computed on the thread count it was given
    assert os.getpid() not in pids and len(pids) <= 2
    assert {r["threads"] for r in records} == {2}
    assert all(r["bars_hidden"] for r in records)  # the parent's progress line only, no bars from workers
