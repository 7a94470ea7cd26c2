"""The report's defence section: the privacy-utility curve of `molleak defences` (`defences.json`).

One figure (attack AUC against the encoder's probe utility, a point per defence level, the DP levels
and the output-noise levels as two lines, random initialisation's utility as a dashed vertical
line), one table (per level: the primary attack's AUC and TPR at 1% FPR over victim seeds, how many
victims are detected after Holm across the curve, utility, the accountant's epsilon and the one-run
empirical lower bound), and the cheapest setting that removes the detected leakage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from molleak.report.markup import esc, missing


def _utility_cell(u: Mapping[str, float], n: int) -> str:
    return f"{u['mean']:.3f}" if n < 2 else f"{u['mean']:.3f} [{u['min']:.3f}, {u['max']:.3f}]"


def _primary(level: Mapping[str, Any], access: str | None = None) -> tuple[str, Mapping[str, Any]] | None:
    """The level's headline attack: white box for DP levels, the stronger black-box one for output levels
    (or for `access` = "black box")."""
    attacks = level.get("attack") or {}
    if level.get("defence") == "dp" and access != "black box":
        white = [(k, a) for k, a in attacks.items() if k.startswith("white box")]
        if white:
            return white[0]
    black = [(k, a) for k, a in attacks.items() if k.startswith("black box")]
    return max(black, key=lambda ka: float(np.mean(ka[1]["auc"]))) if black else None


def curve_svg(summary: Mapping[str, Any]) -> str:
    from molleak.report.plots import _COLOURS, _pyplot, figure_svg

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for i, (kind, name) in enumerate((("dp", "DP-SGD (epsilon)"), ("output", "output noise (x RMS)"))):
        pts = []
        for lv in summary["levels"]:
            start = kind == "output" and lv["level"] == "eps=inf"  # the output line starts undefended
            if lv["defence"] != kind and not start:
                continue
            head = _primary(lv, "black box" if kind == "output" else None)
            if head is None:
                continue
            detected = lv["detected_by_access"]["black box"] if kind == "output" else lv["detected"]
            pts.append((lv["utility_mean"], float(np.mean(head[1]["auc"])), lv["level"], detected))
        if not pts:
            continue
        colour = _COLOURS[i]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", color=colour, label=name, linewidth=1.3, markersize=4)
        for x, y, label, detected in pts:
            ax.annotate(label + (" *" if detected else ""), (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, color=colour)
    floor = summary.get("random_init_utility_mean")
    if floor is not None:
        ax.axvline(floor, linestyle="--", color="#7f7f7f", linewidth=1, label="random-init encoder")
    ax.axhline(0.5, linestyle=":", color="#7f7f7f", linewidth=1)
    ax.set_xlabel("utility: linear-probe score, mean over properties")
    ax.set_ylabel("attack AUC (DP: white box; output: black box)")
    ax.set_title("privacy against utility (* = detected after Holm)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure_svg(fig)


def defences_section(files: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    from molleak.plans.defences import mean_range  # the curve's own formatting, here as in its text table

    if not files:
        return missing("No defence curve (`molleak defences`, defences.json) in this directory.")
    parts = []
    for rel, res in files:
        summary = res.get("summary")
        if not isinstance(summary, Mapping) or not summary.get("levels"):
            parts.append(missing(f"{rel} holds no summary of levels; rerun `molleak defences`."))
            continue
        targets = list(summary["levels"][0]["utility"])
        head = ("<tr><th>level</th><th>primary attack</th><th>AUC</th><th>TPR at 1% FPR</th><th>detected</th>"
                + "".join(f"<th>{esc(t)}</th>" for t in targets)
                + "<th>epsilon (accountant)</th><th>empirical epsilon lower bound</th></tr>")
        rows = []
        for lv in summary["levels"]:
            primary = _primary(lv)
            name, attack = primary if primary else ("-", {"auc": [], "tpr_at_1pct": []})
            spent = [e for e in lv.get("epsilon_spent", []) if e is not None]
            bound = lv.get("empirical_epsilon") or []
            rows.append(
                f"<tr><td>{esc(lv['level'])}</td><td>{esc(name)}</td><td>{esc(mean_range(attack['auc']))}</td>"
                f"<td>{esc(mean_range(attack['tpr_at_1pct']))}</td><td>{lv['detected_seeds']}/{lv['n_seeds']}</td>"
                + "".join(f"<td>{_utility_cell(lv['utility'][t], lv['n_seeds'])}</td>" for t in targets)
                + f"<td>{esc(f'{max(spent):.3g}') if spent else ('&infin;' if lv['defence'] == 'dp' else '-')}</td>"
                f"<td>{esc(f'{max(bound):.3f}') if bound else '-'}</td></tr>")
        fixes = "".join(f"<li>{esc(kind)}: <b>{esc(fix.get('level') or 'none')}</b> ({esc(fix.get('why', ''))})</li>"
                        for kind, fix in summary.get("cheapest", {}).items())
        plan = res.get("plan", {})
        floor = summary.get("random_init_utility_mean")
        parts.append(
            f"<h3>{esc(rel)}</h3><figure>{curve_svg(summary)}<figcaption>Each point is a defence level: the "
            f"primary membership attack's AUC (mean over {len(plan.get('victim_seeds', []))} victim seeds) against "
            f"the linear-probe utility of the (defended) embeddings. "
            + (f"Random initialisation scores {floor:.3f}. " if floor is not None else "")
            + "</figcaption></figure>"
            f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
            f"<p>Detection: one-sided Mann-Whitney test of AUC &gt; 0.5 per victim and primary attack, Holm across "
            f"the curve's {summary.get('holm_family', '?')} tests; a level is detected when any of its victims is. "
            f"Below 5 seeds the table gives the mean, the range and n. The empirical lower bound is a one-run "
            f"audit (Steinke et al. 2023) at 95% confidence; a bound above the accountant's epsilon would mean the "
            f"training is not as private as accounted.</p>"
            f"<p>Cheapest setting that removes the detected leakage:</p><ul>{fixes}</ul>")
    return "\n".join(parts)
