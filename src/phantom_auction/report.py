"""Plots and the HTML report of a Monte Carlo run or of a parameter sweep.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot global state) and
saved as PNGs beside ``index.html``, which references them by relative path, so the
directory can be moved, zipped or served as it is.

A run report reads the per-auction frame of ``MonteCarloResults.to_frame()`` (one row per
auction: ``improvement_bps``, ``mev_capture_rate``, ``clearing_price``, ``phantom_won``,
``winner_strategy``, ``real_fill_fraction``, ...) and the ``analyze_results`` summary.
A sweep report reads one row per grid point: the swept fields, then for each metric
``<metric>_mean``, ``<metric>_std``, ``<metric>_p05``, ``<metric>_p95``, and
``num_auctions``.

matplotlib and pandas come with the ``reports`` extra; without them every entry point
raises :class:`phantom_auction._extras.MissingExtra` naming the ``pip install`` line.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from ._extras import require
from .simulation.results import METRICS, SEED_METRIC_NAMES, SWEEP_METRICS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "METRICS",
    "Report",
    "metric_label",
    "write_report",
    "write_sweep_report",
]

FloatArray = NDArray[np.float64]


_BLUE = "#2f6db5"
_ORANGE = "#e07b25"
_GREEN = "#3a9a5b"
_GREY = "#8a8a8a"
_RED = "#c0392b"

_STYLE: dict[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "savefig.dpi": 110,
    "savefig.facecolor": "white",
}


def metric_label(metric: str) -> str:
    """``"Title (unit)"`` for an axis; unknown metrics get their name in words."""
    info = METRICS.get(metric)
    if info is None:
        return metric.replace("_", " ").capitalize()
    return f"{info.title} ({info.unit})"


@dataclass(frozen=True, slots=True)
class Report:
    """A written report: the HTML page and every figure, keyed by figure name."""

    html: Path
    figures: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Section:
    heading: str
    caption: str
    image: str


# -- matplotlib plumbing -------------------------------------------------------------


def _pandas() -> Any:
    require("pandas", "reports")
    import pandas

    return pandas


@contextmanager
def _style() -> Iterator[None]:
    require("matplotlib", "reports")
    import matplotlib

    with matplotlib.rc_context(cast(Any, _STYLE)):
        yield


def _figure(width: float, height: float, *, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure on its own Agg canvas: no pyplot, so nothing global and no display needed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png")
    return path


# -- run report ----------------------------------------------------------------------


def _finite(values: Any) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    return array[np.isfinite(array)]


def _histogram(
    ax: Axes,
    values: FloatArray,
    *,
    color: str,
    bins: int | FloatArray = 60,
    label: str = "",
    keep_visible: float = 0.0,
) -> None:
    """Histogram whose y axis is not ruled by one spike (e.g. every auction at baseline).

    When the tallest bin is over 3x the next, the axis is cut above the others and the
    cut bars are labelled with their count, so both the spike and the body stay readable.
    ``keep_visible`` is a height (count) the axis must still show, e.g. an overlay's peak.
    """
    counts, edges, _ = ax.hist(
        values, bins=cast(Any, bins), color=color, alpha=0.85, label=label or None
    )
    ordered = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    if ordered.size < 2 or ordered[1] <= 0 or ordered[0] <= 3.0 * ordered[1]:
        return
    top = max(float(ordered[1]) * 1.45, keep_visible * 1.1)
    if ordered[0] <= top:
        return
    ax.set_ylim(0.0, top)
    for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
        if count > top:
            ax.annotate(
                f"{int(count):,} ↑",
                ((left + right) / 2, top),
                xytext=(3, -4),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=9,
                fontweight="bold",
            )


def _mean_median_lines(ax: Axes, values: FloatArray, unit: str, fmt: str = ".1f") -> None:
    if values.size == 0:
        return
    mean, median = float(np.mean(values)), float(np.median(values))
    ax.axvline(mean, color=_RED, lw=1.5, label=f"mean {mean:{fmt}} {unit}")
    ax.axvline(median, color="black", lw=1.2, ls="--", label=f"median {median:{fmt}} {unit}")


def _legend_below(ax: Axes, ncol: int = 2) -> None:
    """The legend under the axes: over the bars it hid the mean and median lines."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, fontsize=9)


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this run", ha="center", va="center", transform=ax.transAxes)


