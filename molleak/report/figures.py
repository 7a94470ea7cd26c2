"""The figure sections of the report: precision@K, learned alpha, ROC and the search's learning curve.

Each function takes the loaded data (`molleak.report.load`) and returns the section's HTML, or a
`missing` paragraph saying what would be needed to draw it. Figures are inline SVG
(`molleak.report.plots`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from molleak import rundir
from molleak.report.load import AuditData, RunData
from molleak.report.markup import esc, missing, table
from molleak.report.plots import Series
from molleak.report.summary import group_runs
from molleak.rundir import KINDS, Role

MAX_FIGURES = 16
MAX_SERIES = 10


def precision_series(run: RunData, kind: str, label: str) -> tuple[Series | None, float | None]:
    """(Series, base rate) of one run: the full curve from whole-pool labels, else results.json's points."""
    from molleak.evaluate.metrics import wilson_interval
    from molleak.ranking import rank_order

    if kind in run.labels and run.scores.size:
        order = rank_order(run.scores, run.seed)
        ranked = run.labels[kind][order][: max([run.k, *run.ks])]
        hits = np.cumsum(ranked)
        ks = np.arange(1, len(ranked) + 1)
        bounds = np.array([wilson_interval(int(h), int(k)) for h, k in zip(hits, ks, strict=True)])
        scored = np.isfinite(run.scores)
        base = float(run.labels[kind][scored].mean()) if scored.any() else None
        return Series(label, ks, hits / ks, bounds[:, 0], bounds[:, 1], control=run.is_control, markers=False), base
    points = [(k, run.results.estimate(rundir.precision_key(kind, k))) for k in run.ks] if run.results else []
    points = [(k, e) for k, e in points if e.value is not None]
    if not points:
        return None, None
    lo = [e.interval.low if e.interval and e.interval.low is not None else math.nan for _, e in points]
    hi = [e.interval.high if e.interval and e.interval.high is not None else math.nan for _, e in points]
    return (Series(label, [k for k, _ in points], [e.value for _, e in points], lo, hi, control=run.is_control),
            run.metric(rundir.base_rate_key(kind)))


def victim_panels(data: AuditData) -> dict[str, list[RunData]]:
    """victim -> its runs plus the victim-free runs over the same pool (drawn beside it as controls)."""
    victims: dict[str, list[RunData]] = defaultdict(list)
    free = [r for r in data.runs if r.victim == "none"]
    audited = {r.victim for r in data.runs if r.role == Role.VICTIM and r.victim != "none"}
    for run in data.runs:
        if run.victim == "none":
            continue
        # with one audited victim, its control victims' runs are drawn beside it rather than apart
        if len(audited) == 1 and run.role in (Role.REFERENCE, Role.UNTRAINED):
            victims[next(iter(audited))].append(run)
        else:
            victims[run.victim].append(run)
    for runs in victims.values():
        pools = {r.pool_sha for r in runs}
        runs.extend(r for r in free if r.pool_sha in pools or r.pool_sha is None or None in pools)
    if free and not victims:
        victims["victim-free runs"] = free
    return victims


def panel_groups(runs: Sequence[RunData]) -> list[tuple[str, list[RunData]]]:
    """The runs of one figure grouped by what they are (role, method, steps), seeds together."""
    return [(members[0].label if role == Role.VICTIM else f"{members[0].label} [{members[0].role_label}]", members)
            for (role, _victim, _method, _steps), members in group_runs(runs)]


def _group_series(runs: Sequence[RunData], kind: str, label: str) -> tuple[Series | None, float | None]:
    """One series per group: a single run as it is, several seeds as their mean with a min-max band."""
    per = [(s, b) for s, b in (precision_series(r, kind, label) for r in runs) if s is not None]
    if not per:
        return None, None
    bases = [b for _, b in per if b is not None]
    base = float(np.mean(bases)) if bases else None
    if len(per) == 1:
        return per[0][0], base
    xs = sorted(set.intersection(*({int(x) for x in s.x} for s, _ in per)))
    if not xs:
        return per[0][0], base
    ys = np.array([[dict(zip((int(x) for x in s.x), s.y, strict=True))[k] for k in xs] for s, _ in per], dtype=float)
    return Series(f"{label} (mean of {len(per)} seeds, band min-max)", xs, ys.mean(axis=0), ys.min(axis=0),
                  ys.max(axis=0), control=per[0][0].control, markers=per[0][0].markers), base


