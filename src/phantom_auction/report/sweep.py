"""The report of a parameter sweep: a line (or bars) per metric and field, or heatmaps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..simulation.results import METRICS, SWEEP_METRICS

if TYPE_CHECKING:
    import pandas as pd

from .figures import (
    _BLUE,
    _RED,
    _figure,
    _pandas,
    _save,
    _style,
    metric_label,
)
from .html import (
    Report,
    _fmt,
    _page,
    _Section,
    _table,
)

FloatArray = NDArray[np.float64]

# -- sweep report --------------------------------------------------------------------


def _sweep_metrics(table: pd.DataFrame) -> list[str]:
    return [m for m in SWEEP_METRICS if f"{m}_mean" in table.columns]


def _ci95(table: pd.DataFrame, metric: str) -> FloatArray:
    """Half-width of the 95% confidence interval of the mean: the table's own interval
    (``<metric>_ci95_low/high``, as ``analyze_results`` computed it), else 1.96 std/√n."""
    low, high = f"{metric}_ci95_low", f"{metric}_ci95_high"
    if low in table and high in table:
        half = table[high].to_numpy(dtype=np.float64) - table[low].to_numpy(dtype=np.float64)
        return np.asarray(half / 2.0, dtype=np.float64)
    std = np.asarray(table.get(f"{metric}_std", 0.0), dtype=np.float64)
    n = np.asarray(table.get("num_auctions", 1), dtype=np.float64)
    return np.asarray(1.96 * std / np.sqrt(np.maximum(n, 1.0)), dtype=np.float64)


def _axis_values(values: Sequence[Any]) -> tuple[bool, list[Any]]:
    """Whether the values are numeric, and their sorted distinct values."""
    distinct = list(dict.fromkeys(values))
    numeric = all(isinstance(v, int | float | np.integer | np.floating) for v in distinct)
    return numeric, sorted(distinct) if numeric else distinct


def plot_sweep_line(table: pd.DataFrame, fld: str, metric: str, path: Path) -> Path:
    """Mean of ``metric`` against ``fld`` with its 95% CI, averaged over other swept fields."""
    numeric, _ = _axis_values(list(table[fld]))
    # Categories (mechanisms, strategies) keep the grid's order and are drawn as bars: a
    # line between them would suggest an order and values in between that do not exist.
    grouped = table.groupby(fld, sort=numeric)
    mean = grouped[f"{metric}_mean"].mean()
    ci = table.assign(_ci=_ci95(table, metric)).groupby(fld, sort=numeric)["_ci"].mean()
    x = mean.index.to_numpy() if numeric else np.arange(len(mean))
    y = mean.to_numpy(dtype=np.float64)
    err = ci.reindex(mean.index).to_numpy(dtype=np.float64)
    fig, (ax,) = _figure(7.0, 4.2)
    if numeric:
        ax.fill_between(
            x, y - err, y + err, color=_BLUE, alpha=0.2, lw=0, label="95% CI of the mean"
        )
        ax.plot(x, y, marker="o", color=_BLUE, lw=1.8, label="mean")
    else:
        ax.bar(x, y, color=_BLUE, alpha=0.8, label="mean")
        ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=5, label="95% CI")
        ax.grid(axis="x", visible=False)
    if metric in {"improvement_bps", "mev_capture_rate", "welfare"} and y.size > 1:
        best = int(np.nanargmax(y))
        ax.scatter([x[best]], [y[best]], s=110, facecolors="none", edgecolors=_RED, lw=2)
        right_half = best >= (len(x) - 1) / 2
        ax.annotate(
            f"max at {fld} = {mean.index[best]}",
            (x[best], y[best]),
            textcoords="offset points",
            xytext=(-6, 8) if right_half else (6, 8),
            ha="right" if right_half else "left",
            color=_RED,
            fontsize=9,
        )
    if not numeric:
        ax.set_xticks(x, [str(v) for v in mean.index])
    elif len(x) <= 12:
        # Ticks at the grid points themselves: the swept values are what the reader asks about.
        ax.set_xticks(x, [_fmt(v) for v in mean.index])
    ax.set_title(f"{METRICS[metric].title if metric in METRICS else metric} vs {fld}")
    ax.set_xlabel(_field_label(fld))
    ax.set_ylabel(metric_label(metric))
    ax.legend(loc="best")
    return _save(fig, path)


def plot_sweep_heatmap(
    table: pd.DataFrame, fields: tuple[str, str], metric: str, path: Path
) -> Path:
    """Heatmap of the mean of ``metric`` over a two-field grid, each cell annotated."""
    row_field, col_field = fields
    pivot = table.pivot_table(
        index=row_field, columns=col_field, values=f"{metric}_mean", aggfunc="mean"
    )
    grid = pivot.to_numpy(dtype=np.float64)
    fig, (ax,) = _figure(7.5, 4.8)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(grid.shape[1]), [_fmt(v) for v in pivot.columns])
    ax.set_yticks(np.arange(grid.shape[0]), [_fmt(v) for v in pivot.index])
    ax.grid(False)
    finite = grid[np.isfinite(grid)]
    mid = float(np.mean([finite.min(), finite.max()])) if finite.size else 0.0
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(
                j,
                i,
                f"{value:.3g}",
                ha="center",
                va="center",
                fontsize=9,
                color="black" if value > mid else "white",
            )
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label(metric_label(metric))
    ax.set_title(f"{METRICS[metric].title if metric in METRICS else metric} (mean)")
    ax.set_xlabel(_field_label(col_field))
    ax.set_ylabel(_field_label(row_field))
    return _save(fig, path)


#: Units of the fields a sweep can vary (SimulationConfig and MarketConditions).
FIELD_UNITS: dict[str, str] = {
    "num_real_bidders": "bidders",
    "num_phantom_bidders": "phantom slots",
    "auction_duration_ms": "ms",
    "volatility": "0–1",
    "liquidity": "0–1",
    "trend": "−1 to 1",
    "spread": "bps",
    "volume": "token A",
    "num_bidders": "bidders",
    "correlation": "ρ",
}


def _field_label(fld: str) -> str:
    unit = FIELD_UNITS.get(fld)
    return f"{fld} ({unit})" if unit else fld


def write_sweep_report(
    out_dir: str | Path,
    table: pd.DataFrame,
    fields: Sequence[str],
    *,
    title: str = "Phantom auction parameter sweep",
    parameters: Mapping[str, Any] | None = None,
) -> Report:
    """Write ``index.html`` and one PNG per metric of a sweep into ``out_dir``.

    One swept field: a line plot of each metric's mean (95% CI band) against it. Two:
    a heatmap per metric. More: one line plot per metric and field, averaged over the
    other fields.
    """
    _pandas()
    if table.empty:
        raise ValueError("the sweep table has no grid points to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    sections: list[_Section] = []
    names = list(fields)
    with _style():
        for metric in _sweep_metrics(table):
            if len(names) == 2 and all(table[f].nunique() > 1 for f in names):
                image = f"sweep_{metric}.png"
                figures[metric] = plot_sweep_heatmap(
                    table, (names[0], names[1]), metric, out / image
                )
                sections.append(
                    _Section(
                        metric_label(metric),
                        f"Mean over the auctions of each grid point of {names[0]} × {names[1]}.",
                        image,
                    )
                )
                continue
            for fld in names:
                image = f"sweep_{metric}_vs_{fld}.png" if len(names) > 1 else f"sweep_{metric}.png"
                key = f"{metric}_vs_{fld}" if len(names) > 1 else metric
                figures[key] = plot_sweep_line(table, fld, metric, out / image)
                others = [f for f in names if f != fld]
                note = f", averaged over {', '.join(others)}" if others else ""
                sections.append(
                    _Section(
                        f"{metric_label(metric)} vs {fld}",
                        f"Mean and 95% confidence interval per grid point{note}.",
                        image,
                    )
                )
    shown = [*names, "num_auctions", *(f"{m}_mean" for m in _sweep_metrics(table))]
    rows = table[[c for c in shown if c in table.columns]].to_numpy().tolist()
    blocks = [
        f"<p class='muted'>{len(table)} grid points over {', '.join(names)}.</p>",
        "<h2>Grid</h2>",
        # A wide grid scrolls inside its box instead of running off the page.
        "<div class='wide'>" + _table([c for c in shown if c in table.columns], rows) + "</div>",
    ]
    page = out / "index.html"
    page.write_text(_page(title, parameters or {}, blocks, sections), encoding="utf-8")
    return Report(page, figures)
