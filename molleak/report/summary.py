"""The one summary of an audit, bench or run directory: the headline rows and the leakage verdicts.

The HTML report's summary section and the audit's headline table (`molleak.plans.audit`) are both
rendered from `AuditSummary`. Each row is one group of runs that differ only in their seed (same
role, victim, method, steps and pool); a group of several seeds shows their mean with the min-max
range as its interval, a single run its own interval from `results.json`.

Verdicts are read from the attribution and leakage files by the keys their writers use:
`verdict` of an `attribution_report` (`molleak.evaluate.attribution`, beside its `private_only`
test), of each label kind (`substructure`, `exact`) of `attribute_runs`, of the audit's
`one_step` / `two_step` blocks, `membership.verdict` (`molleak leakage`, the audit) and
`shadow_membership.verdict` (the audit's shadow-model attack, `molleak.plans.shadows.shadow_summary`).
Nothing else counts as a verdict, whatever its key is called.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from molleak import rundir
from molleak.report.load import AuditData, RunData, load_named_runs
from molleak.rundir import KINDS, ROLE_LABELS, Estimate, Interval, Role

DEFAULT_KS = rundir.K_LIST
#: the audit's attribution blocks per extraction depth (molleak.plans.audit)
ATTRIBUTION_STEPS = ("one_step", "two_step")
MEMBERSHIP = "membership"
SHADOW_MEMBERSHIP = "shadow_membership"
#: the controls a precision needs beside it before it can be attributed to the victim
CONTROL_ROLES = (Role.PRIOR, Role.UNTRAINED, Role.REFERENCE)
REFERENCE_BANK = "reference"  # `molleak evaluate --bank reference=...` (results.json banks.reference)


class Verdict(BaseModel):
    """One verdict sentence and where it was read."""

    source: str  # the file (relative to the report's folder) or the run that holds it
    key: str  # the known key it was read from, e.g. `one_step.substructure.verdict`
    test: str  # "private-only test" or "membership"
    text: str


class HeadlineRow(BaseModel):
    """One group of runs differing only in their seed, as the headline table shows it."""

    runs: list[str]
    role: Role
    role_label: str
    victim: str
    method: str
    steps: int
    seeds: int
    precision: dict[str, Estimate]  # precision_key(kind, k) -> value with interval
    base_rate: dict[str, float | None]  # kind -> the pool's base rate
    auc: Estimate
    reference_bank_precision: float | None = None  # substructure precision at the largest K against P'
    prior_precision: float | None = None  # the best victim-free run on the same pool, same K
    above_base_rate: bool | None = None  # the interval's low end above the base rate
    queries: int | None = None
    seconds: float | None = None

    @property
    def label(self) -> str:
        return f"{self.method}, {self.steps}-step"


class AuditSummary(BaseModel):
    """What a directory holds, in the terms of the headline: rows, missing controls, verdicts."""

    root: str
    ks: list[int]
    runs: int
    evaluated: int
    unevaluated: list[str]
    victims: list[str]
    tables: int
    rows: list[HeadlineRow]
    controls_missing: list[str]  # role labels of the controls absent from the evaluated runs
    verdicts: list[Verdict]

    @property
    def kmax(self) -> int:
        return self.ks[-1]


def group_runs(runs: Sequence[RunData]) -> list[tuple[tuple[Role, str, str, int], list[RunData]]]:
    """Runs that differ only in their seed -> [((role, victim, method, steps), runs)], victim first;
    runs over different pools are separate groups."""
    order = list(Role)
    groups: dict[tuple[Role, str, str, int, Any], list[RunData]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: (order.index(r.role), r.victim, r.method, r.steps, r.name)):
        groups[(run.role, run.victim, run.method, run.steps, run.pool_sha)].append(run)
    return [(key[:4], members) for key, members in groups.items()]


def group_estimate(runs: Sequence[RunData], key: str) -> Estimate:
    """One run's value with its own interval; several seeds' mean with their min-max range."""
    values = [v for r in runs if (v := r.metric(key)) is not None and math.isfinite(v)]
    if not values:
        return Estimate(value=None)
    if len(runs) == 1:
        return runs[0].results.estimate(key)
    if len(values) == 1:
        return Estimate(value=values[0])
    return Estimate(value=float(np.mean(values)),
                    interval=Interval(low=min(values), high=max(values), method=f"range over {len(values)} seeds"))


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _bank_precision(run: RunData, key: str) -> float | None:
    banks = run.results.value("banks") if run.results is not None else None
    value = (banks or {}).get(REFERENCE_BANK, {}).get(key) if isinstance(banks, dict) else None
    if isinstance(value, dict):
        value = value.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _queries(run: RunData) -> float | None:
    value = run.metric(rundir.QUERIES)
    return value if value is not None else (float(run.extract.queries) if run.extract is not None else None)


def _seconds(run: RunData) -> float | None:
    value = run.metric(rundir.SECONDS_TOTAL)
    return value if value is not None else (run.extract.seconds_total if run.extract is not None else None)


def headline_rows(runs: Sequence[RunData], ks: Sequence[int]) -> list[HeadlineRow]:
    """The headline rows of the evaluated runs, the controls' numbers beside each."""
    evaluated = [r for r in runs if r.evaluated]
    kmax = ks[-1]
    top = rundir.precision_key(KINDS[0], kmax)
    priors: dict[Any, list[float]] = defaultdict(list)
    for r in evaluated:
        if r.role == Role.PRIOR and (v := r.metric(top)) is not None:
            priors[r.pool_sha].append(v)
    rows = []
    for (role, victim, method, steps), members in group_runs(evaluated):
        precision = {rundir.precision_key(kind, k): group_estimate(members, rundir.precision_key(kind, k))
                     for kind in KINDS for k in ks}
        base = {kind: _mean([r.metric(rundir.base_rate_key(kind)) for r in members]) for kind in KINDS}
        p_top = precision[top]
        above = None
        if p_top.value is not None and base[KINDS[0]] is not None:
            low = p_top.interval.low if p_top.interval is not None and p_top.interval.low is not None else p_top.value
            above = low > base[KINDS[0]]
        same_pool = priors.get(members[0].pool_sha, [])
        queries = _mean([_queries(r) for r in members])
        rows.append(HeadlineRow(
            runs=[r.name for r in members], role=role, role_label=ROLE_LABELS[role], victim=victim, method=method,
            steps=steps, seeds=len(members), precision=precision, base_rate=base,
            auc=group_estimate(members, rundir.auc_key(KINDS[0])),
            reference_bank_precision=_mean([_bank_precision(r, top) for r in members]),
            prior_precision=max(same_pool) if same_pool else None, above_base_rate=above,
            queries=None if queries is None else round(queries), seconds=_mean([_seconds(r) for r in members])))
    return rows


