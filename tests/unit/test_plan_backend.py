"""Where plans run: `make_executor`, the `--backend/--address` options of the plan verbs, a cell's
Ray options, and one clear error when Ray is not installed (no Ray needed for these tests)."""

from __future__ import annotations

import sys

import pytest

from molleak.cli.main import build_parser, main
from molleak.errors import MolleakError
from molleak.plans.ray_executor import ray_options
from molleak.plans.runner import Cell, LocalExecutor, make_executor

PLAN_VERBS = [["zoo"], ["bench"], ["audit", "--config", "c.toml", "--out", "o"], ["demo"],
              ["leakage", "canary", "--data", "d", "--out", "o"],
              ["leakage", "sweep", "--data", "d", "--out", "o"]]


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
    assert build_parser().parse_args(words).backend == "local"


def test_address_without_the_ray_backend_is_refused(capsys):
    assert main(["zoo", "--data", "d", "--out", "o", "--address", "head:6379"]) == 2
    assert "--address is for --backend ray" in capsys.readouterr().err


def test_ray_options_come_from_the_cell_s_resources():
    assert ray_options(Cell("a", "victim", {}), 3) == {"num_cpus": 1.0, "max_retries": 3}
    cell = Cell("b", "victim", {}, resources={"cpus": 2, "memory_gb": 1.5, "gpus": 0.25})
    assert ray_options(cell, 0) == {"num_cpus": 2.0, "max_retries": 0, "memory": int(1.5 * 1024**3),
                                    "num_gpus": 0.25}
