"""The report of a parameter sweep: a line (or bars) per metric and field, or heatmaps."""

from __future__ import annotations

import math
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
    wrapped,
)
from .html import (
    Report,
    _ci_text,
    _fmt,
    _page,
    _Section,
    _table,
)

FloatArray = NDArray[np.float64]

# -- sweep report --------------------------------------------------------------------


def _sweep_metrics(table: pd.DataFrame) -> list[str]:
    return [m for m in SWEEP_METRICS if f"{m}_mean" in table.columns]


#: Metrics that are shares of auctions or of volume: their colour scales stay in [0, 1].
SHARE_METRICS = frozenset(m for m, info in METRICS.items() if info.short == "share")
#: Metrics that are prices: no bar from 0 (100.38 and 100.40 would look alike).
PRICE_METRICS = frozenset({"clearing_price"})
#: Metrics whose highest grid point is marked (when its interval clears the others').
MAXIMISED_METRICS = frozenset({"improvement_bps", "mev_capture_rate", "welfare"})


def _ci95_bounds(table: pd.DataFrame, metric: str) -> tuple[FloatArray, FloatArray]:
    """Each grid point's 95 % confidence interval of the mean, ``(low, high)``: the
    table's own (``<metric>_ci95_low/high``, as ``analyze_results`` computed it, which
    need not be symmetric: Wilson's for a 0/1 metric), else mean ± 1.96 std/√n."""
    mean = table[f"{metric}_mean"].to_numpy(dtype=np.float64)
    low, high = f"{metric}_ci95_low", f"{metric}_ci95_high"
    if low in table and high in table:
        return table[low].to_numpy(dtype=np.float64), table[high].to_numpy(dtype=np.float64)
    std = np.asarray(table.get(f"{metric}_std", np.nan), dtype=np.float64)
    n = np.asarray(table.get("num_auctions", 1), dtype=np.float64)
    half = 1.96 * std / np.sqrt(np.maximum(n, 1.0))
    return np.asarray(mean - half, dtype=np.float64), np.asarray(mean + half, dtype=np.float64)


def _combined(means: FloatArray, lows: FloatArray, highs: FloatArray) -> tuple[float, float, float]:
    """The mean of k cells' means and a 95 % interval of it that holds however the cells
    are correlated: the mean of their lower and of their upper ends.

    Every grid point of a sweep runs on the same seed (common random numbers), so the
    cells are not independent: measured between grid points of seed 3, the per-auction
    improvement correlates at 0.76-0.93. The variance of the mean of k means is
    Σᵢⱼ ρᵢⱼ seᵢ seⱼ / k², at most (Σ seᵢ / k)² (all ρ = 1): the mean of the half-widths
    bounds the half-width, each side apart (an interval need not be symmetric: Wilson's).
    √(Σ hᵢ²) / k would hold only for independent cells and would understate it here.
    One cell: its own interval, unchanged."""
    finite = np.isfinite(means)
    if not finite.any():
        return math.nan, math.nan, math.nan
    m, lo, hi = means[finite], lows[finite], highs[finite]
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return float(m.mean()), math.nan, math.nan
    return float(m.mean()), float(lo.mean()), float(hi.mean())


def _grouped_ci(
    table: pd.DataFrame, by: str | list[str], metric: str, *, sort: bool = True
) -> pd.DataFrame:
    """Per value of ``by``: ``mean`` (of the cells' means), ``low`` and ``high`` (their
    combined 95 % CI, :func:`_combined`) and ``cells``."""
    low, high = _ci95_bounds(table, metric)
    frame = table.assign(_mean=table[f"{metric}_mean"].astype(float), _low=low, _high=high)
    rows = []
    for key, group in frame.groupby(by, sort=sort):
        mean, lo, hi = _combined(
            group["_mean"].to_numpy(dtype=np.float64),
            group["_low"].to_numpy(dtype=np.float64),
            group["_high"].to_numpy(dtype=np.float64),
        )
        rows.append((key, mean, lo, hi, len(group)))
    pandas = _pandas()
    out: pd.DataFrame = pandas.DataFrame(rows, columns=["key", "mean", "low", "high", "cells"])
    if isinstance(by, list):
        out[by] = pandas.DataFrame(out["key"].tolist(), index=out.index)
    return out.set_index("key")


