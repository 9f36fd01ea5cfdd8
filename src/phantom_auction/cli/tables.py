"""Terminal tables: numbers in compact form, the per-metric summary and winners by
strategy. Narrow terminals get fewer columns (everything is in ``--json``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.table import Table


def compact(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return str(x)
    if x != 0.0 and (abs(x) >= 1e9 or abs(x) < 10 ** (-digits)):
        return f"{x:.{digits}g}"
    # Compact: trailing zeros dropped, so tables fit an 80-column terminal.
    return f"{x:,.{digits}f}".rstrip("0").rstrip(".")


def significant(value: Any, digits: int = 5) -> str:
    """A statistic in at most ``digits`` significant digits (terminal tables)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "–" if math.isnan(x) else str(x)
    return f"{x:,.{digits}g}" if abs(x) < 10**digits else f"{x:,.0f}"


def summary_table(analysis: Mapping[str, Any], title: str, width: int) -> Table:
    """Per-metric statistics; narrow terminals get fewer columns (all are in --json)."""
    from ..report import METRICS, summary_rows

    columns = ["mean", "median", "std", "p05", "p95"]
    if width >= 110:
        columns = ["mean", "median", "std", "min", "p05", "p95", "max"]
    elif width < 96:
        columns.remove("std")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("metric", no_wrap=True)
    table.add_column("unit", style="dim", no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    pooled = []
    for metric, _, stats in summary_rows(analysis):
        info = METRICS.get(metric)
        # Prices sit near the baseline: a bps move needs 7 digits to show.
        digits = (7 if metric == "clearing_price" else 5) - (1 if width < 96 else 0)
        cells = [significant(stats.get(c, math.nan), digits) for c in columns]
        if "per_auction_mean" in stats:
            # A ratio's headline is its ratio of sums, not the mean of the column (the
            # CLI audit: 0.8204 shown beside a column whose mean is 0.8315).
            cells[columns.index("mean")] += "*"
            pooled.append(metric)
        table.add_row(metric, info.short if info else "", *cells)
    if pooled:
        table.caption = (
            f"* {', '.join(pooled)}: the mean is the ratio of sums over all auctions; "
            "the mean of the per-auction column is per_auction_mean (--json, summary files)"
        )
        table.caption_justify = "left"
    return table


def strategy_table(analysis: Mapping[str, Any]) -> Table | None:
    shares = analysis.get("strategy_performance")
    if not isinstance(shares, Mapping) or not shares:
        return None
    from ..report import share_interval

    details = analysis.get("strategy_details")
    details = details if isinstance(details, Mapping) else {}
    table = Table(title="Winners by strategy", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("strategy")
    table.add_column("auctions won", justify="right")
    table.add_column("95% CI", justify="right", no_wrap=True)
    table.add_column("mean bid shading", justify="right")
    table.add_column("mean profit (bps)", justify="right")
    for name, share in sorted(shares.items(), key=lambda kv: -float(kv[1])):
        extra = details.get(name, {})
        label = {"none": "no winner (CFMM)", "phantom": "phantom (CFMM)"}.get(str(name), name)
        table.add_row(
            str(label),
            f"{float(share):.1%}",
            share_interval(analysis, str(name)),
            significant(extra.get("bid_shading", math.nan)) if extra else "",
            significant(extra.get("profit_bps", math.nan)) if extra else "",
        )
    return table