def plot_improvement(frame: pd.DataFrame, path: Path, *, cap_bps: float | None = None) -> Path:
    """Histogram of the user's improvement over baseline (bps), zero split out.

    ``cap_bps``: the most a bid may offer (``max_improvement_bps``); the auctions that
    reach it pile up in the last bar, which is then marked and explained.
    """
    values = _finite(frame["improvement_bps"])
    fig, (ax,) = _figure(7.5, 4.6)
    if values.size == 0:
        _no_data(ax, "auctions")
    else:
        zero_share = float(np.mean(values == 0.0))
        _histogram(ax, values, color=_BLUE, label=f"{zero_share:.0%} of auctions at 0 bps (CFMM)")
        _mean_median_lines(ax, values, "bps")
        if cap_bps is not None and math.isfinite(cap_bps):
            at_cap = float(np.mean(np.isclose(values, cap_bps, rtol=0.0, atol=1e-6)))
            if at_cap > 0.0:
                ax.axvline(
                    cap_bps,
                    color=_ORANGE,
                    lw=1.5,
                    ls=":",
                    label=f"{at_cap:.0%} at the {cap_bps:g} bps cap (max_improvement_bps)",
                )
        _legend_below(ax)
    ax.set_title(f"User price improvement over the CFMM baseline ({values.size:,} auctions)")
    ax.set_xlabel("Improvement over baseline price (bps)")
    ax.set_ylabel("Auctions")
    return _save(fig, path)


def plot_mev_capture(frame: pd.DataFrame, path: Path) -> Path:
    """Histogram of the per-auction MEV capture rate (the user's share of the best real
    bidder's surplus), with the run's headline, the ratio of sums, beside its mean."""
    values = _finite(frame["mev_capture_rate"])
    fig, (ax,) = _figure(7.5, 4.6)
    if values.size == 0:
        _no_data(ax, "MEV capture values")
    else:
        low, high = min(0.0, float(values.min())), max(1.0, float(values.max()))
        _histogram(ax, values, color=_GREEN, bins=np.linspace(low, high, 41))
        _mean_median_lines(ax, values, "(per auction)", fmt=".3f")
        if {"improvement_bps", "available_surplus_bps"} <= set(frame.columns):
            total = float(np.nansum(frame["available_surplus_bps"]))
            if total > 0:
                ratio = float(np.nansum(frame["improvement_bps"])) / total
                ax.axvline(
                    ratio, color=_BLUE, lw=2.0, label=f"Σ improvement / Σ surplus {ratio:.3f}"
                )
        _legend_below(ax, ncol=3)
        # A little room left of 0, so a mean or median of 0 stays visible off the spine.
        ax.set_xlim(low - 0.02, high + 0.02)
    # NaN marks an auction where no real bidder valued the order above baseline.
    ax.set_title(f"MEV capture rate per auction ({values.size:,} with surplus to capture)")
    ax.set_xlabel("MEV returned to the user (share of best real value − baseline)")
    ax.set_ylabel("Auctions")
    return _save(fig, path)