def _clear_maximum(mean: FloatArray, low: FloatArray, high: FloatArray) -> int | None:
    """The grid point of the highest mean when its interval lies wholly above every
    other point's, else None: a maximum within the others' uncertainty is not one."""
    finite = np.isfinite(mean)
    if finite.sum() < 2:
        return None
    best = int(np.nanargmax(mean))
    others = np.delete(np.arange(mean.size), best)
    others = others[finite[others]]
    if not np.isfinite(low[best]) or not np.all(np.isfinite(high[others])):
        return None
    return best if float(low[best]) > float(np.max(high[others])) else None


def _plain_axis(axis: Any) -> None:
    """Tick labels in full, without matplotlib's "+1.003e2" offset above the axis."""
    from matplotlib.ticker import ScalarFormatter

    formatter = ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def _axis_values(values: Sequence[Any]) -> tuple[bool, list[Any]]:
    """Whether the values are numeric, and their sorted distinct values."""
    distinct = list(dict.fromkeys(values))
    numeric = all(isinstance(v, int | float | np.integer | np.floating) for v in distinct)
    return numeric, sorted(distinct) if numeric else distinct


def plot_sweep_line(table: pd.DataFrame, fld: str, metric: str, path: Path) -> Path:
    """Mean of ``metric`` against ``fld`` with its 95 % CI, averaged over other swept
    fields (the mean of the cells' means, their intervals combined: :func:`_combined`)."""
    numeric, _ = _axis_values(list(table[fld]))
    # Categories (mechanisms, strategies) keep the grid's order and are drawn as bars: a
    # line between them would suggest an order and values in between that do not exist.
    curve = _grouped_ci(table, fld, metric, sort=numeric)
    averaged = bool((curve["cells"] > 1).any())
    x = curve.index.to_numpy() if numeric else np.arange(len(curve))
    y = curve["mean"].to_numpy(dtype=np.float64)
    low = curve["low"].to_numpy(dtype=np.float64)
    high = curve["high"].to_numpy(dtype=np.float64)
    band = "95% CI of the mean" + (", conservative (cells share a seed)" if averaged else "")
    fig, (ax,) = _figure(7.0, 4.4)
    if numeric:
        ax.fill_between(x, low, high, color=_BLUE, alpha=0.2, lw=0, label=band)
        ax.plot(x, y, marker="o", color=_BLUE, lw=1.8, label="mean")
    else:
        err = np.vstack([y - low, high - y])
        if metric in PRICE_METRICS:
            # A price is read against its neighbours, not against 0: points, not bars.
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="o",
                color=_BLUE,
                ecolor="black",
                capsize=5,
                label=f"mean, {band}",
            )
            ax.set_xlim(-0.5, len(x) - 0.5)
        else:
            ax.bar(x, y, color=_BLUE, alpha=0.8, label="mean")
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor="black", capsize=5, label=band)
        ax.grid(axis="x", visible=False)
    if metric in MAXIMISED_METRICS:
        best = _clear_maximum(y, low, high)
        if best is not None:
            ax.scatter([x[best]], [y[best]], s=110, facecolors="none", edgecolors=_RED, lw=2)
            # Headroom for the label under the title.
            bottom, top = ax.get_ylim()
            ax.set_ylim(bottom, top + 0.1 * (top - bottom))
            right_half = best >= (len(x) - 1) / 2
            ax.annotate(
                f"max at {fld} = {_fmt(curve.index[best])}",
                (x[best], y[best]),
                textcoords="offset points",
                xytext=(-6, 8) if right_half else (6, 8),
                ha="right" if right_half else "left",
                color=_RED,
                fontsize=9,
            )
    if not numeric:
        ax.set_xticks(x, [str(v) for v in curve.index])
    elif len(x) <= 12:
        # Ticks at the grid points themselves: the swept values are what the reader asks about.
        ax.set_xticks(x, [_fmt(v) for v in curve.index])
    _plain_axis(ax.yaxis)
    ax.set_title(f"{METRICS[metric].title if metric in METRICS else metric} vs {fld}")
    ax.set_xlabel(wrapped(_field_label(fld), 60))
    ax.set_ylabel(wrapped(metric_label(metric), 40))
    ax.legend(loc="best")
    return _save(fig, path)