def _precision_panels(runs: Sequence[RunData]) -> tuple[dict[str, tuple[list[Series], float | None]], int]:
    """The precision@K panels of one victim's figure (kind -> (series, shared base rate)) and how
    many series were left out."""
    groups = panel_groups(runs)
    # one base-rate line when every run ranks the same pool; otherwise each line names its own
    one_pool = len({r.pool_sha for r in runs}) == 1
    panels, dropped = {}, 0
    for kind in KINDS:
        series, bases = [], []
        for label, members in groups:
            s, base = _group_series(members, kind, label)
            if s is None:
                continue
            series.append(s)
            if base is not None:
                bases.append(base)
                if not one_pool:
                    s.label += f" (base rate {base:.3f})"
        if series:
            dropped = max(dropped, len(series) - MAX_SERIES)
            panels[kind] = (series[:MAX_SERIES], float(np.mean(bases)) if bases and one_pool else None)
    return panels, dropped


def precision_figure_html(victim: str, runs: Sequence[RunData]) -> tuple[str | None, int]:
    """One victim's precision@K figure with its caption (None when no run of it has a precision) and
    how many series it leaves out."""
    from molleak.report.plots import precision_figure

    panels, dropped = _precision_panels(runs)
    if not panels:
        return None, 0
    return (f"<figure>{precision_figure(panels, f'victim: {victim}')}"
            f"<figcaption>precision@K of every method on victim {esc(victim)}; dashed lines are "
            f"controls, the dotted grey line the pool's base rate; bands are 95% Wilson intervals "
            f"(one run) or the range over seeds.</figcaption></figure>"), dropped


def precision_section(data: AuditData) -> str:
    parts, n_fig, dropped = [], 0, 0
    for victim, runs in victim_panels(data).items():
        if n_fig >= MAX_FIGURES:
            if _precision_panels(runs)[0]:
                parts.append(missing(f"More victims than {MAX_FIGURES} figures; the rest are in the tables."))
                break
            continue
        figure, left_out = precision_figure_html(victim, runs)
        if figure is None:
            continue
        parts.append(figure)
        dropped = max(dropped, left_out)
        n_fig += 1
    if not parts:
        return missing("No evaluated runs: precision@K needs results.json (run `molleak evaluate`).")
    if dropped:
        parts.append(missing(f"Figures show at most {MAX_SERIES} methods each; {dropped} more are only in the tables."))
    if not any(r.labels for r in data.runs):
        parts.append(missing("Curves are drawn only at the K the evaluation reported: no per-molecule labels were "
                             "written (pass --private to label the pools here)."))
    return "\n".join(parts)


def _parse_alpha(values: Iterable[str]) -> list[float]:
    """scores.tsv's alpha column: one value, or `;`-separated values per step; empty when none."""
    out = []
    for text in values:
        for part in str(text).split(";"):
            try:
                v = float(part)
            except ValueError:
                continue
            if math.isfinite(v):
                out.append(v)
    return out


def alpha_section(data: AuditData) -> str:
    """Fig. 3 of the paper: the learned alpha per victim, whole pool against top-K, seeds pooled."""
    from molleak.ranking import rank_order
    from molleak.report.plots import histogram_figure

    parts, n_groups = [], 0
    for (_role, victim, _method, _steps), runs in group_runs(data.runs):
        pool_alpha, top_alpha = [], []
        for run in runs:
            pool_alpha += _parse_alpha(run.alpha)
            if run.alpha and run.scores.size == len(run.alpha):
                top_alpha += _parse_alpha(run.alpha[i] for i in rank_order(run.scores, run.seed)[: run.k])
        if not pool_alpha:
            continue
        n_groups += 1
        if n_groups > MAX_FIGURES:
            continue
        role = runs[0].role_label
        seeds = f", {len(runs)} seeds pooled" if len(runs) > 1 else ""
        groups = {"whole pool": pool_alpha, f"top-{runs[0].k}": top_alpha}
        value_range = (0.0, 1.0) if min(pool_alpha) >= 0 and max(pool_alpha) <= 1 else None
        fig = histogram_figure(groups, f"victim {victim} [{role}]: {runs[0].label}{seeds}", "learned alpha",
                               value_range=value_range)
        parts.append(f"<figure>{fig}<figcaption>Distribution of alpha (the template/motif mix of the score) "
                     f"for victim {esc(victim)} ({esc(role)}), method {esc(runs[0].method)}: whole pool and "
                     f"top-K.</figcaption></figure>")
    if not parts:
        return missing("No run recorded alpha values (scores.tsv alpha column): only the adapter and eq1 scores "
                       "have one.")
    if n_groups > MAX_FIGURES:
        parts.append(missing(f"{n_groups - MAX_FIGURES} more alpha distributions are left out."))
    return "\n".join(parts)


