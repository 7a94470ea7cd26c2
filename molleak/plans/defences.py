"""The privacy-utility curve of the defences: attack power against the encoder's usefulness.

The owner's experiment (`molleak defences`):

1. **Victim design**: `canaries` molecules from the tier's holdout set, each included in the
   training set independently with probability 1/2 (the design both the membership attack's
   evaluation and the one-run DP audit need); the included ones are the victim's private training
   set. The recipe is one where the shadow-model attack detects membership without defence
   (default: EdgePred on a 2x64 GIN, 100 epochs, about 64 molecules), trained with `victim_seeds`.
2. **DP-SGD levels**: the same recipe at each epsilon of `epsilons` (None = ordinary training),
   delta `delta`, clip `max_grad_norm` (`molleak.pretrain.dp`). The shadows of each level are trained
   with that level's recipe (the attacker knows the recipe, DP included) and shared by its victims.
   Attack: white box (pretext loss) and black box (embedding statistics), LiRA and RMIA
   (`molleak.plans.shadows`). Per DP victim, the one-run empirical epsilon lower bound
   (`molleak.evaluate.dp_audit`) on the same canaries, beside the accountant's epsilon.
3. **Output defences**: the ordinary victims (and shadows) answered through Gaussian noise of
   `noise_scales` x the RMS of the undefended victim's embedding entries (`molleak.serve.defences`;
   noise keyed per model, so the attacker's shadows get noise of their own). Black-box attack only:
   the weights are not released.
4. **Utility**: a linear probe (`molleak.evaluate.probe.probe_score`, 5-fold CV) of measured
   properties on the (defended) embeddings, beside the same encoder at random initialisation.

Detection: per victim, the pre-declared primary attacks (white box: loss + offline LiRA, the power
ladder's primary; black box: `norm` and `invariance` + online LiRA, which learns each statistic's
direction from IN and OUT shadows), one-sided Mann-Whitney p of AUC > 0.5, Holm across every primary
test of the curve (levels x victim seeds x attacks). A level "detects" when any of its victims has
a primary test that survives (a privacy decision should not rest on the luckier seeds). The cheapest
setting that removes the detected leakage is the weakest one (largest epsilon, smallest noise) under
which no victim is detected; its utility is reported beside the undefended one's. Utility differences
smaller than their spread over seeds are not a ranking, so the order of strength decides, not them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from molleak.data.smiles_io import write_smiles
from molleak.errors import MolleakError
from molleak.plans.runner import Cell, Executor, run_plan
from molleak.plans.shadows import ShadowPlan, run_shadow_membership
from molleak.runs import package_versions, write_json_atomic

log = logging.getLogger(__name__)

RESULTS_FILE = "defences.json"
#: the pre-declared primary tests: (access, statistic, attack)
PRIMARY = {"dp": [("white box", "loss", "lira_offline")],
           "output": [("black box", "norm", "lira_online"), ("black box", "invariance", "lira_online")]}


@dataclass
class DefencePlan:
    """Everything that decides the curve (recorded with its results)."""

    strategy: str = "edgepred"
    encoder_config: dict[str, int] = field(default_factory=lambda: {"num_layers": 2, "emb_dim": 64})
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-3
    canaries: int = 128
    epsilons: tuple[float | None, ...] = (None, 100.0, 10.0, 1.0)
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    noise_scales: tuple[float, ...] = (0.1, 0.3, 1.0)
    victim_seeds: tuple[int, ...] = (0, 1, 2)
    shadow: ShadowPlan = field(default_factory=lambda: ShadowPlan(n_shadows=4, n_population=100))
    probe_targets: tuple[str, ...] = ("freesolv", "solubility", "bbb")
    probe_molecules: int = 1000
    random_inits: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.canaries < 8:
            raise MolleakError(f"defences: need at least 8 canaries, got {self.canaries}")
        if not self.victim_seeds:
            raise MolleakError("defences: need at least one victim seed")
        for e in self.epsilons:
            if e is not None and not e > 0:
                raise MolleakError(f"defences: epsilons must be positive (or none for no DP), got {e}")
        if any(not s > 0 for s in self.noise_scales):
            raise MolleakError(f"defences: noise scales must be positive, got {list(self.noise_scales)}")
        from molleak.pretrain.base import load_strategies
        from molleak.pretrain.dp import check_strategy

        if any(e is not None for e in self.epsilons):
            check_strategy(load_strategies().get(self.strategy))


def level_name(epsilon: float | None) -> str:
    return "eps=inf" if epsilon is None else f"eps={epsilon:g}"


def _read(path: Path, what: str) -> list[str]:
    from molleak.data.smiles_io import read_smiles

    if not path.is_file():
        raise MolleakError(f"defences: {what} not found: {path}")
    return read_smiles(path, what=what, canonicalize=False).smiles


def draw_canaries(data: Path, plan: DefencePlan) -> tuple[list[str], np.ndarray]:
    """The canaries (from holdout) and their inclusion: IN independently with probability 1/2."""
    from molleak.evaluate.dp_audit import canary_inclusion

    holdout = _read(data / "holdout.smi", "holdout set")
    if len(holdout) < plan.canaries:
        raise MolleakError(f"defences: {plan.canaries} canaries asked for, the holdout set has {len(holdout)}")
    pick = np.random.default_rng([plan.seed, 0xDEF]).choice(len(holdout), plan.canaries, replace=False)
    canaries = [holdout[i] for i in sorted(pick)]
    included = canary_inclusion(plan.canaries, plan.seed)
    if included.sum() < 2 or (~included).sum() < 2:
        raise MolleakError("defences: the canary draw left fewer than two canaries on one side; use more canaries")
    return canaries, included


def _utility(victim: Any, sets: dict[str, tuple[list[str], np.ndarray, bool]], seed: int) -> dict[str, float]:
    from molleak.evaluate.probe import probe_score

    return {t: float(np.mean(probe_score(victim.embed(s), y, c, None, seed, 1))) for t, (s, y, c) in sets.items()}


def _secret(*parts: Any) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


def primary_rows(result: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The pre-declared primary rows of one shadow audit (group "all")."""
    rows = {(r["access"], r["statistic"], r["attack"]): r for r in result["rows"] if r["group"] == "all"}
    return [rows[k] for k in PRIMARY[kind] if k in rows]


