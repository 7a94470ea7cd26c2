"""Figures of the audit report as inline SVG text (matplotlib, Agg backend, text kept as text).

Each function takes plain data and returns one `<svg>` element as a string, ready to paste into an
HTML page: no external files, no fonts to fetch. Element ids are prefixed per figure so that many
figures can share one page without their clip paths colliding.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_FIGURE_COUNTER = itertools.count(1)
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
            "#7f7f7f", "#bcbd22")


@dataclass
class Series:
    """One line of a figure: x, y, an optional 95% band, and whether it is a control (drawn dashed)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    lo: Sequence[float] | None = None
    hi: Sequence[float] | None = None
    control: bool = False
    markers: bool = True
    extra: dict[str, float] = field(default_factory=dict)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10,
                                "legend.fontsize": 7.5, "svg.hashsalt": "molleak"})
    import matplotlib.pyplot as plt

    return plt


def figure_svg(fig) -> str:
    """Serialise a matplotlib figure to an `<svg>` element with figure-unique ids; closes the figure."""
    plt = _pyplot()
    buf = io.StringIO()
    try:
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)  # creation date, licence URLs
    prefix = f"f{next(_FIGURE_COUNTER)}-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    text = re.sub(r'xlink:href="#([^"]+)"', lambda m: f'xlink:href="#{prefix}{m.group(1)}"', text)
    return text


def _draw_series(ax, series: Sequence[Series]) -> None:
    for i, s in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        x, y = np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float)
        ax.plot(x, y, linestyle="--" if s.control else "-", marker="o" if s.markers else None, markersize=3,
                color=colour, label=s.label, linewidth=1.3)
        if s.lo is not None and s.hi is not None:
            ax.fill_between(x, np.asarray(s.lo, dtype=float), np.asarray(s.hi, dtype=float), color=colour,
                            alpha=0.15, linewidth=0)


def precision_figure(panels: Mapping[str, tuple[Sequence[Series], float | None]], title: str) -> str:
    """precision@K against K, one panel per label kind, each with its base rate as a grey line.

    Args:
        panels: kind (e.g. "substructure") -> (series, base rate of the pool or None).
        title: the figure title (the victim).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.4), squeeze=False, layout="constrained")
    for ax, (kind, (series, base)) in zip(axes[0], panels.items(), strict=True):
        _draw_series(ax, series)
        if base is not None and np.isfinite(base):
            ax.axhline(base, color="#555555", linestyle=":", linewidth=1.2, label=f"base rate {base:.3f}")
        ax.set_xlabel("K (top-K extracted molecules)")
        ax.set_ylabel(f"precision@K ({kind})")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"{kind} hits")
        ax.legend(loc="best")
    fig.suptitle(title)
    return figure_svg(fig)


def histogram_figure(groups: Mapping[str, Sequence[float]], title: str, xlabel: str,
                     bins: int = 20, value_range: tuple[float, float] | None = (0.0, 1.0)) -> str:
    """Overlaid density histograms (e.g. the learned alpha of the whole pool and of the top-K)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.3), layout="constrained")
    for i, (label, values) in enumerate(groups.items()):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        ax.hist(v, bins=bins, range=value_range, density=True, alpha=0.45, color=_COLOURS[i % len(_COLOURS)],
                label=f"{label} (n={v.size}, median {np.median(v):.2f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(title)
    return figure_svg(fig)


def roc_figure(series: Sequence[Series], title: str, min_fpr: float, *, log_tpr: bool = False,
               mark_fpr: float | None = None) -> str:
    """ROC curves with the FPR axis log-scaled (low-FPR behaviour is what matters), chance as y = x.

    Args:
        log_tpr: log-scale the TPR axis too (log-log ROC, as membership attacks are read), from
            `min_fpr` to 1; a TPR below it is drawn on the axis floor.
        mark_fpr: an FPR to mark with a vertical line (e.g. 0.01, where the headline TPR is read).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8), layout="constrained")
    lo = max(min_fpr, 1e-6)
    for i, s in enumerate(series):
        x, y = np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float)
        keep = x >= lo
        # the curve enters the plotted range at FPR = lo with the TPR reached there
        x_plot = np.r_[lo, x[keep]]
        y_plot = np.r_[y[~keep].max() if (~keep).any() else 0.0, y[keep]]
        if log_tpr:
            y_plot = np.clip(y_plot, lo, 1.0)
        ax.step(x_plot, y_plot, where="post", color=_COLOURS[i % len(_COLOURS)],
                linestyle="--" if s.control else "-", label=s.label, linewidth=1.3)
    grid = np.logspace(np.log10(lo), 0, 50)
    ax.plot(grid, grid, color="#555555", linestyle=":", linewidth=1.0, label="chance")
    if mark_fpr is not None and lo * 1.05 < mark_fpr < 1:
        ax.axvline(mark_fpr, color="#999999", linestyle="-.", linewidth=0.8, label=f"FPR {mark_fpr:g}")
    ax.set_xscale("log")
    ax.set_xlim(lo, 1.0)
    if log_tpr:
        ax.set_yscale("log")
        ax.set_ylim(lo, 1.05)
        ax.set_ylabel("true positive rate (log scale)")
    else:
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("true positive rate")
    ax.set_xlabel("false positive rate (log scale)")
    ax.grid(alpha=0.3, which="both")
    # on log-log axes the curves run above the diagonal: the lower right is free
    ax.legend(loc="lower right" if log_tpr else "upper left")
    ax.set_title(title)
    return figure_svg(fig)


def curve_figure(panels: Mapping[str, Sequence[Series]], xlabel: str, title: str) -> str:
    """One small panel per quantity against a shared x, one line per run (e.g. policy vs random search)."""
    plt = _pyplot()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.1), squeeze=False, layout="constrained")
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for i, s in enumerate(series):
            ax.plot(np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float), color=_COLOURS[i % len(_COLOURS)],
                    linestyle="--" if s.control else "-", linewidth=1.3, label=s.label)
        ax.set_xlabel(xlabel)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle(title)
    return figure_svg(fig)
