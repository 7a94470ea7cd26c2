"""The power ladder: how often would the membership attack catch a molecule seen r times?

For each rung (a recipe: strategy, encoder, private-set size, epochs) and each victim seed, the
owner trains a victim on its private molecules plus canaries planted r = 1, 2, 4, ... times, drawn
from two families: MOSES molecules (typical of the training distribution, `holdout.smi`) and
`aux_external.smi` molecules (non-ZINC, distinctive). Unplanted decoys of each family are the
non-members. The shadow-model attack (`molleak.plans.shadows`: LiRA, RMIA; white box and black box)
scores canaries and decoys; the detection probability at r is the TPR at 1% FPR of the canaries
seen r times against their family's decoys, pooled over victim seeds, with a one-sided 95%
Clopper-Pearson lower bound. Detection "starts" at the smallest r whose lower bound exceeds 1%.

The canary draw is fixed by the ladder seed and only the victims' training seeds vary, so the
shadows of one (rung, strategy) are trained once and shared by its victims (they depend on
neither the victim's seed nor its weights).
"""

from __future__ import annotations

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

RESULTS_FILE = "power_ladder.json"
FAMILIES = {"moses": "holdout.smi", "external": "aux_external.smi"}


@dataclass(frozen=True)
class Rung:
    """One recipe of the ladder."""

    name: str
    n_private: int
    epochs: int
    encoder_config: dict[str, int] = field(default_factory=lambda: {"num_layers": 2, "emb_dim": 32})
    batch_size: int = 32
    lr: float = 1e-3


#: from clearly over-fitted (few molecules, many epochs) to lightly trained (the zoo's regime:
#: each molecule seen a few times); the standard zoo itself is 5 x 300 on 50,000 molecules
RUNGS = {
    "memorise": Rung("memorise", n_private=30, epochs=100, batch_size=16),
    "overfit": Rung("overfit", n_private=200, epochs=50),
    "light": Rung("light", n_private=2000, epochs=5),
}


@dataclass
class LadderPlan:
    strategies: tuple[str, ...] = ("attrmask", "graphcl", "graphmae")
    rungs: tuple[str, ...] = ("overfit",)
    repeats: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    per_family: int = 4
    decoys: int = 100
    victim_seeds: tuple[int, ...] = (0, 1, 2)
    shadow: ShadowPlan = field(default_factory=ShadowPlan)
    seed: int = 0


def _read(path: Path, what: str) -> list[str]:
    from molleak.data.smiles_io import read_smiles

    if not path.is_file():
        raise MolleakError(f"power ladder: {what} not found: {path}")
    return read_smiles(path, what=what, canonicalize=False).smiles


def draw_targets(data: Path, plan: LadderPlan, private: set[str]) -> tuple[list[str], np.ndarray, list[str], dict]:
    """Canaries (members, grouped "FAMILY r=R") and decoys (non-members, grouped "FAMILY"), shuffled."""
    rng = np.random.default_rng([plan.seed, 0xCA4])
    targets, labels, groups, canaries = [], [], [], {}
    taken = set(private)
    for family, file in FAMILIES.items():
        pool = [s for s in dict.fromkeys(_read(data / file, f"{family} canary source")) if s not in taken]
        need = plan.per_family * len(plan.repeats) + plan.decoys
        if len(pool) < need:
            raise MolleakError(f"power ladder: {need} {family} molecules needed from {file}, {len(pool)} available")
        pick = [pool[i] for i in rng.choice(len(pool), need, replace=False)]
        taken.update(pick)
        for j, r in enumerate(plan.repeats):
            group = pick[j * plan.per_family : (j + 1) * plan.per_family]
            canaries[(family, r)] = group
            targets += group
            labels += [True] * len(group)
            groups += [f"{family} r={r}"] * len(group)
        decoys = pick[len(plan.repeats) * plan.per_family :]
        targets += decoys
        labels += [False] * len(decoys)
        groups += [family] * len(decoys)
    order = rng.permutation(len(targets))
    return ([targets[i] for i in order], np.asarray(labels)[order], [groups[i] for i in order], canaries)