def plot_clearing_price(frame: pd.DataFrame, path: Path) -> Path:
    """Clearing price against the latent true price P* and the CFMM baseline (B per A)."""
    clearing = _finite(frame["clearing_price"])
    true_price = _finite(frame["true_price"]) if "true_price" in frame else np.empty(0)
    baselines = _finite(frame["baseline_price"]) if "baseline_price" in frame else np.empty(0)
    fig, (ax,) = _figure(7.5, 4.2)
    if clearing.size == 0:
        _no_data(ax, "clearing prices")
    else:
        both = np.concatenate([clearing, true_price])
        # The extreme 0.1% on each side is left out rather than clipped: clipping piles
        # it into the edge bins and draws bumps that are not in the data.
        low, high = np.quantile(both, [0.001, 0.999])
        low, high = min(low, float(clearing.min())), max(high, float(clearing.max()))
        if not high > low:
            low, high = low - 0.5, high + 0.5
        bins = np.linspace(low, high, 61)
        true_counts, _ = np.histogram(true_price, bins=bins)
        _histogram(
            ax,
            clearing,
            color=_BLUE,
            bins=bins,
            label="clearing price",
            keep_visible=float(true_counts.max()) if true_price.size else 0.0,
        )
        if true_price.size:
            ax.hist(
                true_price,
                bins=cast(Any, bins),
                histtype="step",
                color=_ORANGE,
                lw=1.6,
                label="true price P*",
            )
        if baselines.size and np.ptp(baselines) == 0.0:
            ax.axvline(
                float(baselines[0]),
                color="black",
                ls="--",
                lw=1.2,
                label=f"CFMM baseline {baselines[0]:g}",
            )
        ax.legend(loc="upper right")
    ax.set_title("Clearing price distribution")
    ax.set_xlabel("Price (token B per token A)")
    ax.set_ylabel("Auctions")
    return _save(fig, path)


def plot_convergence(
    time_ms: FloatArray, paths: FloatArray, path: Path, *, unit: str = "bps over baseline"
) -> Path:
    """A sample of best-standing-price paths over the auction window (ms)."""
    t = np.asarray(time_ms, dtype=np.float64)
    p = np.atleast_2d(np.asarray(paths, dtype=np.float64))
    fig, (ax,) = _figure(7.5, 4.2)
    if p.size == 0 or t.size == 0:
        _no_data(ax, "convergence paths")
    else:
        for row in p:
            ax.step(t, row, where="post", color=_BLUE, alpha=0.35, lw=1.0)
        with np.errstate(all="ignore"):
            median = np.nanmedian(p, axis=0) if np.isfinite(p).any(axis=0).all() else None
        if median is not None:
            ax.step(t, median, where="post", color=_RED, lw=2.0, label="median of sample")
            ax.legend(loc="lower right")
        ax.set_xlim(float(t[0]), float(t[-1]))
    ax.set_title(f"Best standing real bid during collection ({p.shape[0]} sample auctions)")
    ax.set_xlabel("Time since auction open (ms)")
    ax.set_ylabel(f"Best real bid ({unit})")
    return _save(fig, path)


def _winner_shares(frame: pd.DataFrame) -> pd.Series[float]:
    labels = frame["winner_strategy"].astype("object").where(frame["winner_strategy"].notna())
    labels = labels.fillna("no winner").astype(str).replace({"": "no winner", "none": "no winner"})
    shares: pd.Series[float] = labels.value_counts(normalize=True)
    return shares.sort_values()


