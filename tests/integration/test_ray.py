"""Plans on a real local Ray instance (started here, 2 CPUs): the same checkpoints and records as the
local backend, a cell whose worker dies is retried, and a finished plan reruns nothing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'molleak[ray]')")

from molleak.data.smiles_io import write_smiles  # noqa: E402
from molleak.plans.cells import victim_cell_spec  # noqa: E402
from molleak.plans.ray_executor import RayExecutor  # noqa: E402
from molleak.plans.runner import Cell, LocalExecutor, run_plan  # noqa: E402
from molleak.pretrain.trainer import PretrainConfig  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ray_cell_kinds  # noqa: E402,F401  (registers test-noop and test-crash-once)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    # the workers import the test's cell kinds (ray_cell_kinds) from this directory
    ray.init(num_cpus=2, address="local", include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1", runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    yield
    ray.shutdown()


def _plan(tmp: Path, moses_sample: list[str]) -> list[Cell]:
    data = tmp / "train.smi"
    write_smiles(data, moses_sample[:150])
    recipe = PretrainConfig(strategy="attrmask", epochs=1, batch_size=32, seed=0,
                            encoder_config={"num_layers": 2, "emb_dim": 16})
    return [victim_cell_spec("v0", "victim", recipe, tmp / "models" / "v0.pt", data=data, seed=0),
            victim_cell_spec("v1", "victim", recipe, tmp / "models" / "v1.pt", data=data, first=120, seed=1),
            Cell("noop", "test-noop", {"x": 1})]


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint, by its path in the (nested) dict."""
    out: dict[str, torch.Tensor] = {}

    def walk(obj, prefix: str) -> None:
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{prefix}/{k}")

    walk(torch.load(path, map_location="cpu", weights_only=True), "")
    return out


def _comparable(record: dict) -> dict:
    """A record less what depends on the clock (seconds, and the checkpoint's bytes, which hold timings)."""
    result = {k: v for k, v in record["result"].items() if k not in ("sha256", "seconds_per_epoch")}
    return {**{k: v for k, v in record.items() if k != "seconds"}, "result": result}


def test_ray_gives_the_local_backend_s_checkpoints_and_records_and_resumes(local_ray, tmp_path, moses_sample):
    cells = _plan(tmp_path, moses_sample)
    local = run_plan(cells, tmp_path / "cells", LocalExecutor(1))
    assert local.ran == 3 and local.failed == 0
    local_tensors = {c: _tensors(tmp_path / "models" / f"{c}.pt") for c in ("v0", "v1")}
    local_records = {cid: _comparable(r) for cid, r in local.records.items()}
    shutil.rmtree(tmp_path / "models")
    shutil.rmtree(tmp_path / "cells")

    on_ray = run_plan(cells, tmp_path / "cells", RayExecutor())
    assert on_ray.ran == 3 and on_ray.failed == 0
    assert {cid: _comparable(r) for cid, r in on_ray.records.items()} == local_records
    for c, tensors in local_tensors.items():
        got = _tensors(tmp_path / "models" / f"{c}.pt")
        assert got.keys() == tensors.keys() and tensors
        for name, t in tensors.items():
            assert torch.equal(got[name], t), f"{c}{name} differs between the local backend and Ray"

    again = run_plan(cells, tmp_path / "cells", RayExecutor())  # resume: every key still matches
    assert (again.ran, again.resumed) == (0, 3)


def test_a_cell_whose_worker_dies_is_retried_and_the_plan_completes(local_ray, tmp_path):
    marker = tmp_path / "crashed-once"
    cells = [Cell("crash", "test-crash-once", {"marker": str(marker)}), Cell("noop", "test-noop", {"y": 2})]
    plan = run_plan(cells, tmp_path / "cells", RayExecutor(max_retries=2))
    assert plan.failed == 0 and plan.ran == 2
    result = plan.result("crash")
    assert marker.is_file() and result["first_pid"] != result["pid"]  # a second worker ran it
    assert plan.result("noop") == {"echo": {"y": 2}}


def _progress(caplog) -> list[str]:
    """The plan's progress lines, less what depends on timing (seconds left, which cell finished)."""
    return [r.getMessage().split(";")[0] for r in caplog.records
            if r.name == "molleak.plans.runner" and " cells done, " in r.getMessage()]


@pytest.mark.slow  # about 30 s on a loaded 2-core machine: the local pool's processes start from scratch
def test_the_progress_display_is_the_same_on_both_backends(local_ray, tmp_path, moses_sample, caplog):
    """Cells done, running, failed and time left: one display, whether cells run in 2 local processes or
    on a 2-CPU Ray instance (a plan of 4 victims: 2 run, then 2, then 0 are left to run)."""
    data = tmp_path / "train.smi"
    write_smiles(data, moses_sample[:60])
    recipe = PretrainConfig(strategy="attrmask", epochs=1, batch_size=32, seed=0,
                            encoder_config={"num_layers": 1, "emb_dim": 8})
    cells = [victim_cell_spec(f"v{i}", "victim", recipe, tmp_path / "{backend}" / f"v{i}.pt", data=data, seed=i)
             for i in range(4)]
    shown = {}
    for backend, executor in (("local", LocalExecutor(2)), ("ray", RayExecutor())):
        caplog.clear()
        mine = [Cell(c.id, c.kind, {**c.params, "out": c.params["out"].replace("{backend}", backend)}, c.inputs)
                for c in cells]
        with caplog.at_level("INFO", logger="molleak.plans.runner"):
            plan = run_plan(mine, tmp_path / backend / "cells", executor, what="victims")
        assert (plan.ran, plan.failed) == (4, 0)
        shown[backend] = _progress(caplog)
    assert shown["local"] == shown["ray"] == [f"victims: {i}/4 cells done, {min(2, 4 - i)} running, 0 failed"
                                              for i in range(1, 5)]


RECEPTORS = HERE.parents[1] / ".." / "shared" / "data" / "receptors"


@pytest.mark.dock
@pytest.mark.skipif(not (RECEPTORS / "parp1.pdbqt").is_file(), reason="shared receptors not present")
def test_docking_cells_on_ray_give_the_local_energies(local_ray, tmp_path):
    pytest.importorskip("vina")
    pytest.importorskip("meeko")
    import numpy as np

    from molleak.attack.scoring.dock import BOXES, DockSettings
    from molleak.plans.dock import dock_plan

    settings = DockSettings(str(RECEPTORS / "parp1.pdbqt"), BOXES["parp1"][0], (10.0, 10.0, 10.0), 1, 0)
    ligands = ["Oc1ccccc1", "CCO", "c1ccncc1", "C1CC"]
    energies = {}
    for backend, executor in (("local", LocalExecutor(1)), ("ray", RayExecutor())):
        energies[backend], failures, plan = dock_plan(ligands, settings, tmp_path / backend / "cells",
                                                      tmp_path / backend / "cache", executor=executor, chunk=2,
                                                      timeout=120)
        assert (plan.ran, plan.failed) == (2, 0) and "invalid SMILES" in failures["C1CC"]
    assert np.isfinite(energies["ray"][:3]).all()
    assert np.array_equal(energies["local"], energies["ray"], equal_nan=True)