def run_power_ladder(data_dir: str | Path, out: str | Path, plan: LadderPlan, *,
                     executor: Executor | None = None, progress: bool = False) -> dict[str, Any]:
    """Train the ladder's victims, run the shadow attack on each, and pool detection per r."""
    from molleak.pretrain.trainer import PretrainConfig

    data, out = Path(data_dir), Path(out)
    unknown = [r for r in plan.rungs if r not in RUNGS]
    if unknown:
        raise MolleakError(f"unknown rung {unknown[0]!r}; choose from {', '.join(RUNGS)}")
    population_all = _read(data / "aux.smi", "aux set") + _read(data / "reference.smi", "reference set")
    results: dict[str, Any] = {"cells": []}
    for rung_name in plan.rungs:
        rung = RUNGS[rung_name]
        private = _read(data / "private.smi", "private set")[: rung.n_private]
        targets, labels, groups, canaries = draw_targets(data, plan, set(private))
        train = list(private)
        for (_, r), group in canaries.items():
            train += group * r
        exclude = set(targets) | set(private)
        population = [s for s in population_all if s not in exclude]
        train_file = out / rung_name / "victim_train.smi"
        write_smiles(train_file, train)
        for strategy in plan.strategies:
            base = PretrainConfig(strategy=strategy, epochs=rung.epochs, batch_size=rung.batch_size, lr=rung.lr,
                                  seed=0, encoder_config=dict(rung.encoder_config))
            where = out / rung_name / strategy
            cells = [Cell(f"victim_s{s}", "victim", {
                "role": "victim", "recipe": asdict(replace(base, seed=s)), "data": str(train_file),
                "out": str(where / f"victim_s{s}.pt"), "train_name": "private + canaries"}, inputs=(str(train_file),))
                for s in plan.victim_seeds]
            built = run_plan(cells, where / "cells", executor, progress=progress, what=f"{rung_name} {strategy} victims")
            for s, cell in zip(plan.victim_seeds, cells, strict=True):
                res = run_shadow_membership(built.result(cell.id)["path"], targets, labels, population,
                                            where / f"seed{s}", plan.shadow, groups=groups,
                                            shadow_dir=where / "shadows", executor=executor, progress=progress)
                results["cells"].append({"rung": rung_name, "strategy": strategy, "victim_seed": s,
                                         "rows": res["rows"], "n_train": res["n_train"],
                                         "shadow_seconds": res["shadow_seconds"],
                                         "victim_seconds": built.records[cell.id]["seconds"]})
    results["pooled"] = pool_over_seeds(results["cells"], plan.shadow.fprs[0])
    results.update({"plan": asdict(plan), "rungs": {r: asdict(RUNGS[r]) for r in plan.rungs},
                    "versions": package_versions()})
    write_json_atomic(out / RESULTS_FILE, results)
    return results


#: the ladder's pre-declared attack: LiRA offline (with few shadows per molecule the OUT-only
#: Gaussian is the better-estimated one; Carlini et al. 2022). Its cells form the Holm family.
PRIMARY_ATTACK = "lira_offline"


