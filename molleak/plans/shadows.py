"""Shadow-model membership inference, run as a plan: LiRA and RMIA, white box beside black box.

The owner's audit of one victim (this module reads the victim's training set to pick members;
the attack it runs never does):

1. **Targets** (owner): `n` members drawn from the victim's training molecules and `n` non-members
   from the same distribution (or, for the canary ladder, planted canaries and unplanted decoys),
   shuffled into one unlabelled list. Labels stay here.
2. **Shadows** (attacker): `n_shadows` models of the victim's recipe (read from its provenance),
   each with a seed of its own drawn from the audit seed (never the victim's), each trained on a
   random half of the targets (every target IN exactly half the shadows) filled up to the victim's
   training-set size with molecules from the attacker's population; built by the one victim
   builder as `victim` cells, so any executor (local pool, Ray) spreads them.
3. **Statistics** (one `statistics` cell per model): per molecule, the white-box pretext loss
   (`molleak.pretrain.whitebox`, `-log` scale; the owner's upper bound) and black-box embedding
   statistics (`molleak.attack.membership`: `norm`, `invariance`; all a user of the shared encoder
   can compute), on the targets and on RMIA's population molecules (trained on by no model).
4. **Scores** (attacker, `molleak.attack.lira`): LiRA online and offline, RMIA online and offline.
5. **Evaluation** (owner): AUC and TPR at 1% and 0.1% FPR with bootstrap intervals over molecules,
   a one-sided Mann-Whitney p-value per row and Holm's correction across the rows of the audit;
   per group (e.g. canaries seen r times) against all non-members; ROC curves for the report.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from molleak.errors import MolleakError
from molleak.plans.runner import CELL_KINDS, Cell, Executor, run_plan
from molleak.runs import package_versions, sha256_file, write_atomic, write_json_atomic

log = logging.getLogger(__name__)

WHITE_BOX = ("loss",)
BLACK_BOX = ("norm", "invariance")
STATISTICS = WHITE_BOX + BLACK_BOX
RESULTS_FILE = "shadow_membership.json"
TARGETS_FILE = "targets.smi"
POPULATION_FILE = "rmia_population.smi"


def access_of(statistic: str) -> str:
    return "white box" if statistic in WHITE_BOX else "black box"


def shadow_seeds(audit_seed: int, n: int, avoid: int | None = None) -> list[int]:
    """The shadows' training seeds, drawn from the audit seed alone (independent of the victim's).

    `avoid` (the victim's seed, known to the owner running the audit) is skipped should a draw hit
    it by chance, so no shadow can start from the victim's initial weights.
    """
    rng = np.random.default_rng([int(audit_seed), 0x5AD0F])
    seeds: list[int] = []
    while len(seeds) < n:
        s = int(rng.integers(1, 2**31 - 1))
        if s != avoid and s not in seeds:
            seeds.append(s)
    return seeds


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})
    write_atomic(path, buf.getvalue())


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@CELL_KINDS.register("statistics")
def statistics_cell(params: dict[str, Any], cell_dir: Path) -> dict[str, Any]:
    """params: model (checkpoint), molecules (SMILES file), statistics (names), draws, seed, n_neighbours.

    Writes `statistics.npz` (one float64 array per statistic, in the file's order).
    """
    from molleak.attack.membership import membership_scores
    from molleak.data.smiles_io import read_smiles
    from molleak.models.victim import Victim
    from molleak.pretrain.whitebox import load_strategy, loss_statistic, per_molecule_losses

    smiles = read_smiles(params["molecules"], what="membership targets", canonicalize=False).smiles
    out: dict[str, np.ndarray] = {}
    victim = None
    for name in params["statistics"]:
        if name == "loss":
            strategy = load_strategy(params["model"])
            out[name] = loss_statistic(per_molecule_losses(strategy, smiles, draws=params["draws"], seed=params["seed"]))
        else:
            if victim is None:
                victim = Victim.from_checkpoint(params["model"])
                if params.get("defence"):
                    # the model's answers through an output defence, noise keyed by the model (see plans.defences)
                    from molleak.serve.defences import Defence, DefendedVictim

                    victim = DefendedVictim(victim, Defence(**params["defence"]), "audit",
                                            params["defence_secret"].encode())
            out[name] = membership_scores(victim, smiles, statistic=name, n_neighbours=params["n_neighbours"],
                                          seed=params["seed"])
    path = Path(cell_dir) / "statistics.npz"
    _save_arrays(path, out)
    return {"file": str(path), "n": len(smiles), "statistics": list(out)}


@dataclass
class ShadowPlan:
    """What a shadow-model membership audit runs (all of it recorded with the results).

    Attributes:
        n_shadows: shadow models (even; LiRA online needs IN and OUT shadows per molecule).
        statistics: names from STATISTICS ("loss" = white box, needs a checkpoint with its heads).
        draws: fixed mask/augmentation draws the white-box loss averages over.
        n_neighbours: one-edit neighbours per molecule for `invariance`.
        n_population: RMIA's population molecules (from the attacker's population, trained on by no model).
        seed: the audit seed (target draw, shadow design, shadow seeds, bootstrap).
        workers: local worker processes (ignored by other executors).
    """

    n_shadows: int = 8
    statistics: tuple[str, ...] = STATISTICS
    draws: int = 4
    n_neighbours: int = 8
    n_population: int = 200
    seed: int = 0
    n_boot: int = 500
    fprs: tuple[float, ...] = (0.01, 0.001)
    extra: dict[str, Any] = field(default_factory=dict)
    #: an output defence (`molleak.serve.defences.Defence` settings) every model's black-box answers pass
    #: through: the victim's as served, the shadows' as the attacker (who knows the deployment) mimics it
    defence: dict[str, Any] | None = None


def _write_smiles(path: Path, smiles: list[str]) -> str:
    """Write a SMILES file (`smiles_io.write_smiles`) and return its path, for a cell's parameters."""
    from molleak.data.smiles_io import write_smiles

    write_smiles(path, smiles)
    return str(path)


def shadow_training_sets(targets: list[str], inclusion: np.ndarray, filler: list[str], n_train: int,
                         seed: int) -> list[list[str]]:
    """Per shadow: its IN targets plus attacker population molecules up to `n_train` (the victim's size).

    Raises:
        MolleakError: the population is too small to fill a shadow to the victim's size.
    """
    rng = np.random.default_rng([seed, 0xF111])
    sets = []
    for k in range(inclusion.shape[0]):
        own = [t for t, inc in zip(targets, inclusion[k], strict=True) if inc]
        need = max(n_train - len(own), 0)
        if need > len(filler):
            raise MolleakError(f"shadow membership: shadows must train on {n_train} molecules like the victim, but "
                               f"the attacker's population has only {len(filler)} to add to {len(own)} targets; "
                               "give a larger population")
        pick = rng.choice(len(filler), need, replace=False) if need else np.zeros(0, dtype=int)
        sets.append(own + [filler[i] for i in sorted(pick)])
    return sets


def run_shadow_membership(
    victim: str | Path,
    targets: list[str],
    labels: np.ndarray,
    population: list[str],
    out: str | Path,
    plan: ShadowPlan,
    *,
    groups: list[str] | None = None,
    shadow_dir: str | Path | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Shadow-model membership of `victim` over labelled targets; writes and returns the results.

    Args:
        victim: the victim checkpoint (its provenance gives the recipe and training-set size).
        targets: canonical SMILES to test (members and non-members, any order).
        labels: True for the victim's members (owner knowledge; the attack never sees it).
        population: the attacker's molecules of the same distribution, disjoint from the targets:
            RMIA's population and the shadows' filler.
        out: the audit directory (shadows, cells, results).
        groups: per target, a group name for per-group rows: members "FAMILY r=R" are tested
            against the non-members whose group is "FAMILY" (all non-members when none is).
        shadow_dir: where the shadows and their statistics live (default `out`): victims of the
            same recipe (other seeds) tested on the same targets share them, since the shadows
            depend on neither the victim's seed nor its weights.
    """
    from molleak.attack import lira
    from molleak.victims.build import recipe_of

    out = Path(out)
    labels = np.asarray(labels, dtype=bool)
    if len(targets) != labels.size or labels.all() or not labels.any():
        raise MolleakError(f"shadow membership needs members and non-members among the targets, got "
                           f"{int(labels.sum())} members of {len(targets)}")
    unknown = [s for s in plan.statistics if s not in STATISTICS]
    if unknown:
        raise MolleakError(f"unknown membership statistic {unknown[0]!r}; choose from {', '.join(STATISTICS)}")
    overlap = set(targets) & set(population)
    if overlap:
        raise MolleakError(f"shadow membership: {len(overlap)} population molecules are also targets")
    recipe = recipe_of(victim, "shadow models")
    from molleak.models.checkpoint import read_checkpoint_file

    n_train = int(read_checkpoint_file(victim).get("provenance", {}).get("n_train") or 0)
    if n_train < 2:
        raise MolleakError(f"victim {victim} records no training-set size; shadows cannot match it")

    # --- the attacker's design: which shadow trains on what, with which seed ---------------------
    rng = np.random.default_rng([plan.seed, 0x909])
    pop = [population[i] for i in rng.permutation(len(population))]
    rmia_pop, filler = pop[: plan.n_population], pop[plan.n_population :]
    inclusion = lira.balanced_inclusion(plan.n_shadows, len(targets), plan.seed)
    seeds = shadow_seeds(plan.seed, plan.n_shadows, avoid=recipe.seed)
    train_sets = shadow_training_sets(targets, inclusion, filler, n_train, plan.seed)
    shared = Path(shadow_dir) if shadow_dir is not None else out
    design = shared / "design"
    _write_smiles(design / TARGETS_FILE, targets)
    _write_smiles(design / POPULATION_FILE, rmia_pop)
    shadow_cells = []
    for k, (train, s) in enumerate(zip(train_sets, seeds, strict=True)):
        data = _write_smiles(design / f"shadow{k}.smi", train)
        shadow_cells.append(Cell(f"shadow{k}", "victim", {
            "role": "shadow", "recipe": asdict(replace(recipe, seed=s)), "data": data,
            "out": str(shared / "models" / f"shadow{k}.pt"), "train_name": f"shadow{k}.smi",
            # not the victim's path: victims of one recipe tested on the same targets share these cells
            "extra_provenance": {"shadow_index": k}}, inputs=(data,)))
    built = run_plan(shadow_cells, shared / "cells", executor, progress=progress, what="shadows")
    models = {"victim": str(victim)} | {c.id: built.result(c.id)["path"] for c in shadow_cells}

    # --- statistics of every model on targets + population ---------------------------------------
    both = _write_smiles(design / "scored.smi", targets + rmia_pop)
    stat_params = {"molecules": both, "statistics": list(plan.statistics), "draws": plan.draws, "seed": plan.seed,
                   "n_neighbours": plan.n_neighbours}
    suffix = ""
    if plan.defence:
        from molleak.serve.defences import Defence

        Defence(**plan.defence)  # refuse bad settings before any cell runs
        suffix = "@" + "_".join(f"{k}={v}" for k, v in sorted(plan.defence.items()))

    def params_of(name: str, path: str) -> dict[str, Any]:
        if not plan.defence:
            return {"model": path, **stat_params}
        return {"model": path, **stat_params, "defence": plan.defence, "defence_secret": f"{plan.seed}:{name}"}

    stat_cells = [Cell(f"stats_{name}{suffix}", "statistics", params_of(name, path), inputs=(path, both))
                  for name, path in models.items() if name != "victim"]
    victim_cell = Cell(f"stats_victim{suffix}", "statistics", params_of("victim", str(victim)),
                       inputs=(str(victim), both))
    done = run_plan(stat_cells, shared / "cells", executor, progress=progress, what="shadow statistics")
    mine = run_plan([victim_cell], out / "cells", executor, progress=progress, what="victim statistics")
    stats = {c.id[len("stats_"):len(c.id) - len(suffix)]: load_arrays(done.result(c.id)["file"]) for c in stat_cells}
    stats["victim"] = load_arrays(mine.result(victim_cell.id)["file"])

    # --- the attacker's scores, then the owner's evaluation --------------------------------------
    n = len(targets)
    scores: dict[tuple[str, str], np.ndarray] = {}
    for statistic in plan.statistics:
        t = stats["victim"][statistic]
        sh = np.stack([stats[f"shadow{k}"][statistic] for k in range(plan.n_shadows)])
        for attack in lira.ATTACKS:
            scores[(statistic, attack)] = lira.score(attack, t[:n], sh[:, :n], inclusion, t[n:], sh[:, n:])
        scores[(statistic, "raw")] = t[:n]  # the uncalibrated statistic: what a threshold attack gets
    result = evaluate_scores(scores, labels, groups, plan)
    # the owner's ground truth and every score, beside the results (never in the attacker's design/)
    group_col = groups if groups is not None else ["all"] * n
    write_atomic(out / "labels.tsv", "smiles\tmember\tgroup\n" + "".join(
        f"{s}\t{int(m)}\t{g}\n" for s, m, g in zip(targets, labels, group_col, strict=True)))
    _save_arrays(out / "scores.npz", {f"{st}/{at}": v for (st, at), v in scores.items()})
    result.update({
        "victim": str(victim), "victim_sha256": sha256_file(victim), "recipe": asdict(recipe),
        "n_train": n_train, "n_targets": n, "n_members": int(labels.sum()), "n_population": len(rmia_pop),
        "shadow_seeds": seeds, "victim_seed_known_to_owner": recipe.seed,
        "shadow_seconds": {c.id: built.records[c.id]["seconds"] for c in shadow_cells},
        "plan": asdict(plan), "versions": package_versions(), "out": str(out)})
    write_json_atomic(out / RESULTS_FILE, result)
    return result


def _clopper_pearson_lower(k: int, n: int, alpha: float = 0.05) -> float:
    """One-sided lower confidence bound (1 - alpha) of a binomial proportion."""
    from scipy.stats import beta

    return 0.0 if k == 0 or n == 0 else float(beta.ppf(alpha, k, n - k + 1))


def roc_points(pos: np.ndarray, neg: np.ndarray, n_points: int = 200) -> dict[str, list[float]]:
    """The ROC curve on a log-spaced FPR grid (for log-log plots)."""
    grid = np.unique(np.r_[np.logspace(-4, 0, n_points), 1.0 / max(neg.size, 1)])
    neg_sorted = np.sort(neg)[::-1]
    tpr = []
    for f in grid:
        k = int(np.floor(f * neg.size))
        thr = neg_sorted[k] if k < neg.size else -np.inf
        tpr.append(float((pos > thr).mean()))
    return {"fpr": grid.tolist(), "tpr": tpr}


def evaluate_scores(scores: dict[tuple[str, str], np.ndarray], labels: np.ndarray, groups: list[str] | None,
                    plan: ShadowPlan) -> dict[str, Any]:
    """Rows per (statistic, attack[, group]): AUC and TPR at low FPR with intervals; Holm across rows."""
    from molleak.evaluate.attribution import membership_metrics
    from molleak.evaluate.metrics import auc_p_value, holm_adjust

    group_of = np.asarray(groups if groups is not None else ["all"] * labels.size, dtype=object)
    names = ["all"] + sorted({g for g, m in zip(group_of, labels, strict=True) if m and g != "all"},
                             key=_group_order)
    rows, curves = [], {}
    for (statistic, attack), s in scores.items():
        for g in names:
            sel = labels if g == "all" else labels & (group_of == g)
            family = g.split(" r=")[0]
            own = ~labels & (group_of == family)
            neg = s[own] if g != "all" and own.any() else s[~labels]
            pos = s[sel]
            m = membership_metrics(pos, neg, fprs=plan.fprs, n_boot=plan.n_boot, seed=plan.seed)
            thr = np.sort(neg[np.isfinite(neg)])[::-1][int(np.floor(plan.fprs[0] * np.isfinite(neg).sum()))]
            k = int((pos[np.isfinite(pos)] > thr).sum())
            extra = {} if g == "all" else {"above": np.flatnonzero(sel & (s > thr)).tolist()}  # target indices
            rows.append({**extra,
                "statistic": statistic, "access": access_of(statistic), "attack": attack, "group": g,
                "auc": m["auc"].as_dict(), "tpr_at_fpr": {str(f): e.as_dict() for f, e in m["tpr_at_fpr"].items()},
                "tpr_at_1pct_lower": _clopper_pearson_lower(k, int(np.isfinite(pos).sum())),
                "n_members": m["n_members"], "n_nonmembers": m["n_nonmembers"],
                "p_auc": auc_p_value(pos[np.isfinite(pos)], neg[np.isfinite(neg)]),
                "primary": attack != "raw"})
            if g == "all":
                curves[f"{statistic}/{attack}"] = roc_points(pos[np.isfinite(pos)], neg[np.isfinite(neg)])
    primary = [r for r in rows if r["primary"]]
    for r, p in zip(primary, holm_adjust([r["p_auc"] for r in primary]), strict=True):
        r["p_holm"] = p
        r["detected"] = p < 0.05
    return {"rows": rows, "roc": curves, "holm_family": len(primary), "alpha": 0.05}


def _group_order(g: str) -> tuple[int, str]:
    """Groups named like "r=4" sort by their number."""
    head, _, num = g.partition("=")
    return (int(num), head) if num.isdigit() else (10**9, g)


def headline(result: dict[str, Any], access: str, group: str = "all") -> dict[str, Any] | None:
    """The strongest row of one access level (by TPR at the first FPR, then AUC), Holm-corrected."""
    rows = [r for r in result["rows"] if r["access"] == access and r["group"] == group and r["primary"]]
    if not rows:
        return None
    first = str(result["plan"]["fprs"][0])
    return max(rows, key=lambda r: (r["tpr_at_fpr"][first]["value"], r["auc"]["value"]))


def shadow_audit(
    victim: str | Path,
    members_file: str | Path,
    nonmembers_file: str | Path,
    population_files: list[str | Path],
    out: str | Path,
    plan: ShadowPlan,
    *,
    n_targets: int = 200,
    executor: Executor | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The owner's shadow-model membership audit of a victim whose training set is known.

    `n_targets` members are drawn from `members_file` (the victim's training set) and as many
    non-members from `nonmembers_file` (same distribution, never trained on). The attacker's
    population is the union of `population_files` less every target and every molecule of the
    victim's training set (a population molecule the victim trained on would bias RMIA's
    reference ratios towards "member").
    """
    from molleak.data.smiles_io import read_smiles

    members_all = read_smiles(members_file, what="victim training set").smiles
    nonmembers_all = read_smiles(nonmembers_file, what="non-members").smiles
    trained = set(members_all)
    clash = trained & set(nonmembers_all)
    if clash:
        raise MolleakError(f"{len(clash)} molecules of {nonmembers_file} are in the victim's training set "
                           f"{members_file}: they are not non-members")
    for name, pool in (("members", members_all), ("non-members", nonmembers_all)):
        if len(set(pool)) < n_targets:
            raise MolleakError(f"shadow membership: {n_targets} {name} asked for, {len(set(pool))} available")
    rng = np.random.default_rng([plan.seed, 0x7A6])
    members = [s for s in dict.fromkeys(members_all)]
    nonmembers = [s for s in dict.fromkeys(nonmembers_all)]
    members = [members[i] for i in sorted(rng.choice(len(members), n_targets, replace=False))]
    nonmembers = [nonmembers[i] for i in sorted(rng.choice(len(nonmembers), n_targets, replace=False))]
    order = rng.permutation(2 * n_targets)
    both = members + nonmembers
    targets = [both[i] for i in order]
    labels = np.r_[np.ones(n_targets, bool), np.zeros(n_targets, bool)][order]
    exclude = trained | set(targets)
    population: list[str] = []
    dropped = 0
    for f in population_files:
        for s in read_smiles(f, what="attacker population").smiles:
            if s in exclude:
                dropped += 1
            else:
                population.append(s)
                exclude.add(s)
    if dropped:
        log.info("shadow membership: %d population molecules dropped (targets or victim training molecules)", dropped)
    result = run_shadow_membership(victim, targets, labels, population, out, plan, executor=executor,
                                   progress=progress)
    result.update({"members_file": str(members_file), "members_sha256": sha256_file(members_file),
                   "nonmembers_file": str(nonmembers_file), "population_files": [str(f) for f in population_files],
                   "population_dropped": dropped})
    write_json_atomic(Path(out) / RESULTS_FILE, result)
    return result


def format_rows(result: dict[str, Any], groups: bool = False) -> list[str]:
    """A plain-text table of a shadow audit's rows (the CLI's and BENCHMARKS' table)."""
    fprs = [str(f) for f in result["plan"]["fprs"]]
    head = (f"{'access':9s} {'statistic':10s} {'attack':12s} {'group':6s} {'AUC [95% CI]':22s} "
            + " ".join(f"{'TPR@' + f + ' FPR':20s}" for f in fprs) + " p (Holm)")
    lines = [head]
    for r in result["rows"]:
        if r["group"] != "all" and not groups:
            continue
        auc = r["auc"]
        cells = [f"{r['tpr_at_fpr'][f]['value']:.3f} [{r['tpr_at_fpr'][f]['lo']:.3f}, {r['tpr_at_fpr'][f]['hi']:.3f}]"
                 for f in fprs]
        p = f"{r['p_holm']:.2g}{' *' if r['detected'] else ''}" if "p_holm" in r else "(not tested)"
        lines.append(f"{r['access']:9s} {r['statistic']:10s} {r['attack']:12s} {r['group']:6s} "
                     f"{auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]  " + " ".join(f"{c:20s}" for c in cells)
                     + f" {p}")
    return lines


def power_from_ladder(path: str | Path, strategy: str, r: int = 1, statistic: str = "loss",
                      attack: str = "lira_offline", rung: str | None = None) -> dict[str, Any]:
    """The power of this attack for `strategy` from a `molleak power` results file (`power_sentence`'s form).

    Quotes one rung's pooled detection rate at r (default: the ladder's last rung, the least
    over-fitted in the ladder's order), names its recipe (it may be more over-fitted than the
    audited victim's: then the rate is an upper bound) and where detection starts on that rung.

    Raises:
        MolleakError: the file is unreadable or holds no row for this rung, strategy, statistic and r.
    """
    from molleak.plans.power import detection_start
    from molleak.rundir import read_json

    ladder = read_json(Path(path), "power ladder results")
    rungs = list(ladder.get("plan", {}).get("rungs", []))
    rung = rung or (rungs[-1] if rungs else None)
    rows = [row for row in ladder.get("pooled", []) if row.get("rung") == rung and row.get("strategy") == strategy
            and row.get("statistic") == statistic and row.get("attack") == attack
            and row.get("group", "").endswith(f" r={r}")]
    if not rows:
        raise MolleakError(f"power ladder {path} has no {rung} / {strategy} / {statistic} / {attack} row at r={r}")
    n = sum(row["n"] for row in rows)
    k = sum(row["detected"] for row in rows)
    recipe = ladder.get("rungs", {}).get(rung, {})
    start = {fam: detection_start(ladder["pooled"], rung, strategy, statistic, attack, fam)
             for fam in sorted({row["group"].split(" r=")[0] for row in rows})}
    starts = ", ".join(f"{fam} canaries from r={s}" if s else f"{fam} canaries at no r tested"
                       for fam, s in start.items())
    return {"r": r, "tpr_at_1pct_fpr": k / n, "n": n, "rung": rung,
            "source": f"power ladder rung '{rung}' ({recipe.get('n_private', '?')} molecules, "
                      f"{recipe.get('epochs', '?')} epochs), {len(rows[0]['auc_per_seed'])} victim seeds, "
                      f"{k}/{n} canary-seeds flagged; detected more often than chance (Holm across the ladder) "
                      f"for {starts}"}


def shadow_summary(result: dict[str, Any], strategy: str, power_ladder: str | Path | None) -> dict[str, Any]:
    """The audit's block for the shadow attack: the strongest row per access level and one verdict."""
    from molleak.evaluate.verdicts import decision

    power = power_from_ladder(power_ladder, strategy) if power_ladder else None
    first = str(result["plan"]["fprs"][0])
    parts, best = [], {}
    for access in ("white box", "black box"):
        row = headline(result, access)
        if row is None:
            continue
        best[access] = row
        parts.append(f"{access} ({row['statistic']}, {row['attack']}): AUC {row['auc']['value']:.3f} "
                     f"[{row['auc']['lo']:.3f}, {row['auc']['hi']:.3f}], TPR at 1% FPR "
                     f"{row['tpr_at_fpr'][first]['value']:.3f}")
    strongest = min(best.values(), key=lambda r: r["p_holm"]) if best else None
    verdict = ("shadow-model membership, " + f"{result['n_members']} members vs "
               f"{result['n_targets'] - result['n_members']} non-members, {result['plan']['n_shadows']} shadows: "
               + "; ".join(parts) + "; "
               + (decision(strongest["p_auc"], p_adjusted=strongest["p_holm"], family_size=result["holm_family"],
                           power=power) if strongest else "no statistic computed") + ".")
    return {"verdict": verdict, "best": best, "power": power, "file": str(Path(result.get("out", ".")))}
