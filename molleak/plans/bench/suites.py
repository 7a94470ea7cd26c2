"""Benchmark suites: each a list of table rows, each row a set of cells (one extraction run per seed).

A **cell** is one extraction run plus its evaluation: a victim (or none), the victim's role
(`victim`, its `reference` victim trained on the disjoint reference set, or its `untrained`
encoder), a method with options, the assembly steps, the auxiliary set and the seed. Its id names
its run directory, `BENCH_DIR/cells/<cell-id>/`. Cells are shared between rows and tables: the
victim-free prior of a row is the same cell for every victim.

A **row** is one line of a table: what it shows (`key`, e.g. victim, steps, method, aux set) and
its columns, each a cell spec without the seed: `attack` (the number the paper reports) and, for
victim methods, the controls `reference` and `untrained` (same method through the reference
victim and the untrained encoder), and `prior` (the victim-free fingerprint prior ranking the
same pool). Base rates come with every cell's `results.json`.

Suites (`SUITES`): `table1` (victims x {1, 2} steps: ours and every baseline), `table2`
(ablations), `table3` (runtime), `table7` (external vs in-distribution aux set), `table8` (the
regression victim), `policy` (the policy network vs random search vs budgeted enumerate-and-rank
at equal query budgets). Each is a function `(BenchConfig) -> list[Row]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from molleak.errors import MolleakError

ROLES = ("victim", "reference", "untrained")
#: the tables' control columns, in display order
CONTROL_COLUMNS = ("reference", "untrained", "prior")
DOCK_TARGETS = ("fa7", "parp1", "5ht1b")
#: the victim-free prior used as every row's `prior` control column
PRIOR_METHOD = "prior_fp"
AUX_SETS = ("aux", "aux_shifted", "aux_external")


@dataclass
class BenchConfig:
    """Everything that decides a suite's cells (written to `BENCH_DIR/config.json`).

    Defaults are sized for the `tiny` tier on a shared 2-core machine; raise them for real runs.

    Args:
        tier: MOSES tier (`molleak data prepare`); ignored when `data` is given.
        data: an existing tier directory to use instead of preparing one under BENCH_DIR/data.
        data_seed: seed of the tier's split.
        seeds: attack seeds per cell (0 .. seeds-1); victims are trained once (zoo seed 0).
        victims: zoo victims of the victim rows (table8 always uses `regression`).
        steps: assembly steps of table1, table7 and table8 rows (1: one-step, 2: two-step).
        epochs: pre-training epochs of every zoo victim (None: the zoo's defaults).
        finetune_epochs: epochs of the regression victim's fine-tune (table8).
        encoder_config: GIN size of the zoo victims.
        n_templates, n_motifs: vocabulary size mined from each aux set.
        two_step_templates: how many templates (the most frequent in the aux set) the two-step pool
            and the policy assemble on.
        k: molecules in each top-K (precision is reported at 50, 100 and 200, FCD at k).
        policy_budget: victim queries of the policy (two-step ours).
        policy_budgets: the equal query budgets of the `policy` suite's methods.
        baselines: the victim-free and victim baselines of table1.
        receptors: directory with fa7.pdbqt, parp1.pdbqt, 5ht1b.pdbqt (None: dock cells skipped).
        dock_subsample: molecules docked per dock cell (a seeded subsample of the pool).
        dock_workers: docking worker processes.
        controls: run the reference-victim and untrained-encoder control columns.
        reference_bank: also evaluate every run against the reference set P' (`banks.reference`).
        fcd: compute FCD in evaluation.
        fcd_seeds: private subsamples the random-subsample FCD is averaged over.
        fcd_max_reference: most core-containing private molecules the core FCD compares against.
        workers: worker processes for enumeration and labelling.
        victim_workers: victims (zoo victims, then reference victims) pre-trained at once, each in
            its own process with one torch thread (the same weights as a serial build on one thread).
    """

    tier: str = "tiny"
    data: str | None = None
    data_seed: int = 0
    seeds: int = 1
    victims: list[str] = field(default_factory=lambda: ["attrmask"])
    steps: list[int] = field(default_factory=lambda: [1, 2])
    epochs: int | None = 1
    finetune_epochs: int = 3
    encoder_config: dict[str, Any] = field(default_factory=lambda: {"num_layers": 2, "emb_dim": 32})
    n_templates: int = 30
    n_motifs: int = 30
    two_step_templates: int = 2
    k: int = 200
    policy_budget: int = 1500
    policy_budgets: list[int] = field(default_factory=lambda: [500, 1500])
    baselines: list[str] = field(default_factory=lambda: ["random", "qed", "sa", "mlp", "prior_freq", "prior_fp",
                                                          "dock"])
    receptors: str | None = None
    dock_subsample: int = 30
    dock_workers: int = 1
    controls: bool = True
    reference_bank: bool = True
    fcd: bool = True
    fcd_seeds: int = 5
    fcd_max_reference: int = 5000
    workers: int | None = 1
    victim_workers: int = 1

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BenchConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MolleakError(f"unknown bench setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CellSpec:
    """One extraction run, less its seed."""

    method: str
    steps: int
    victim: str | None = None
    role: str = "victim"
    aux: str = "aux"
    options: tuple[tuple[str, Any], ...] = ()
    budget: int | None = None
    tag: str = ""  # distinguishes cells whose options differ (e.g. the dock target)

    def __post_init__(self) -> None:
        if self.steps not in (1, 2):
            raise MolleakError(f"bench cells assemble one or two steps, not {self.steps}")

    def cell_id(self, seed: int) -> str:
        who = "nov" if self.victim is None else f"{self.victim}.{self.role}"
        tag = f".{self.tag}" if self.tag else ""
        return f"{who}-s{self.steps}-{self.method}{tag}-{self.aux}-seed{seed}"

    def with_role(self, role: str) -> CellSpec:
        return CellSpec(self.method, self.steps, self.victim, role, self.aux, self.options, self.budget, self.tag)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = dict(self.options)
        return d


@dataclass
class Row:
    """One line of a table: what it is (`key`) and its columns (`attack` plus controls)."""

    table: str
    key: dict[str, Any]
    columns: dict[str, CellSpec]


def _ours(steps: int, config: BenchConfig) -> tuple[str, int | None]:
    """Our method at this many steps: the adapter ranking (one step) or the policy (two steps)."""
    return ("adapter", None) if steps == 1 else ("policy", config.policy_budget)


def _uses_victim(method: str) -> bool:
    from molleak.attack.methods import method_uses_victim

    return method_uses_victim(method)


def victim_row(table: str, key: dict[str, Any], spec: CellSpec, config: BenchConfig) -> Row:
    """A row for `spec` with every control column that applies to it."""
    columns = {"attack": spec}
    if spec.victim is not None and _uses_victim(spec.method) and config.controls:
        columns["reference"] = spec.with_role("reference")
        columns["untrained"] = spec.with_role("untrained")
    columns["prior"] = CellSpec(PRIOR_METHOD, spec.steps, aux=spec.aux)
    return Row(table, key, columns)


def _baseline_specs(steps: int, config: BenchConfig, victim: str) -> list[tuple[str, CellSpec]]:
    out = []
    for name in config.baselines:
        if name == "dock":
            for target in DOCK_TARGETS:
                opts = (("target", target), ("receptor_dir", config.receptors or ""),
                        ("subsample", config.dock_subsample), ("workers", config.dock_workers))
                out.append((f"dock-{target}", CellSpec("dock", steps, options=opts, tag=target)))
        elif _uses_victim(name):
            out.append((name, CellSpec(name, steps, victim)))
        else:
            out.append((name, CellSpec(name, steps)))
    return out


def table1(config: BenchConfig) -> list[Row]:
    """Every victim x {one, two} steps: ours and every baseline, with controls."""
    rows = []
    for steps in config.steps:
        method, budget = _ours(steps, config)
        for victim in config.victims:
            rows.append(victim_row("table1", {"victim": victim, "steps": steps, "method": f"ours ({method})"},
                                   CellSpec(method, steps, victim, budget=budget), config))
            for label, spec in _baseline_specs(steps, config, victim):
                if spec.victim is not None:
                    rows.append(victim_row("table1", {"victim": victim, "steps": steps, "method": label}, spec,
                                           config))
        for label, spec in _baseline_specs(steps, config, config.victims[0] if config.victims else ""):
            if spec.victim is None:
                rows.append(victim_row("table1", {"victim": "(none)", "steps": steps, "method": label}, spec, config))
    return rows


def table2(config: BenchConfig) -> list[Row]:
    """Ablations at two steps: without the policy, SA in place of the score, without the adapter, shifted aux."""
    rows = []
    budget = config.policy_budget
    for victim in config.victims:
        variants = [
            ("full (policy)", CellSpec("policy", 2, victim, budget=budget)),
            ("w/o policy (enumerate + adapter)", CellSpec("adapter", 2, victim)),
            ("w/o adapter (enumerate + eq1)", CellSpec("eq1", 2, victim)),
            ("SA in place of the score (enumerate + sa)", CellSpec("sa", 2)),
            ("shifted aux (policy, aux_shifted)", CellSpec("policy", 2, victim, aux="aux_shifted", budget=budget)),
        ]
        for label, spec in variants:
            rows.append(victim_row("table2", {"victim": victim, "variant": label}, spec, config))
    return rows


def table3(config: BenchConfig) -> list[Row]:
    """Runtime of 200 two-step molecules: score time vs total, for qed, sa, mlp and ours (first victim)."""
    if not config.victims:
        raise MolleakError("table3 needs a victim: pass --victims")
    victim = config.victims[0]
    specs = [("qed", CellSpec("qed", 2)), ("sa", CellSpec("sa", 2)), ("mlp", CellSpec("mlp", 2, victim)),
             ("ours (policy)", CellSpec("policy", 2, victim, budget=config.policy_budget))]
    return [Row("table3", {"victim": victim if s.victim else "(none)", "method": label}, {"attack": s})
            for label, s in specs]


def table7(config: BenchConfig) -> list[Row]:
    """The external (non-ZINC) auxiliary set against the in-distribution one, for ours."""
    rows = []
    for steps in config.steps:
        method, budget = _ours(steps, config)
        for victim in config.victims:
            for aux in ("aux", "aux_external"):
                rows.append(victim_row("table7", {"victim": victim, "steps": steps, "method": f"ours ({method})",
                                                  "aux": aux},
                                       CellSpec(method, steps, victim, aux=aux, budget=budget), config))
    return rows


def table8(config: BenchConfig) -> list[Row]:
    """The fine-tuned regression victim: mlp against ours, one and two steps."""
    rows = []
    for steps in config.steps:
        method, budget = _ours(steps, config)
        for label, spec in ((f"ours ({method})", CellSpec(method, steps, "regression", budget=budget)),
                            ("mlp", CellSpec("mlp", steps, "regression"))):
            rows.append(victim_row("table8", {"victim": "regression", "steps": steps, "method": label}, spec, config))
    return rows


#: the budgeted two-step methods the `policy` suite compares at equal victim-query budgets
BUDGETED_METHODS = ("policy", "random-search", "adapter-budget")


def policy(config: BenchConfig) -> list[Row]:
    """The policy network against random search and budgeted enumerate-and-rank at the same query
    budgets (`policy_budgets`), plus the unrestricted enumerate-and-rank, per victim (two steps)."""
    rows = []
    for victim in config.victims:
        for budget in config.policy_budgets:
            for method in BUDGETED_METHODS:
                rows.append(victim_row("policy", {"victim": victim, "budget": budget, "method": method},
                                       CellSpec(method, 2, victim, budget=budget), config))
        rows.append(victim_row("policy", {"victim": victim, "budget": "whole pool", "method": "adapter"},
                               CellSpec("adapter", 2, victim), config))
    return rows


SUITES: dict[str, Callable[[BenchConfig], list[Row]]] = {
    "table1": table1, "table2": table2, "table3": table3, "table7": table7, "table8": table8, "policy": policy,
}


def suite_rows(name: str, config: BenchConfig) -> list[Row]:
    """The rows of a named suite (`all` = every suite)."""
    if name == "all":
        return [row for fn in SUITES.values() for row in fn(config)]
    try:
        return SUITES[name](config)
    except KeyError:
        raise MolleakError(f"unknown suite {name!r}; choose from {', '.join([*SUITES, 'all'])}") from None
