"""The report of one Monte Carlo run (``simulate --report``, ``demo``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

from .figures import (
    _pandas,
    _style,
    plot_clearing_price,
    plot_convergence,
    plot_improvement,
    plot_mev_capture,
    plot_winners,
)
from .html import (
    Report,
    _page,
    _Section,
    _strategy_table,
    _summary_table,
)

FloatArray = NDArray[np.float64]


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
    rerun: str | None = None,
) -> Report:
    """Write ``index.html`` and its PNGs for one Monte Carlo run into ``out_dir``.

    ``frame`` is ``MonteCarloResults.to_frame()``, ``analysis`` is ``analyze_results``'s
    dict, ``convergence`` is ``results.convergence_paths(n)`` (time in ms, one path per
    row). ``rerun``: the command line that reproduces the run, shown on the page beside
    the parameters. Returns the page and the figure paths.
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
                "CFMM at the baseline). Right, the Auctions bar: auctions split by whether "
                "a phantom ranked first and whether real bidders still filled part of the "
                "order. The Order volume bar splits the order's volume in the same colours: "
                "solid, the part real bidders filled; hatched, the part sent to the CFMM at "
                "the baseline, by the kind of auction it came from. The legend gives every "
                "share.",
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
    page.write_text(_page(title, parameters or {}, blocks, sections, rerun=rerun), encoding="utf-8")
    return Report(page, figures)
