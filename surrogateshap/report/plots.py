"""PNG plots of an attribution document, drawn with matplotlib's object API (no pyplot state).

Every function returns a :class:`matplotlib.figure.Figure` attached to an Agg canvas;
:func:`figure_png` turns one into PNG bytes for :func:`surrogateshap.io.atomic_write_bytes`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

ROLE_COLORS: dict[str, str] = {
    "clean": "#4c72b0",
    "corrupted": "#dd8452",
    "marker": "#c44e52",
}
DEFAULT_COLOR = "#8c8c8c"
_EXTRA_COLORS = ["#55a868", "#8172b3", "#937860", "#da8bc3", "#ccb974", "#64b5cd"]
MAX_TICK_LABELS = 60


def slug(name: str) -> str:
    """A file-name-safe version of a utility name (``"fid/inception"`` -> ``"fid_inception"``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return cleaned or "utility"


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """Render ``fig`` to PNG bytes (Agg), without touching pyplot."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def role_colors(roles: Sequence[str | None]) -> dict[str | None, str]:
    """A colour per role: fixed ones for clean/corrupted/marker, then a palette; grey for no role."""
    colors: dict[str | None, str] = {}
    extra = iter(_EXTRA_COLORS * (1 + len(roles) // len(_EXTRA_COLORS)))
    for role in roles:
        if role in colors:
            continue
        if role is None:
            colors[role] = DEFAULT_COLOR
        else:
            colors[role] = ROLE_COLORS.get(role) or next(extra)
    return colors


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


#: up to this many contributors every one gets its own bar and heatmap row; beyond, the ``TOP_K`` largest and
#: smallest values are drawn and the rest summarised by their distribution
ALL_SHOWN_UP_TO = 40
TOP_K = 15


def shown_contributors(values: np.ndarray) -> np.ndarray:
    """Indices drawn, in ascending order of value: all of them, or the ``TOP_K`` smallest and largest.

    >>> shown_contributors(np.array([3.0, 1.0, 2.0])).tolist()
    [1, 2, 0]
    """
    order = np.argsort(np.nan_to_num(values, nan=-np.inf), kind="stable")
    if values.size <= ALL_SHOWN_UP_TO:
        return order
    return np.concatenate([order[:TOP_K], order[-TOP_K:]])


def values_figure(doc: Mapping[str, Any], utility: str) -> Figure:
    """Horizontal bars of one utility's values (largest on top), std error bars, coloured by role.

    Beyond ``ALL_SHOWN_UP_TO`` contributors: the ``TOP_K`` largest and smallest values as bars, with
    a histogram of every value (stacked by role) beside them; the CSV holds them all.
    """
    contributors = doc["contributors"]
    util = doc["utilities"][utility]
    ids = [c["id"] for c in contributors]
    roles = [c.get("role") for c in contributors]
    values = np.array([np.nan if v is None else v for v in util["values"]], dtype=np.float64)
    std = util.get("std")
    errors = None if std is None else np.array([0.0 if s is None else s for s in std], dtype=np.float64)
    shown = shown_contributors(values)  # ascending: largest drawn on top
    n, k = len(ids), len(shown)
    colors = role_colors(roles)
    summarised = k < n
    fig = _new_figure(12.5 if summarised else 7.5, min(0.28 * k + 1.8, 40.0))
    if summarised:
        ax, dist = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    else:
        ax, dist = fig.add_subplot(), None
    y = np.arange(k) + (np.arange(k) >= TOP_K) * summarised  # a gap between the bottom and the top ones
    ax.barh(
        y,
        values[shown],
        xerr=None if errors is None else errors[shown],
        color=[colors[roles[i]] for i in shown],
        edgecolor="black",
        linewidth=0.4,
        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
    )
    ax.axvline(0.0, color="black", linewidth=0.8)
    _set_ticks(ax.set_yticks, ax.set_yticklabels, [ids[i] for i in shown], positions=y)
    ax.set_ylim(-0.6, y[-1] + 0.6)
    direction = "higher" if util["higher_is_better"] else "lower"
    effect = "helps" if util["higher_is_better"] else "hurts"
    if summarised:
        ax.axhline(TOP_K, color="#666666", linewidth=0.8, linestyle=":")
        ax.text(0.99, TOP_K, f"{n - k} more in between (histogram, attribution.csv)", ha="right", va="center",
                transform=ax.get_yaxis_transform(), fontsize="small", color="#444444",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        ax.set_title(f"{utility}: the {TOP_K} largest and smallest of {n} values ({direction} is better)")
    else:
        ax.set_title(f"{utility}: Shapley value per contributor ({direction} is better)")
    ax.set_xlabel(f"contribution to {utility} (positive raises it, i.e. {effect})")
    if any(r is not None for r in roles):
        handles = [Patch(facecolor=c, edgecolor="black", label=r if r is not None else "no role")
                   for r, c in colors.items()]
        ax.legend(handles=handles, title="role", loc="best", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    if dist is not None:
        finite = np.isfinite(values)
        groups = list(colors)
        dist.hist([values[finite & np.array([r == g for r in roles])] for g in groups], bins=40, stacked=True,
                  color=[colors[g] for g in groups], edgecolor="black", linewidth=0.3)
        dist.axvline(0.0, color="black", linewidth=0.8)
        dist.set_title(f"all {n} values")
        dist.set_xlabel(f"contribution to {utility}")
        dist.set_ylabel("contributors")
        dist.grid(axis="y", alpha=0.3)
    return fig


def interactions_figure(doc: Mapping[str, Any], utility: str) -> Figure | None:
    """Heatmap of the pairwise interaction matrix (diverging colours centred at 0), or None.

    The diagonal holds the Shapley values themselves; it is masked so that the colour scale
    shows the interactions. Beyond ``ALL_SHOWN_UP_TO`` contributors the heatmap shows the
    ``2 TOP_K`` with the largest absolute values.
    """
    util = doc["utilities"][utility]
    if util.get("interactions") is None:
        return None
    ids = [c["id"] for c in doc["contributors"]]
    matrix = np.array([[np.nan if v is None else v for v in row] for row in util["interactions"]], dtype=np.float64)
    n = matrix.shape[0]
    keep = np.arange(n)
    if n > ALL_SHOWN_UP_TO:
        strength = np.nan_to_num(np.abs(np.diag(matrix)), nan=-np.inf)
        keep = np.sort(np.argsort(-strength, kind="stable")[: 2 * TOP_K])
    shown = matrix[np.ix_(keep, keep)]
    np.fill_diagonal(shown, np.nan)
    finite = shown[np.isfinite(shown)]
    vmax = float(np.abs(finite).max()) if finite.size else 0.0
    vmax = vmax if vmax > 0 else 1.0
    side = min(0.35 * keep.size + 3.0, 30.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    cmap = _diverging_cmap()
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=TwoSlopeNorm(0.0, -vmax, vmax),
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, label="pairwise Shapley interaction", shrink=0.8)
    names = [ids[i] for i in keep]
    _set_ticks(ax.set_xticks, ax.set_xticklabels, names, rotation=90)
    _set_ticks(ax.set_yticks, ax.set_yticklabels, names)
    if keep.size < n:
        ax.set_title(f"{utility}: pairwise interactions of the {keep.size} largest |values| of {n}")
    else:
        ax.set_title(f"{utility}: pairwise interactions (diagonal = values, not shown)")
    return fig


def surrogate_cv_figure(doc: Mapping[str, Any], utility: str) -> Figure | None:
    """Out-of-fold surrogate predictions vs the game's values, with y = x; None without them.

    Reads the utility's ``surrogate.out_of_fold`` (values and predictions of the held-out
    coalitions), present for a surrogate fitted with cross-validation.
    """
    surrogate = doc["utilities"][utility].get("surrogate") or {}
    fit = surrogate.get("out_of_fold")
    if not fit:
        return None
    actual = np.asarray(fit["values"], dtype=np.float64)
    predicted = np.asarray(fit["predictions"], dtype=np.float64)
    fig = _new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    ax.scatter(actual, predicted, s=14, alpha=0.7, color="#4c72b0", edgecolors="none")
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    pad = 0.05 * (high - low) if high > low else 0.5
    line = [low - pad, high + pad]
    ax.plot(line, line, color="black", linewidth=0.8, linestyle="--", label="y = x")
    ax.set_xlim(line)
    ax.set_ylim(line)
    r2 = surrogate.get("holdout_r2")
    rho = surrogate.get("holdout_spearman")
    r2_text = "n/a" if r2 is None or not np.isfinite(r2) else f"{r2:.3f}"
    rho_text = "" if rho is None or not np.isfinite(rho) else f", Spearman = {rho:.3f}"
    _label(ax, f"{utility}: surrogate out-of-fold fit (R$^2$ = {r2_text}{rho_text})", "game value v(S)",
           "out-of-fold surrogate prediction f(S)", "upper left")
    return fig


def budget_trace_figure(doc: Mapping[str, Any], utility: str) -> Figure | None:
    """``budget="auto"``'s rounds: the estimated relative error (and the values' change) per budget, with the
    tolerance; None when the budget was fixed.
    """
    trace = doc["utilities"][utility].get("budget_trace")
    if not trace:
        return None
    rounds = trace["rounds"]
    budgets = [r["budget"] for r in rounds]
    fig = _new_figure(5.5, 4.0)
    ax = fig.add_subplot()
    errors = [np.nan if r["error"] is None else r["error"] for r in rounds]
    ax.plot(budgets, errors, marker="o", color="#4c72b0", label="estimated relative error")
    changes = [np.nan if r["change"] is None else r["change"] for r in rounds]
    if np.isfinite(changes).any():
        ax.plot(budgets, changes, marker="s", color="#8c8c8c", linestyle=":", label="change since the round before")
    ax.axhline(trace["tolerance"], color="#c44e52", linestyle="--", linewidth=0.8, label="tolerance")
    ax.set_xscale("log", base=2)
    if np.nanmin([*errors, *changes, trace["tolerance"]]) > 0:
        ax.set_yscale("log")
    stopped = "converged" if trace["converged"] else "max_budget reached"
    _label(ax, f"{utility}: budget chosen in rounds ({stopped})", "coalitions evaluated",
           "relative to the values' spread", "upper right")
    return fig


def _label(ax: Any, title: str, xlabel: str, ylabel: str, legend: str) -> None:
    """Title, axis labels, a small legend at ``legend`` and a light grid."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc=legend, fontsize="small")
    ax.grid(alpha=0.3)


def _set_ticks(set_ticks, set_labels, labels: list[str], rotation: float = 0, positions: Any = None) -> None:
    """Ticks for every label (at ``positions``, default 0, 1, ...), or every k-th one when there are too many."""
    at = list(range(len(labels))) if positions is None else [float(p) for p in positions]
    step = max(1, int(np.ceil(len(labels) / MAX_TICK_LABELS)))
    chosen = list(range(0, len(labels), step))
    set_ticks([at[i] for i in chosen])
    set_labels([labels[i] for i in chosen], rotation=rotation, fontsize="small")


def _diverging_cmap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
