"""The thread policy (molleak.threads): its choice from overrides, CPUs, load and workers, on real torch."""

from __future__ import annotations

import os

import pytest
import torch

from molleak.errors import MolleakError
from molleak.threads import (
    DEFAULT_THREADS,
    ENV_VAR,
    apply_threads,
    cgroup_cpu_limit,
    describe,
    free_threads,
    prepare_runtime,
    resolve_threads,
    usable_cpus,
    worker_threads,
)


@pytest.fixture()
def restore_threads(monkeypatch):
    """apply_threads changes torch and the environment for the whole process: put both back."""
    import molleak.threads as threads

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", ENV_VAR):
        monkeypatch.delenv(var, raising=False)  # recorded now, restored after the test
    before, applied = torch.get_num_threads(), dict(threads._applied)
    yield
    torch.set_num_threads(before)
    threads._applied.clear()
    threads._applied.update(applied)


@pytest.mark.parametrize("load", [0.0, 1.5, 8.0])
@pytest.mark.parametrize("cpus", [1, 2, 64])
def test_default_is_one_thread_whatever_the_machine(cpus, load):
    # a count read from the machine would make trained weights depend on the load (test_thread_determinism)
    assert resolve_threads(env={}, cpus=cpus, load=load) == (DEFAULT_THREADS, "default") == (1, "default")


def test_overrides_in_order():
    env = {ENV_VAR: "3", "OMP_NUM_THREADS": "2"}
    assert resolve_threads(4, env=env) == (4, "--threads")
    assert resolve_threads(env=env) == (3, ENV_VAR)
    assert resolve_threads(env={"OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")
    assert resolve_threads(env={ENV_VAR: " ", "OMP_NUM_THREADS": "2"}) == (2, "OMP_NUM_THREADS")
    # an explicit count is the user's choice, also in a worker; only `auto` shares cores among workers
    assert resolve_threads(env={ENV_VAR: "3"}, workers=4) == (3, ENV_VAR)


@pytest.mark.parametrize(("name", "value"), [(ENV_VAR, "0"), (ENV_VAR, "two"), (ENV_VAR, "-1"),
                                             ("OMP_NUM_THREADS", "auto"), ("OMP_NUM_THREADS", "1.5")])
def test_bad_override_names_the_variable(name, value):
    with pytest.raises(MolleakError, match=f"{name}='{value}'"):
        resolve_threads(env={name: value})


def test_bad_cli_count():
    with pytest.raises(MolleakError, match="--threads 0"):
        resolve_threads(0, env={})


@pytest.mark.parametrize(("cpus", "load", "workers", "expected"), [
    (8, 0.0, 1, 8),     # quiet: every core
    (8, 2.6, 1, 5),     # 5.4 cores free
    (8, 7.9, 1, 1),     # nothing free: still one thread
    (2, 2.0, 1, 1),     # two busy processes on two cores
    (2, 0.3, 1, 2),
    (8, 0.0, 4, 2),     # four workers share the free cores
    (8, 0.0, 16, 1),
    (4, 0.0, 3, 1),
])
def test_auto_counts_free_cores(cpus, load, workers, expected):
    assert free_threads(workers, cpus=cpus, load=load) == expected
    assert resolve_threads(env={ENV_VAR: "auto"}, workers=workers, cpus=cpus, load=load) == (expected, ENV_VAR)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_usable_cpus_follows_the_affinity_mask(tmp_path):
    no_quota = tmp_path  # an empty cgroup directory: no quota
    mask = os.sched_getaffinity(0)
    assert usable_cpus(no_quota) == len(mask)
    os.sched_setaffinity(0, {min(mask)})
    try:
        assert usable_cpus(no_quota) == 1
        assert free_threads(cpus=usable_cpus(no_quota), load=0.0) == 1
    finally:
        os.sched_setaffinity(0, mask)


def test_cgroup_quota(tmp_path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2) == 1.5
    assert usable_cpus(v2) == min(len(os.sched_getaffinity(0)), 2)
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_limit(v1) == 0.5
    assert usable_cpus(v1) == 1


def test_apply_sets_torch_and_the_environment_children_inherit(restore_threads):
    other = 2 if torch.get_num_threads() == 1 else 1
    apply_threads(other, "test")
    assert torch.get_num_threads() == other
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == str(other)
    assert describe()["intra_op"] == other and describe()["source"] == "test"
    torch.set_num_threads(3 - other)  # changed behind the policy's back: said so, not hidden
    assert describe()["source"].startswith("changed in-process")


def test_idle_threads_sleep_unless_the_user_chose(restore_threads, monkeypatch):
    prepare_runtime()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    apply_threads(1, "test")
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" == describe()["OMP_WAIT_POLICY"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="torch would choose one thread anyway")
def test_a_child_process_inherits_the_policy(restore_threads):
    import subprocess
    import sys

    apply_threads(1, "test")
    code = "import torch; print(torch.get_num_threads())"  # a plain child: no molleak, only the environment
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "1"


def test_run_metadata_records_the_threads(restore_threads):
    from molleak.runs import run_metadata

    apply_threads(1, "test")
    meta = run_metadata("x")["threads"]
    assert meta["intra_op"] == torch.get_num_threads() == 1 and meta["source"] == "test"
    assert meta["interop"] == torch.get_num_interop_threads()


def test_cli_applies_the_policy_once_at_entry(restore_threads, tmp_path, capsys, monkeypatch):
    from molleak.cli.main import main

    missing = tmp_path / "missing.smi"
    args = ["embed", "--victim", str(tmp_path / "v.pt"), "--smiles", str(missing), "--out", str(tmp_path / "e.npy")]
    monkeypatch.setenv(ENV_VAR, "zero")
    assert main(args) == 2
    assert "molleak: error: MOLLEAK_THREADS='zero'" in capsys.readouterr().err
    monkeypatch.setenv(ENV_VAR, "2")
    assert main(["--threads", "1", *args]) == 2  # the verb fails (no victim file), after the policy ran
    assert torch.get_num_threads() == 1 and describe()["source"] == "--threads"
    assert main(args) == 2
    assert torch.get_num_threads() == 2 and describe()["source"] == ENV_VAR
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.delenv("OMP_NUM_THREADS")  # the previous call exported it for child processes
    assert main(args) == 2
    assert torch.get_num_threads() == 1 and describe()["source"] == "default"


def test_plan_workers_compute_on_this_process_s_count_and_share_auto(restore_threads, monkeypatch):
    apply_threads(3, "--threads")
    assert worker_threads(2) == 3  # a parallel run gives a serial run's numbers
    torch.set_num_threads(1)  # e.g. inside `torch_threads(1)`: what this process computes on now
    assert worker_threads(2) == 1
    monkeypatch.setenv(ENV_VAR, "auto")
    apply_threads(2, ENV_VAR)
    assert worker_threads(2) == free_threads(2)  # auto: the free cores shared among the workers
