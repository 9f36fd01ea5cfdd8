"""Figures of a run: matplotlib on its own Agg canvas, the shared style and labels."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from .._extras import require
from ..simulation.results import METRICS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FloatArray = NDArray[np.float64]


_BLUE = "#2f6db5"
_ORANGE = "#e07b25"
_LIGHT_ORANGE = "#f0b27a"
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


def wrapped(label: str, width: int = 42) -> str:
    """``label`` broken into lines of at most ``width`` characters, so that a long axis
    or colour-bar label stays inside the figure instead of running past its edge."""
    return textwrap.fill(label, width=width, break_long_words=False, break_on_hyphens=False)


def percent(share: float) -> str:
    """A share as a person reads it: one decimal, never "0%" for a share that is not 0
    nor "100%" for one that is not 1 (``<0.1%``, ``>99.9%``)."""
    if not math.isfinite(share):
        return "–"
    if share <= 0.0:
        return "0%"
    if share >= 1.0:
        return "100%"
    if share < 0.0005:
        return "<0.1%"
    if share > 0.9995:
        return ">99.9%"
    return f"{share:.1%}"


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


def _figure(
    width: float, height: float, *, ncols: int = 1, nrows: int = 1
) -> tuple[Figure, list[Axes]]:
    """A figure on its own Agg canvas: no pyplot, so nothing global and no display needed.
    Its axes in reading order; panels stacked in rows share the x axis."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex="col" if nrows > 1 else False)
    return fig, list(axes.ravel())


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
    span = float(edges[-1] - edges[0]) or 1.0
    for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
        if count > top:
            # Beside the cut bar, on the side with room: a label right of a bar near the
            # right edge ran past the axes.
            inward = (left + right) / 2 - edges[0] > 0.7 * span
            ax.annotate(
                f"{int(count):,} ↑",
                ((left + right) / 2, top),
                xytext=(-3, -4) if inward else (3, -4),
                textcoords="offset points",
                ha="right" if inward else "left",
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
        zero_label = f"{percent(zero_share)} of auctions at 0 bps (CFMM)"
        _histogram(ax, values, color=_BLUE, label=zero_label)
        _mean_median_lines(ax, values, "bps")
        if cap_bps is not None and math.isfinite(cap_bps):
            at_cap = float(np.mean(np.isclose(values, cap_bps, rtol=0.0, atol=1e-6)))
            if at_cap > 0.0:
                ax.axvline(
                    cap_bps,
                    color=_ORANGE,
                    lw=1.5,
                    ls=":",
                    label=f"{percent(at_cap)} at the {cap_bps:g} bps cap (max_improvement_bps)",
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
    fig, (ax,) = _figure(7.5, 4.6)
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
        # Under the axes: in the upper corner it covered the count of a cut bar.
        _legend_below(ax, ncol=3)
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


#: The kinds of auction of the "Phantom vs real fills" panel, in the order drawn.
FILL_KINDS: tuple[tuple[str, str], ...] = (
    ("filled by real bidders, no phantom first", _BLUE),
    ("phantom first, real bidders filled part", _LIGHT_ORANGE),
    ("phantom first, all to the CFMM at baseline", _ORANGE),
    ("no fill (CFMM at baseline)", _GREY),
)
#: The hatch of order volume sent to the CFMM at the baseline.
CFMM_HATCH = "///"


def fill_breakdown(frame: pd.DataFrame) -> list[tuple[str, str, float, float, float]]:
    """``(kind, colour, share of auctions, share of volume to real bidders, share of
    volume to the CFMM)`` per kind of :data:`FILL_KINDS`; each share is of the whole
    run, so the auction shares sum to 1 and so do the two volume shares over the kinds.

    A phantom ranked first sends its share to the CFMM; real bids below it may still
    fill the rest, so "phantom first" splits into partly filled and all to the CFMM.
    The unfilled rest of an auction without a phantom first goes to the CFMM too: the
    volume bar tells these causes apart instead of colouring all of it as the phantoms'.
    """
    n = len(frame)
    phantom = np.asarray(frame["phantom_won"], dtype=bool)
    fill = np.clip(np.nan_to_num(np.asarray(frame["real_fill_fraction"], dtype=np.float64)), 0, 1)
    masks = (
        ~phantom & (fill > 0),
        phantom & (fill > 0),
        phantom & (fill == 0),
        ~phantom & (fill == 0),
    )
    out = []
    for (kind, color), mask in zip(FILL_KINDS, masks, strict=True):
        if n == 0:
            out.append((kind, color, 0.0, 0.0, 0.0))
            continue
        out.append(
            (
                kind,
                color,
                float(np.sum(mask)) / n,
                float(np.sum(fill[mask])) / n,
                float(np.sum(1.0 - fill[mask])) / n,
            )
        )
    return out


def plot_winners(frame: pd.DataFrame, path: Path) -> Path:
    """Win share by strategy, and how auctions and order volume split real vs phantom."""
    from matplotlib.patches import Patch

    fig, (left, right) = _figure(11.0, 4.8, ncols=2)

    shares = _winner_shares(frame)
    colors = [
        _ORANGE if "phantom" in name.lower() else _GREY if name == "no winner" else _BLUE
        for name in shares.index
    ]
    names = ["phantom ranked first" if name == "phantom" else name for name in shares.index]
    left.barh(names, shares.to_numpy(), color=colors)
    for y, share in enumerate(shares.to_numpy(dtype=np.float64).tolist()):
        left.text(share, y, f" {percent(share)}", va="center", fontsize=9)
    left.set_xlim(0.0, min(1.0, float(shares.max()) * 1.25 + 0.02) if shares.size else 1.0)
    left.set_title("Win share by winner strategy")
    left.set_xlabel("Share of auctions won")
    left.grid(axis="y", visible=False)

    breakdown = fill_breakdown(frame)
    auctions_row, volume_row = 0, 1
    handles = []
    edge = 0.0
    for kind, color, share, _, to_cfmm in breakdown:
        right.barh(auctions_row, share, left=edge, color=color)
        # Inside the bar only where it fits; the legend carries every share, so a band
        # too thin to see is still read.
        if share >= 0.1:
            right.text(edge + share / 2, auctions_row, percent(share), ha="center", va="center")
        edge += share
        volume = f"; volume to the CFMM {percent(to_cfmm)}" if to_cfmm > 0 else ""
        handles.append(Patch(color=color, label=f"{kind}: {percent(share)} of auctions{volume}"))
    # The order's volume: first the parts real bidders filled, then the parts sent to the
    # CFMM (hatched), each in the colour of the kind of auction it comes from.
    edge = 0.0
    for _, color, _, to_real, _ in breakdown:
        if to_real > 0:
            right.barh(volume_row, to_real, left=edge, color=color)
            edge += to_real
    for _, color, _, _, to_cfmm in breakdown:
        if to_cfmm > 0:
            right.barh(
                volume_row,
                to_cfmm,
                left=edge,
                color=color,
                hatch=CFMM_HATCH,
                edgecolor="white",
                linewidth=0.0,
            )
            edge += to_cfmm
    real_volume = sum(item[3] for item in breakdown)
    cfmm_volume = sum(item[4] for item in breakdown)
    handles.append(
        Patch(
            facecolor="white",
            edgecolor=_GREY,
            hatch=CFMM_HATCH,
            label="hatched: order volume sent to the CFMM at the baseline",
        )
    )
    right.set_yticks(
        [auctions_row, volume_row],
        ["Auctions", f"Order volume\nreal {percent(real_volume)}\nCFMM {percent(cfmm_volume)}"],
    )
    right.set_xlim(0.0, 1.0)
    right.set_title("Phantom vs real fills")
    right.set_xlabel("Share")
    right.grid(axis="y", visible=False)
    right.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, fontsize=8
    )
    return _save(fig, path)