def _decimals(half: float) -> int:
    """Decimals that show ``half`` (a CI half-width) to two significant digits."""
    if not (math.isfinite(half) and half > 0.0):
        return 4
    return int(min(8, max(0, 1 - math.floor(math.log10(half)))))


def _fixed(x: float, decimals: int) -> str:
    text = f"{x:.{decimals}f}"
    # No "-0.00": a value that rounds to zero is 0.
    return text.lstrip("-") if float(text) == 0.0 else text


def cell_text(mean: float, low: float, high: float) -> str:
    """A heatmap cell: the mean over ``± half-width`` of its 95 % CI (to two significant
    digits, the mean to as many decimals), or ``[low, high]`` when the interval is not
    symmetric (Wilson's for a 0/1 metric)."""
    if not math.isfinite(mean):
        return ""
    if not (math.isfinite(low) and math.isfinite(high)):
        return _fmt(mean)
    below, above = mean - low, high - mean
    half = max(below, above)
    d = _decimals(half)
    if abs(below - above) <= 0.05 * half or half <= 0.0:
        return f"{_fixed(mean, d)}\n±{_fixed(half, d)}"
    return f"{_fixed(mean, d)}\n[{_fixed(low, d)}, {_fixed(high, d)}]"


def colour_range(
    means: FloatArray, lows: FloatArray, highs: FloatArray, *, share: bool = False
) -> tuple[float, float]:
    """The colour scale of a heatmap: the means' range, widened to at least the typical
    (median) width of a cell's 95 % CI, so that cells whose difference is within their
    uncertainty look alike; a share's scale stays within [0, 1] (never a negative one)."""
    finite = means[np.isfinite(means)]
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    widths = (highs - lows)[np.isfinite(highs - lows)]
    width = float(np.median(widths)) if widths.size else 0.0
    if width > hi - lo:
        centre = (lo + hi) / 2
        lo, hi = centre - width / 2, centre + width / 2
    if not hi > lo:
        pad = max(abs(lo) * 0.01, 1e-9)
        lo, hi = (0.0, 1.0) if share else (lo - pad, hi + pad)
    if share:
        if lo < 0.0:
            lo, hi = 0.0, hi - lo
        if hi > 1.0 and float(finite.max()) <= 1.0:
            lo, hi = max(0.0, lo - (hi - 1.0)), 1.0
    return lo, hi


def plot_sweep_heatmap(
    table: pd.DataFrame, fields: tuple[str, str], metric: str, path: Path
) -> Path:
    """Heatmap of the mean of ``metric`` over a two-field grid, each cell annotated with
    its mean ± the half-width of its 95 % CI."""
    row_field, col_field = fields
    cells = _grouped_ci(table, [row_field, col_field], metric)
    pivot = cells.pivot_table(index=row_field, columns=col_field, values="mean", aggfunc="mean")
    lows = cells.pivot_table(index=row_field, columns=col_field, values="low", aggfunc="mean")
    highs = cells.pivot_table(index=row_field, columns=col_field, values="high", aggfunc="mean")
    grid = pivot.to_numpy(dtype=np.float64)
    low = lows.reindex(index=pivot.index, columns=pivot.columns).to_numpy(dtype=np.float64)
    high = highs.reindex(index=pivot.index, columns=pivot.columns).to_numpy(dtype=np.float64)
    vmin, vmax = colour_range(grid, low, high, share=metric in SHARE_METRICS)
    fig, (ax,) = _figure(7.8, 5.0)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(np.arange(grid.shape[1]), [_fmt(v) for v in pivot.columns])
    ax.set_yticks(np.arange(grid.shape[0]), [_fmt(v) for v in pivot.index])
    ax.grid(False)
    mid = (vmin + vmax) / 2
    for (i, j), value in np.ndenumerate(grid):
        if np.isfinite(value):
            ax.text(
                j,
                i,
                cell_text(float(value), float(low[i, j]), float(high[i, j])),
                ha="center",
                va="center",
                fontsize=8,
                color="black" if value > mid else "white",
            )
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label(wrapped(metric_label(metric), 40))
    _plain_axis(colorbar.ax.yaxis)
    title = METRICS[metric].title if metric in METRICS else metric
    ax.set_title(f"{title} (mean and 95% CI of the mean)")
    ax.set_xlabel(wrapped(_field_label(col_field), 60))
    ax.set_ylabel(wrapped(_field_label(row_field), 40))
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


