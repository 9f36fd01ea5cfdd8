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

``calibration_comparison_figure`` draws ``calibrate``'s comparison (each model's level
and its paired difference to no phantoms); ``plot_learning`` draws ``learn``'s figure
(bid / value and the user's price / value over the auctions played).

matplotlib and pandas come with the ``reports`` extra; without them every entry point
raises :class:`phantom_auction._extras.MissingExtra` naming the ``pip install`` line.
"""

from ..simulation.results import METRICS
from .calibrate import calibration_comparison_figure, plot_calibration_comparison
from .figures import (
    metric_label,
    plot_clearing_price,
    plot_convergence,
    plot_improvement,
    plot_mev_capture,
    plot_winners,
)
from .html import Report, share_interval, summary_rows
from .learning import plot_learning
from .run import write_report
from .sweep import plot_sweep_heatmap, plot_sweep_line, write_sweep_report

__all__ = [
    "METRICS",
    "Report",
    "calibration_comparison_figure",
    "metric_label",
    "plot_calibration_comparison",
    "plot_clearing_price",
    "plot_convergence",
    "plot_improvement",
    "plot_learning",
    "plot_mev_capture",
    "plot_sweep_heatmap",
    "plot_sweep_line",
    "plot_winners",
    "share_interval",
    "summary_rows",
    "write_report",
    "write_sweep_report",
]
