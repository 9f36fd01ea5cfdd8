"""The figure of ``phantom-auction learn``: what the Q-learners bid and what the user gets.

Banchio & Skrzypacz's claim is about bids (learners shade them in first-price auctions);
the user's question is about the price. So the figure has two panels over the auctions
played: the learners' mean bid / value, and the user's price over the baseline / value
(the user's mean improvement in the window, in units of the learners' common value).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .figures import _figure, _save, _style

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..simulation.learning import LearningRun

FloatArray = NDArray[np.float64]

#: Line colours per arm, matplotlib's first four (solid: no phantoms; dashed: phantoms).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def _band(ax: Axes, x: FloatArray, values: FloatArray, style: str, color: str, label: str) -> None:
    """Mean over seeds (rows) and a band of ± one sd over seeds."""
    mean = values.mean(axis=0)
    sd = values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    ax.plot(x, mean, style, color=color, label=label)
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)


def plot_learning(
    runs: Sequence[LearningRun], path: str | Path, *, value_bps: float = 100.0
) -> Path:
    """Two panels over the auctions played, per arm (mean over seeds, band ± 1 sd):
    the bid / value the learners played, and the user's price / value, i.e. the mean
    improvement over the baseline in the window divided by the common value
    ``value_bps`` (``banchio_skrzypacz``'s; 100 bps by default)."""
    with _style():
        fig, (bids, price) = _figure(8.0, 8.2, nrows=2)
        for i, run in enumerate(runs):
            color = _COLOURS[i % len(_COLOURS)]
            style = "--" if run.phantoms else "-"
            x = np.asarray(run.auctions, dtype=np.float64)
            played = np.atleast_2d(np.asarray(run.played, dtype=np.float64))
            improvement = np.atleast_2d(np.asarray(run.improvement_bps, dtype=np.float64))
            _band(bids, x, played, style, color, run.label)
            _band(price, x, improvement / value_bps, style, color, run.label)
        for ax in (bids, price):
            ax.axhline(1.0, color="grey", lw=0.8, ls=":")
            ax.set_ylim(0.0, 1.05)
        bids.set_title("Two Q-learners, common value, discrete bids (Banchio & Skrzypacz 2022)")
        bids.set_ylabel("bid / value played\n(mean over seeds, band ± 1 sd)")
        price.set_title("What the user gets")
        price.set_ylabel(
            f"price / value: improvement over the\nbaseline ÷ value ({value_bps:g} bps)"
        )
        price.set_xlabel("auctions played")
        price.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
        return _save(fig, Path(path))