def plot_winners(frame: pd.DataFrame, path: Path) -> Path:
    """Win share by strategy, and how auctions and order volume split real vs phantom."""
    fig, (left, right) = _figure(11.0, 4.4, ncols=2)

    shares = _winner_shares(frame)
    colors = [
        _ORANGE if "phantom" in name.lower() else _GREY if name == "no winner" else _BLUE
        for name in shares.index
    ]
    names = ["phantom ranked first" if name == "phantom" else name for name in shares.index]
    left.barh(names, shares.to_numpy(), color=colors)
    for y, share in enumerate(shares.to_numpy(dtype=np.float64).tolist()):
        left.text(share, y, f" {share:.1%}", va="center", fontsize=9)
    left.set_xlim(0.0, min(1.0, float(shares.max()) * 1.25 + 0.02) if shares.size else 1.0)
    left.set_title("Win share by winner strategy")
    left.set_xlabel("Share of auctions won")
    left.grid(axis="y", visible=False)

    n = len(frame)
    phantom = np.asarray(frame["phantom_won"], dtype=bool)
    fill = np.clip(np.nan_to_num(np.asarray(frame["real_fill_fraction"], dtype=np.float64)), 0, 1)
    # A phantom ranked first sends its share to the CFMM; real bids below it may still
    # fill the rest, so "phantom won" splits into partly filled and all to the CFMM.
    segments = [
        ("filled by real bidders, no phantom first", _BLUE, ~phantom & (fill > 0)),
        ("phantom first, real bidders filled part", "#f0b27a", phantom & (fill > 0)),
        ("phantom first, all to the CFMM at baseline", _ORANGE, phantom & (fill == 0)),
        ("no fill (CFMM at baseline)", _GREY, ~phantom & (fill == 0)),
    ]
    real_volume = float(np.mean(fill)) if n else 0.0
    rows = ["Auctions", "Order volume"]
    left_edge = np.zeros(2)
    for label, color, mask in segments:
        share = float(np.mean(mask)) if n else 0.0
        widths = np.array([share, 0.0])
        # The legend carries every share, so a band too thin to see is still read.
        right.barh(rows, widths, left=left_edge, color=color, label=f"{label}: {share:.1%}")
        if share > 0.08:
            right.text(left_edge[0] + share / 2, 0, f"{share:.0%}", ha="center", va="center")
        left_edge = left_edge + widths
    volume = np.array([0.0, real_volume])
    right.barh(rows, volume, color=_BLUE)
    right.barh(rows, np.array([0.0, 1.0 - real_volume]), left=volume, color=_ORANGE)
    right.text(real_volume / 2, 1, f"real {real_volume:.1%}", ha="center", va="center")
    right.text(real_volume + (1.0 - real_volume) / 2, 1, f"CFMM {1 - real_volume:.1%}", ha="center")
    right.set_xlim(0.0, 1.0)
    right.set_title("Phantom vs real fills")
    right.set_xlabel("Share")
    right.grid(axis="y", visible=False)
    right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, fontsize=8)
    return _save(fig, path)


# -- HTML ----------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f8; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; margin-top: 0.3rem; }
.muted { color: #666; font-size: 0.9rem; }
.wide { overflow-x: auto; max-width: 100%; }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            return str(x)
        if x != 0.0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.4g}"
        return f"{x:,.4f}".rstrip("0").rstrip(".")
    return str(value)


STAT_COLUMNS: tuple[str, ...] = ("mean", "median", "std", "min", "p05", "p95", "max")