# ---- verdicts --------------------------------------------------------------------------------
def _private_only(block: Any, key: str, source: str) -> list[Verdict]:
    """The verdict of one `attribution_report` (it sits beside the private-only test it states)."""
    if isinstance(block, Mapping) and isinstance(block.get("verdict"), str) and "private_only" in block:
        return [Verdict(source=source, key=f"{key}verdict", test="private-only test", text=block["verdict"])]
    return []


def _attribution(obj: Any, key: str, source: str) -> list[Verdict]:
    """An `attribution_report`, or `attribute_runs`'s {label kind: attribution_report}."""
    if not isinstance(obj, Mapping):
        return []
    found = _private_only(obj, key, source)
    for kind in KINDS:
        found += _private_only(obj.get(kind), f"{key}{kind}.", source)
    return found


def verdicts_of(obj: Mapping[str, Any], source: str) -> list[Verdict]:
    """The verdicts of one attribution / leakage file (or a results.json `attribution` block)."""
    found = _attribution(obj, "", source)
    for steps in ATTRIBUTION_STEPS:
        found += _attribution(obj.get(steps), f"{steps}.", source)
    membership = obj.get(MEMBERSHIP)
    if isinstance(membership, Mapping) and isinstance(membership.get("verdict"), str):
        found.append(Verdict(source=source, key=f"{MEMBERSHIP}.verdict", test="membership",
                             text=membership["verdict"]))
    shadow = obj.get(SHADOW_MEMBERSHIP)
    if isinstance(shadow, Mapping) and isinstance(shadow.get("verdict"), str):
        found.append(Verdict(source=source, key=f"{SHADOW_MEMBERSHIP}.verdict", test="shadow-model membership",
                             text=shadow["verdict"]))
    return found


def collect_verdicts(data: AuditData) -> list[Verdict]:
    """Every verdict once (an audit stores the membership verdict in two files)."""
    sources = [(r.name, r.attribution) for r in data.runs if r.attribution] + data.attribution_files
    seen: dict[str, Verdict] = {}
    for source, obj in sources:
        for verdict in verdicts_of(obj, source):
            seen.setdefault(verdict.text, verdict)
    return list(seen.values())


# ---- the summary -----------------------------------------------------------------------------
def build_summary(data: AuditData) -> AuditSummary:
    evaluated = [r for r in data.runs if r.evaluated]
    ks = sorted({k for r in evaluated for k in r.ks}) or list(DEFAULT_KS)
    roles = {r.role for r in evaluated}
    return AuditSummary(
        root=str(data.root), ks=ks, runs=len(data.runs), evaluated=len(evaluated),
        unevaluated=[r.name for r in data.runs if not r.evaluated],
        victims=sorted({r.victim for r in data.runs if r.victim != "none"}), tables=len(data.tables),
        rows=headline_rows(data.runs, ks),
        controls_missing=[ROLE_LABELS[c] for c in CONTROL_ROLES if c not in roles] if evaluated else [],
        verdicts=collect_verdicts(data))


def summarize_runs(runs: Mapping[str, str | os.PathLike],
                   attribution: Mapping[str, Any] | None = None) -> AuditSummary:
    """The summary of runs given by name -> directory (the audit's own list), with the verdicts of
    its attribution results when given."""
    from pathlib import Path

    return build_summary(AuditData(root=Path("."), runs=load_named_runs(runs), tables=[], notes=[],
                                   attribution_files=[("attribution", dict(attribution))] if attribution else []))