def roc_section(data: AuditData) -> str:
    """ROC curves over the whole pool where labels exist; else results.json's summary points."""
    from sklearn.metrics import roc_curve

    from molleak.report.plots import roc_figure

    parts = []
    for victim, runs in victim_panels(data).items():
        series, min_fpr = [], 1.0
        for label, members in panel_groups(runs):
            run = next((r for r in members if KINDS[0] in r.labels), None)
            if run is None:
                continue
            lab, ok = run.labels[KINDS[0]], np.isfinite(run.scores)
            if lab[ok].all() or not lab[ok].any():
                continue
            fpr, tpr, _ = roc_curve(lab[ok], run.scores[ok])
            auc = float(np.trapezoid(tpr, fpr))
            min_fpr = min(min_fpr, 1.0 / max(1, int((~lab[ok]).sum())))
            seed = f" (seed {run.seed} of {len(members)})" if len(members) > 1 else ""
            series.append(Series(f"{label}{seed} AUC {auc:.3f}", fpr, tpr, control=run.is_control))
        if series:
            parts.append(f"<figure>{roc_figure(series[:MAX_SERIES], f'victim: {victim} (substructure labels)', min_fpr)}"
                         f"<figcaption>ROC of each score over the whole pool, FPR on a log axis from 1/negatives."
                         f"</figcaption></figure>")
        if len(parts) >= MAX_FIGURES:
            break
    if parts:
        return "\n".join(parts)
    evaluated = [r for r in data.runs if r.evaluated]
    if not evaluated:
        return missing("No evaluated runs: ROC curves need results.json and per-molecule labels.")
    keys = (rundir.auc_key(KINDS[0]), rundir.tpr_key("1%"), rundir.tpr_key("0.1%"))
    rows = [[r.name, r.label, *(rundir.format_estimate(r.metric(key)) for key in keys)] for r in evaluated]
    return (missing("ROC curves need per-molecule labels of the pool, which the evaluation did not write "
                    "(pass --private to label the pools here). The summary points from results.json:")
            + table(["run", "method", "AUC", "TPR@1%FPR", "TPR@0.1%FPR"], rows, "roc-points"))


def learning_curve_section(data: AuditData) -> str:
    """Per victim, the search curves (`curve.tsv`) of every run that wrote one, against victim queries."""
    from molleak.report.plots import curve_figure

    by_victim: dict[str, list[RunData]] = defaultdict(list)
    for run in data.runs:
        if run.curve is not None:
            by_victim[run.victim].append(run)
    parts = []
    for victim, runs in list(by_victim.items())[:MAX_FIGURES]:
        panels: dict[str, list[Series]] = defaultdict(list)
        x_names = set()
        for run in runs:
            header, rows = run.curve.columns, run.curve.rows
            arr = np.array(rows, dtype=float).reshape(len(rows), len(header))
            x_name = next((h for h in ("queries", "episodes", "update") if h in header), header[0])
            x_names.add(x_name)
            xi = header.index(x_name)
            label = f"{run.label} seed {run.seed}" if len(runs) > 1 else run.label
            for j, h in enumerate(header):
                finite = arr[np.isfinite(arr[:, j]), j]
                # constant columns (a fixed coefficient, no failures) say nothing per query
                if j != xi and h not in ("update", "episodes") and finite.size and np.ptp(finite) > 0:
                    panels[h].append(Series(label, arr[:, xi], arr[:, j], control=run.method != "policy"))
        if not panels:
            continue
        # the reward first, then the archive: what the policy learns, then what it finds
        order = sorted(panels, key=lambda h: (0 if "reward" in h else 1 if h.endswith("_mean") else 2))
        fig = curve_figure({h: panels[h] for h in order[:4]}, " / ".join(sorted(x_names)), f"victim: {victim}")
        files = ", ".join(f"{r.name}/{rundir.CURVE_FILE}" for r in runs)
        parts.append(f"<figure>{fig}<figcaption>Search curves against victim queries ({esc(files)}): the "
                     f"policy solid, other searches (random search) dashed.</figcaption></figure>")
    if not parts:
        has_policy = any(r.method == "policy" for r in data.runs)
        return missing(f"A policy run is present but wrote no {rundir.CURVE_FILE}." if has_policy else
                       "No policy run (`molleak extract --method policy`) in this directory: no learning curve.")
    return "\n".join(parts)