def run_defences(data_dir: str | Path, out: str | Path, plan: DefencePlan, *, executor: Executor | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Train the curve's victims and shadows, attack, audit and probe them; write and return the results."""
    from molleak.evaluate import dp_audit
    from molleak.evaluate.probe import measured_set
    from molleak.models.victim import Victim
    from molleak.pretrain.trainer import PretrainConfig
    from molleak.serve.defences import Defence, DefendedVictim

    data, out = Path(data_dir), Path(out)
    canaries, included = draw_canaries(data, plan)
    exclude = set(canaries)
    population = [s for s in _read(data / "aux.smi", "aux set") + _read(data / "reference.smi", "reference set")
                  if s not in exclude]
    train_file = out / "victim_train.smi"
    write_smiles(train_file, [c for c, i in zip(canaries, included, strict=True) if i])
    sets = {t: measured_set(t, plan.probe_molecules, plan.seed) for t in plan.probe_targets}
    cells: list[dict[str, Any]] = []

    def build(level: str, recipe: PretrainConfig) -> dict[int, str]:
        specs = [Cell(f"victim_s{s}", "victim", {
            "role": "victim", "recipe": asdict(replace(recipe, seed=s)), "data": str(train_file),
            "out": str(out / level / f"victim_s{s}.pt"), "train_name": "included canaries"},
            inputs=(str(train_file),)) for s in plan.victim_seeds]
        built = run_plan(specs, out / level / "cells", executor, progress=progress, what=f"{level} victims")
        return {s: built.result(c.id)["path"] for s, c in zip(plan.victim_seeds, specs, strict=True)}

    base = PretrainConfig(strategy=plan.strategy, epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr,
                          seed=0, encoder_config=dict(plan.encoder_config))
    plain: dict[int, str] = {}
    for epsilon in plan.epsilons:
        level = level_name(epsilon)
        dp = None if epsilon is None else {"epsilon": float(epsilon), "delta": plan.delta,
                                            "max_grad_norm": plan.max_grad_norm}
        victims = build(level, replace(base, dp=dp))
        if epsilon is None:
            plain = victims
        for s, path in victims.items():
            res = run_shadow_membership(path, canaries, included, population, out / level / f"seed{s}", plan.shadow,
                                        shadow_dir=out / level / "shadows", executor=executor, progress=progress)
            lower = dp_audit.audit(dp_audit.loss_drop_scores(path, canaries, draws=plan.shadow.draws, seed=plan.seed),
                                   included, plan.delta)
            prov = _provenance(path)
            cells.append({"defence": "dp", "level": level, "epsilon": epsilon, "victim_seed": s,
                          "epsilon_spent": (prov.get("dp") or {}).get("epsilon_spent"),
                          "noise_multiplier": (prov.get("dp") or {}).get("noise_multiplier"),
                          "empirical_epsilon": lower, "rows": primary_rows(res, "dp") + primary_rows(res, "output"),
                          "utility": _utility(Victim.from_checkpoint(path), sets, plan.seed)})
            log.info("%s seed %d done", level, s)

    if plan.noise_scales:
        if not plain:
            raise MolleakError("defences: output defences are measured on the undefended victims; "
                               "include no-DP (None) among the epsilons")
        first = Victim.from_checkpoint(plain[plan.victim_seeds[0]])
        rms = float(np.sqrt(np.mean(np.square(first.embed(population[: plan.shadow.n_population])))))
        for scale in plan.noise_scales:
            level = f"noise={scale:g}"
            defence = {"noise_std": scale * rms}
            shadow = replace(plan.shadow, statistics=("norm", "invariance"), defence=defence)
            for s, path in plain.items():
                res = run_shadow_membership(path, canaries, included, population, out / level / f"seed{s}", shadow,
                                            shadow_dir=out / level_name(None) / "shadows", executor=executor,
                                            progress=progress)
                served = DefendedVictim(Victim.from_checkpoint(path), Defence(**defence), "utility",
                                        _secret(plan.seed, level, s))
                cells.append({"defence": "output", "level": level, "noise_scale": scale, "noise_std": scale * rms,
                              "victim_seed": s, "rows": primary_rows(res, "output"),
                              "utility": _utility(served, sets, plan.seed)})
                log.info("%s seed %d done", level, s)

    results = {"cells": cells, "random_init": _random_init_utility(plain or None, plan, sets),
               "canaries": plan.canaries, "n_included": int(included.sum()), "plan": asdict(plan),
               "versions": package_versions()}
    results["summary"] = summarise(results)
    write_json_atomic(out / RESULTS_FILE, results)
    return results


def _provenance(path: str) -> dict[str, Any]:
    from molleak.models.checkpoint import read_checkpoint_file

    return read_checkpoint_file(path).get("provenance", {})


def _random_init_utility(plain: dict[int, str] | None, plan: DefencePlan, sets: dict) -> list[dict[str, float]]:
    """The same encoder at `random_inits` random initialisations: the utility floor."""
    import torch

    from molleak.models.base import build_encoder
    from molleak.models.victim import Victim

    out = []
    for k in range(plan.random_inits):
        torch.manual_seed(10_000 + plan.seed + k)
        out.append(_utility(Victim(build_encoder("gin", dict(plan.encoder_config)), name=f"random{k}"), sets, plan.seed))
    return out


def summarise(results: dict[str, Any], alpha: float = 0.05) -> dict[str, Any]:
    """Per level: attack power and utility (mean and range over seeds), detection after Holm, the cheapest fix."""
    from molleak.evaluate.metrics import holm_adjust

    tests = [(i, j) for i, c in enumerate(results["cells"]) for j, _ in enumerate(c["rows"])]
    adjusted = holm_adjust([results["cells"][i]["rows"][j]["p_auc"] for i, j in tests])
    survived: dict[tuple[int, str], bool] = {}  # (cell, access) -> a primary test of that access survived
    for (i, j), p in zip(tests, adjusted, strict=True):
        row = results["cells"][i]["rows"][j]
        row["p_holm_curve"] = p
        for access in (row["access"], "any"):
            survived[(i, access)] = survived.get((i, access), False) or bool(p < alpha)
    levels: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(results["cells"]):
        levels.setdefault(c["level"], {"defence": c["defence"], "cells": []})["cells"].append((i, c))
    rows = []
    for name, lv in levels.items():
        cs = [c for _, c in lv["cells"]]
        seeds_detected = {a: sum(survived.get((i, a), False) for i, _ in lv["cells"])
                          for a in ("any", "white box", "black box")}
        detected = seeds_detected["any"]
        util = {t: [c["utility"][t] for c in cs] for t in cs[0]["utility"]}
        attack = {}
        for key in {(r["access"], r["statistic"], r["attack"]) for c in cs for r in c["rows"]}:
            vals = [r for c in cs for r in c["rows"] if (r["access"], r["statistic"], r["attack"]) == key]
            attack[" ".join(key)] = {
                "auc": [r["auc"]["value"] for r in vals],
                "tpr_at_1pct": [r["tpr_at_fpr"]["0.01"]["value"] for r in vals]}
        row = {"level": name, "defence": lv["defence"], "n_seeds": len(cs), "detected_seeds": detected,
               "detected": detected > 0, "attack": attack,
               "detected_by_access": {a: n > 0 for a, n in seeds_detected.items() if a != "any"},
               "utility": {t: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
                           for t, v in util.items()},
               "utility_mean": float(np.mean([np.mean(v) for v in util.values()]))}
        if lv["defence"] == "dp":
            row["epsilon_spent"] = [c["epsilon_spent"] for c in cs]
            row["empirical_epsilon"] = [c["empirical_epsilon"]["epsilon_lower_bound"] for c in cs]
            row["noise_multiplier"] = [c.get("noise_multiplier") for c in cs]
        rows.append(row)
    rand = results.get("random_init") or []
    floor = float(np.mean([np.mean(list(u.values())) for u in rand])) if rand else None
    fixes = {}
    for kind in ("dp", "output"):
        # DP must remove leakage through any access; an output defence can only act on what the API returns
        def hit(r: dict[str, Any], kind: str = kind) -> bool:
            return r["detected"] if kind == "dp" else r["detected_by_access"]["black box"]

        own = [r for r in rows if r["defence"] == kind]
        undefended = next((r for r in rows if r["level"] == level_name(None)), None)
        clean = [r for r in own if not hit(r) and r["level"] != level_name(None)]
        if undefended is not None and not hit(undefended):
            fixes[kind] = {"level": None, "why": "the undefended victims were not detected at this power: nothing measured to remove"}
        elif clean:
            best = min(clean, key=lambda r: strength(results, r["level"]))
            fixes[kind] = {"level": best["level"], "utility_mean": best["utility_mean"],
                           "undefended_utility_mean": None if undefended is None else undefended["utility_mean"],
                           "why": "the weakest setting under which no victim is detected"}
        else:
            fixes[kind] = {"level": None, "why": "every setting measured still detects the leakage"}
    return {"levels": rows, "holm_family": len(tests), "alpha": alpha, "random_init_utility_mean": floor,
            "cheapest": fixes}


def strength(results: dict[str, Any], level: str) -> float:
    """How strong a level's defence is (higher = more perturbation): 1/epsilon for DP, the noise scale for output."""
    cell = next(c for c in results["cells"] if c["level"] == level)
    if cell["defence"] == "dp":
        return 0.0 if cell.get("epsilon") is None else 1.0 / float(cell["epsilon"])
    return float(cell["noise_scale"])


def mean_range(values: list[float | None]) -> str:
    """Mean over seeds in the project's one format (`bench.aggregate.fmt`): a 95% bootstrap interval
    over seeds from 5 seeds on, else the range and n."""
    from molleak.plans.bench.aggregate import fmt, summarize

    return fmt(summarize(values), 3)


def format_summary(summary: dict[str, Any]) -> list[str]:
    """The curve as a text table: one line per level."""
    lines = [f"{'level':<12} {'attack (primary)':<34} {'AUC mean (range, n)':<30} {'TPR@1%FPR mean':<16} "
             f"{'detected':<9} {'utility (probe mean)':<22} {'eps spent':<10} {'eps lower bound'}"]
    for r in summary["levels"]:
        first = True
        for name, a in sorted(r["attack"].items()):
            if r["defence"] == "dp" and not name.startswith("white") and r["level"] != level_name(None):
                continue  # DP levels: the white box; the undefended level also shows the output curve's start
            util = f"{r['utility_mean']:.3f}" if first else ""
            spent = lb = det = ""
            if first:
                det = f"{r['detected_seeds']}/{r['n_seeds']}"
                if r["defence"] == "dp" and any(e is not None for e in r.get("epsilon_spent", [])):
                    spent = f"{max(e for e in r['epsilon_spent'] if e is not None):.3g}"
                if r["defence"] == "dp":
                    lb = f"{max(r['empirical_epsilon']):.3f}"
            lines.append(f"{r['level'] if first else '':<12} {name:<34} {mean_range(a['auc']):<30} "
                         f"{np.mean(a['tpr_at_1pct']):<16.3f} {det:<9} {util:<22} {spent:<10} {lb}")
            first = False
    if summary.get("random_init_utility_mean") is not None:
        lines.append(f"random-init encoder: utility {summary['random_init_utility_mean']:.3f}")
    for kind, fix in summary["cheapest"].items():
        lines.append(f"cheapest {kind} setting that removes the detected leakage: {fix['level'] or 'none'} ({fix['why']})")
    return lines
