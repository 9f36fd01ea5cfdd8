"""The comparison figure of ``phantom-auction calibrate``: each model's level and its
paired difference to the reference (no phantoms) on the same auctions.

The candidates of a calibration run on common auctions, so the difference between two of
them is far more precise than either level: two unpaired intervals may overlap while the
paired difference is clearly above 0. The figure shows both, side by side, row by row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import _BLUE, _GREEN, _GREY, _RED, _figure, _save, _style

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _signed(x: float) -> str:
    text = f"{x:+.2f}"
    return "0.00" if float(text) == 0.0 else text


def paired_label(row: Mapping[str, Any]) -> str:
    """``+0.18 [+0.16, +0.21]``: a row's paired difference to the reference (bps)."""
    d = float(row.get("vs_reference_bps", math.nan))
    lo = float(row.get("vs_reference_ci95_low", math.nan))
    hi = float(row.get("vs_reference_ci95_high", math.nan))
    if not all(math.isfinite(v) for v in (d, lo, hi)):
        return "–"
    return f"{_signed(d)} [{_signed(lo)}, {_signed(hi)}]"


def calibration_comparison_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """The comparison of ``PhantomCalibration.table()`` rows (the first is the
    reference, "no phantoms"): left, each model's mean improvement over the baseline
    with its 95 % CI; right, its paired difference to the reference on the same auctions
    with the paired 95 % CI, green where the interval lies above 0, red below, and the
    difference in figures beside each row.

    Drawn in the report's style; the caller saves it (``fig.savefig``) or uses
    :func:`plot_calibration_comparison`.
    """
    if not rows:
        raise ValueError("the comparison has no rows to plot")
    with _style():
        return _draw(rows)


def _draw(rows: Sequence[Mapping[str, Any]]) -> Figure:
    from matplotlib.lines import Line2D

    n = len(rows)
    fig, (level, paired) = _figure(11.5, 0.5 * n + 2.6, ncols=2)
    y = np.arange(n, dtype=np.float64)[::-1]
    labels = [str(r["label"]) for r in rows]
    reference = labels[0]

    means = np.array([float(r["improvement_bps"]) for r in rows])
    lows = np.array([float(r["ci95_low"]) for r in rows])
    highs = np.array([float(r["ci95_high"]) for r in rows])
    level.errorbar(
        means, y, xerr=np.vstack([means - lows, highs - means]), fmt="o", color=_BLUE, capsize=4
    )
    level.set_yticks(y, labels, fontsize=8)
    level.set_xlabel("bps over the baseline (95% CI)")
    level.set_title("Mean improvement")
    level.grid(axis="y", visible=False)

    for yi, row in zip(y, rows, strict=True):
        d = float(row.get("vs_reference_bps", math.nan))
        lo = float(row.get("vs_reference_ci95_low", math.nan))
        hi = float(row.get("vs_reference_ci95_high", math.nan))
        if row is rows[0] or not all(math.isfinite(v) for v in (d, lo, hi)):
            continue
        color = _GREEN if lo > 0.0 else _RED if hi < 0.0 else _GREY
        paired.errorbar([d], [yi], xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=4)
    paired.axvline(0.0, color="black", lw=1.0, ls="--")
    ticks = ["reference", *(paired_label(r) for r in rows[1:])]
    paired.set_yticks(y, ticks, fontsize=8)
    paired.yaxis.tick_right()
    paired.set_xlabel("bps, same auctions (paired 95% CI)")
    paired.set_title(f"Difference to {reference}")
    paired.grid(axis="y", visible=False)
    for ax in (level, paired):
        ax.set_ylim(-0.6, n - 0.4)
    handles = [
        Line2D([], [], marker="o", ls="none", color=_GREEN, label="better (interval above 0)"),
        Line2D([], [], marker="o", ls="none", color=_RED, label="worse (interval below 0)"),
        Line2D([], [], marker="o", ls="none", color=_GREY, label="interval overlaps 0"),
    ]
    paired.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8
    )
    fig.suptitle("User's improvement by phantom model", fontsize=11, fontweight="bold")
    return fig


def plot_calibration_comparison(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """:func:`calibration_comparison_figure` saved as a PNG at ``path``."""
    fig = calibration_comparison_figure(rows)
    with _style():
        return _save(fig, Path(path))