def summary_rows(analysis: Mapping[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """``(metric, unit, stats)`` for every entry of ``analysis`` that holds statistics."""
    rows = []
    for metric, stats in analysis.items():
        # The seed's names repeat other entries' statistics (SEED_METRIC_NAMES).
        if isinstance(stats, Mapping) and "mean" in stats and metric not in SEED_METRIC_NAMES:
            info = METRICS.get(metric)
            rows.append((metric, info.unit if info else "", dict(stats)))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_table(analysis: Mapping[str, Any]) -> str:
    rows = [
        [metric, unit, *(stats.get(c, float("nan")) for c in STAT_COLUMNS)]
        for metric, unit, stats in summary_rows(analysis)
    ]
    return _table(["metric", "unit", *STAT_COLUMNS], rows)


def _strategy_table(analysis: Mapping[str, Any]) -> str:
    shares = analysis.get("strategy_performance")
    if not isinstance(shares, Mapping) or not shares:
        return ""
    details = analysis.get("strategy_details")
    details = details if isinstance(details, Mapping) else {}
    names = {"none": "no winner (CFMM)", "phantom": "phantom (CFMM)"}
    rows = []
    for name, share in sorted(shares.items(), key=lambda kv: -float(kv[1])):
        extra = details.get(name, {})
        rows.append(
            [
                names.get(str(name), str(name)),
                f"{float(share):.1%}",
                extra.get("bid_shading", "") if extra else "",
                extra.get("profit_bps", "") if extra else "",
            ]
        )
    header = ["strategy", "auctions won", "mean bid shading (share)", "mean profit (bps)"]
    return "<h2>Winners by strategy</h2>" + _table(header, rows)


def _page(
    title: str,
    parameters: Mapping[str, Any],
    blocks: Sequence[str],
    sections: Sequence[_Section],
) -> str:
    figures = "".join(
        f"<h2>{html.escape(s.heading)}</h2><figure>"
        f'<img src="{html.escape(s.image)}" alt="{html.escape(s.heading)}">'
        f"<figcaption>{html.escape(s.caption)}</figcaption></figure>"
        for s in sections
    )
    params = (
        "<h2>Parameters</h2>" + _table(["parameter", "value"], list(parameters.items()))
        if parameters
        else ""
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(blocks)}{figures}{params}"
        "<p class='muted'>Generated by phantom-auction.</p></body></html>\n"
    )


def write_report(
    out_dir: str | Path,
    frame: pd.DataFrame,
    analysis: Mapping[str, Any],
    *,
    convergence: tuple[FloatArray, FloatArray] | None = None,
    convergence_unit: str = "bps over baseline",
    title: str = "Phantom auction Monte Carlo report",
    parameters: Mapping[str, Any] | None = None,
    improvement_cap_bps: float | None = None,
) -> Report:
    """Write ``index.html`` and its PNGs for one Monte Carlo run into ``out_dir``.

    ``frame`` is ``MonteCarloResults.to_frame()``, ``analysis`` is ``analyze_results``'s
    dict, ``convergence`` is ``results.convergence_paths(n)`` (time in ms, one path per
    row). Returns the page and the figure paths.
    """
    _pandas()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    sections: list[_Section] = []
    with _style():
        figures["improvement"] = plot_improvement(
            frame, out / "improvement_bps.png", cap_bps=improvement_cap_bps
        )
        sections.append(
            _Section(
                "Price improvement",
                "Improvement of the user's price over the CFMM baseline, in basis points; "
                "the legend gives the share of auctions left at 0 bps (CFMM price) and "
                "the share at the cap on bids (max_improvement_bps), where the last bar "
                "piles up.",
                "improvement_bps.png",
            )
        )
        figures["mev_capture"] = plot_mev_capture(frame, out / "mev_capture_rate.png")
        sections.append(
            _Section(
                "MEV capture rate",
                "User's improvement divided by the best real bidder's value over baseline, "
                "per auction (not clipped); the blue line is the run's headline, total "
                "improvement / total available surplus.",
                "mev_capture_rate.png",
            )
        )
        figures["clearing_price"] = plot_clearing_price(frame, out / "clearing_price.png")
        sections.append(
            _Section(
                "Clearing price",
                "Price the user receives versus the latent true price P* and the baseline.",
                "clearing_price.png",
            )
        )
        if convergence is not None:
            time_ms, paths = convergence
            figures["convergence"] = plot_convergence(
                time_ms, paths, out / "convergence.png", unit=convergence_unit
            )
            sections.append(
                _Section(
                    "Convergence",
                    "Best real bid standing at each moment of the collection window, in bps "
                    "over the baseline, for the first auctions of the run; the median in red.",
                    "convergence.png",
                )
            )
        figures["winners"] = plot_winners(frame, out / "winners.png")
        sections.append(
            _Section(
                "Winners and fills",
                "Left: which strategy won (a phantom ranked first sends its share to the "
                "CFMM at the baseline). Right: auctions split by whether a phantom ranked "
                "first and whether real bidders still filled part of the order; the "
                "legend gives every share. Below: the share of order volume filled by "
                "real bidders and left to the CFMM.",
                "winners.png",
            )
        )
    blocks = [
        f"<p class='muted'>{len(frame):,} simulated auctions.</p>",
        "<h2>Summary statistics</h2>",
        _summary_table(analysis),
        _strategy_table(analysis),
    ]
    page = out / "index.html"
    page.write_text(_page(title, parameters or {}, blocks, sections), encoding="utf-8")
    return Report(page, figures)


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
