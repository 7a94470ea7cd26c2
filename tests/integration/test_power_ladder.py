"""The power ladder end to end on a tiny rung: victims with canaries, shared shadows, pooled detection."""

from __future__ import annotations

import json

from molleak.plans import power
from molleak.plans.power import LadderPlan, Rung, format_ladder, run_power_ladder
from molleak.plans.shadows import ShadowPlan


def test_tiny_ladder_plants_canaries_shares_shadows_and_pools_seeds(tmp_path, tiny_tier, monkeypatch,
                                                                    one_torch_thread):
    monkeypatch.setitem(power.RUNGS, "test", Rung("test", n_private=40, epochs=2,
                                                  encoder_config={"num_layers": 2, "emb_dim": 16}))
    plan = LadderPlan(strategies=("attrmask",), rungs=("test",), repeats=(1, 3), per_family=2, decoys=10,
                      victim_seeds=(0, 1), shadow=ShadowPlan(n_shadows=2, statistics=("loss", "norm"),
                                                             n_population=20, n_boot=20))
    out = tmp_path / "ladder"
    res = run_power_ladder(tiny_tier, out, plan)
    # the victim's training list: 40 private molecules, then each canary r times
    train = (out / "test" / "victim_train.smi").read_text().split()
    assert len(train) == 40 + 2 * 2 * (1 + 3)
    canaries = [s for s in set(train[40:])]
    assert all(train.count(s) in (1, 3) for s in canaries) and len(canaries) == 8
    # one set of shadows for both victim seeds, none trained on a victim's private molecule
    shadow_sets = [(out / "test" / "attrmask" / "shadows" / "design" / f"shadow{k}.smi").read_text().split()
                   for k in range(2)]
    assert not (set(train[:40]) & set().union(*shadow_sets))
    assert len(list((out / "test" / "attrmask" / "shadows" / "models").glob("*.pt"))) == 2
    assert {c["victim_seed"] for c in res["cells"]} == {0, 1}
    pooled = [r for r in res["pooled"] if r["attack"] == "lira_offline" and r["group"] == "moses r=3"]
    assert {r["n"] for r in pooled} == {4}  # 2 canaries x 2 seeds
    assert json.loads((out / "power_ladder.json").read_text())["plan"]["victim_seeds"] == [0, 1]
    assert len(format_ladder(res)) == 2 + 2 * 2  # title, header, 2 families x 2 repetition counts
    # a rerun recomputes nothing
    again = run_power_ladder(tiny_tier, out, plan)
    assert again["pooled"] == res["pooled"]