def _grid_table(table: pd.DataFrame, names: Sequence[str]) -> str:
    """The grid: the swept fields, the auctions, and per metric its mean and the 95 % CI
    of the mean (``[low, high]``)."""
    header: list[str] = [f for f in names if f in table.columns]
    keys = list(header)
    if "num_auctions" in table.columns:
        header.append("num_auctions")
        keys.append("num_auctions")
    columns: list[list[Any]] = [table[c].tolist() for c in header]
    for metric in _sweep_metrics(table):
        low, high = _ci95_bounds(table, metric)
        header += [f"{metric}_mean", f"{metric} 95% CI"]
        keys += [f"{metric}_mean", f"{metric}_ci95"]
        columns.append(table[f"{metric}_mean"].tolist())
        columns.append([_ci_text(lo, hi) for lo, hi in zip(low, high, strict=True)])
    rows = [list(row) for row in zip(*columns, strict=True)]
    return _table(header, rows, names=keys)


def _line_caption(fld: str, others: Sequence[str], metric: str) -> str:
    text = "Mean and 95% confidence interval of the mean per grid point"
    if others:
        text += (
            f", averaged over {', '.join(others)}: the mean of the cells' means. The grid "
            "points share a seed (common random numbers), so the cells are correlated; "
            "the band, the mean of their intervals' ends, is conservative: it holds "
            "whatever the correlation, and is wider than the interval of independent "
            "cells would be (√(Σ hᵢ²) / k for k cells of half-widths hᵢ)"
        )
    text += "."
    if metric in MAXIMISED_METRICS:
        text += (
            " A red circle marks the highest mean only when its interval lies above every "
            "other point's; none is drawn when the intervals overlap."
        )
    if metric in PRICE_METRICS:
        text += " Prices in full (no offset); the axis does not start at 0."
    return text


def _heatmap_caption(rows: str, cols: str, metric: str) -> str:
    text = (
        f"Mean over the auctions of each grid point of {rows} × {cols}, ± the half-width "
        "of its 95% confidence interval (the interval itself where it is not symmetric). "
        "The colour scale spans at least the typical width of a cell's interval, so that "
        "a spread smaller than one cell's uncertainty is not stretched over the whole "
        "range of colours"
    )
    if metric in SHARE_METRICS:
        text += "; a share's scale stays within [0, 1]"
    return text + "."


def write_sweep_report(
    out_dir: str | Path,
    table: pd.DataFrame,
    fields: Sequence[str],
    *,
    title: str = "Phantom auction parameter sweep",
    parameters: Mapping[str, Any] | None = None,
    rerun: str | None = None,
) -> Report:
    """Write ``index.html`` and one PNG per metric of a sweep into ``out_dir``.

    One swept field: a line plot of each metric's mean (95% CI band) against it. Two:
    a heatmap per metric. More: one line plot per metric and field, averaged over the
    other fields. ``rerun``: the command line that reproduces the sweep, shown on the
    page beside the parameters.
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
                        metric_label(metric), _heatmap_caption(names[0], names[1], metric), image
                    )
                )
                continue
            for fld in names:
                image = f"sweep_{metric}_vs_{fld}.png" if len(names) > 1 else f"sweep_{metric}.png"
                key = f"{metric}_vs_{fld}" if len(names) > 1 else metric
                figures[key] = plot_sweep_line(table, fld, metric, out / image)
                others = [f for f in names if f != fld]
                sections.append(
                    _Section(
                        f"{metric_label(metric)} vs {fld}",
                        _line_caption(fld, others, metric),
                        image,
                    )
                )
    blocks = [
        f"<p class='muted'>{len(table)} grid points over {', '.join(names)}.</p>",
        "<h2>Grid</h2>",
        # A wide grid scrolls inside its box instead of running off the page.
        "<div class='wide'>" + _grid_table(table, names) + "</div>",
        "<p class='muted'>95% CI: the 95% confidence interval of the mean at each grid "
        "point, as analyze_results computes it (Student's t over independent auctions, "
        "batch means where bidders learn across auctions; Wilson's score interval for an "
        "event, phantom_won).</p>",
    ]
    page = out / "index.html"
    page.write_text(_page(title, parameters or {}, blocks, sections, rerun=rerun), encoding="utf-8")
    return Report(page, figures)
