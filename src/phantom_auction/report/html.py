"""The HTML page around the figures: tables, sections, the self-contained page."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..simulation.results import METRICS, SEED_METRIC_NAMES

FloatArray = NDArray[np.float64]


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