def pool_over_seeds(cells: list[dict[str, Any]], fpr: float, primary: str = PRIMARY_ATTACK) -> list[dict[str, Any]]:
    """Per (rung, strategy, statistic, attack, group): detection pooled over victim seeds, tested per molecule.

    Each seed flags the canaries above its own 1%-FPR threshold (the decoy score with
    j = floor(0.01 n_decoys) decoys above it). The pooled TPR is flagged canaries over canaries of
    all seeds, with a one-sided 95% Clopper-Pearson lower bound (descriptive: the same canaries recur
    in every seed, so these are not independent trials).

    The test's unit is the molecule: a canary is detected when a majority of the victim seeds flag
    it. Under the null (a canary scored like a decoy) one seed flags it with probability
    (j + 1) / (n_decoys + 1) (2/101 with 100 decoys, not 0.01); the seeds share the shadows, so
    their flags may be fully correlated and a majority is taken to have that same probability (the
    conservative bound). The one-sided binomial p of the detected count over the canaries, Holm-
    adjusted across every cell of the primary attack (all rungs, strategies, statistics, families
    and r), decides `above_fpr`; other attacks are reported without a test.
    """
    from scipy.stats import beta, binom

    from molleak.evaluate.metrics import holm_adjust

    key_rows: dict[tuple, list[dict]] = {}
    for c in cells:
        for r in c["rows"]:
            key = (c["rung"], c["strategy"], r["statistic"], r["access"], r["attack"], r["group"])
            key_rows.setdefault(key, []).append(r)
    out = []
    for (rung, strategy, statistic, access, attack, group), rows in key_rows.items():
        n = sum(r["n_members"] for r in rows)
        k = int(round(sum(r["tpr_at_fpr"][str(fpr)]["value"] * r["n_members"] for r in rows)))
        null = float(np.mean([(np.floor(fpr * r["n_nonmembers"]) + 1) / (r["n_nonmembers"] + 1) for r in rows]))
        lower = 0.0 if k == 0 else float(beta.ppf(0.05, k, n - k + 1))
        row = {"rung": rung, "strategy": strategy, "statistic": statistic, "access": access, "attack": attack,
               "group": group, "seeds": len(rows), "detected": k, "n": n, "tpr": k / n if n else float("nan"),
               "tpr_lower": lower, "null_rate": null, "auc_per_seed": [r["auc"]["value"] for r in rows]}
        if all("above" in r for r in rows):
            flags: dict[int, int] = {}
            for r in rows:
                for i in r["above"]:
                    flags[i] = flags.get(i, 0) + 1
            molecules = rows[0]["n_members"]
            majority = sum(1 for c in flags.values() if c > len(rows) / 2)
            row.update(molecules=molecules, molecules_detected=majority,
                       p=float(binom.sf(majority - 1, molecules, null)) if molecules else float("nan"))
        out.append(row)
    family = [row for row in out if row["attack"] == primary and " r=" in row["group"] and "p" in row]
    for row, p in zip(family, holm_adjust([row["p"] for row in family]), strict=True):
        row["p_holm"] = p
    for row in out:
        row["above_fpr"] = bool(row.get("p_holm", 1.0) < 0.05)
    return out


def detection_start(pooled: list[dict[str, Any]], rung: str, strategy: str, statistic: str, attack: str,
                    family: str) -> int | None:
    """The smallest r whose pooled TPR lower bound exceeds the FPR (None: never on this ladder)."""
    hits = []
    for row in pooled:
        if (row["rung"], row["strategy"], row["statistic"], row["attack"]) != (rung, strategy, statistic, attack):
            continue
        fam, _, r = row["group"].partition(" r=")
        if fam == family and r.isdigit() and row["above_fpr"]:
            hits.append(int(r))
    return min(hits) if hits else None


def format_ladder(results: dict[str, Any], attack: str = PRIMARY_ATTACK) -> list[str]:
    """Detection at 1% FPR against r, per rung, strategy and family: white box beside black box."""
    pooled = results["pooled"]
    stats = sorted({(r["access"], r["statistic"]) for r in pooled}, key=lambda a: (a[0] != "white box", a[1]))
    tested = any(r["attack"] == attack and "p_holm" in r for r in pooled)
    lines = [f"TPR at 1% FPR of canaries seen r times, {attack}, pooled over victim seeds "
             "[one-sided 95% lower bound]; "
             + ("mK/M = canaries flagged by a majority of seeds; * = more than chance (per molecule, Holm "
                "across the ladder)" if tested
                else "not the ladder's pre-declared attack: no test")]
    head = f"{'rung':8s} {'strategy':9s} {'family':9s} {'r':>3s}  " + "  ".join(
        f"{('WB ' if a == 'white box' else 'BB ') + s:28s}" for a, s in stats)
    lines.append(head)
    index = {(r["rung"], r["strategy"], r["statistic"], r["attack"], r["group"]): r for r in pooled}
    combos = sorted({(r["rung"], r["strategy"], r["group"]) for r in pooled if " r=" in r["group"]},
                    key=lambda c: (c[0], c[1], c[2].split(" r=")[0], int(c[2].split(" r=")[1])))
    for rung, strategy, group in combos:
        family, _, rep = group.partition(" r=")
        cells = []
        for _, s in stats:
            row = index.get((rung, strategy, s, attack, group))
            mol = f" m{row['molecules_detected']}/{row['molecules']}" if row is not None and "molecules" in row else ""
            cells.append("-" if row is None else
                         f"{row['detected']}/{row['n']} = {row['tpr']:.2f} [{row['tpr_lower']:.2f}]{mol}"
                         f"{'*' if row['above_fpr'] else ''}")
        lines.append(f"{rung:8s} {strategy:9s} {family:9s} {rep:>3s}  " + "  ".join(f"{c:28s}" for c in cells))
    return lines
