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
from ..simulation.streaming import RATIO_HEADLINES

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
       max-width: 1200px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.55rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f5f8; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; margin-top: 0.3rem; }
.muted { color: #666; font-size: 0.9rem; }
.wide { overflow-x: auto; max-width: 100%; }
pre.rerun { background: #f4f6f8; padding: 0.6rem 0.8rem; font-size: 0.85rem;
            white-space: pre-wrap; overflow-wrap: anywhere; }
"""


#: Shown for a missing value or NaN (as the terminal tables show it).
DASH = "–"
#: A value closer to 0 than this is shown as 0 (float noise such as 7.1e-15).
ZERO_TOLERANCE = 1e-9


def _fmt(value: Any) -> str:
    """A value as a person reads it: thousands separators, an en dash for a missing
    value or NaN, no negative zero, float noise around 0 shown as 0."""
    if value is None:
        return DASH
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return _fmt_float(float(value))
    return str(value)


def _fmt_float(x: float) -> str:
    if math.isnan(x):
        return DASH
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if abs(x) < ZERO_TOLERANCE:
        return "0"
    if abs(x) >= 1e15:
        text = f"{x:.4g}"
    elif abs(x) >= 1e6:
        text = f"{x:,.0f}"
    elif abs(x) < 1e-3:
        # Positional, not "1.3e-05": four significant digits.
        text = np.format_float_positional(x, precision=4, unique=False, fractional=False)
        text = text.rstrip("0").rstrip(".")
    else:
        text = f"{x:,.4f}".rstrip("0").rstrip(".")
    # A value that rounds to zero is 0, whatever its sign was.
    return "0" if text.lstrip("-").strip("0.,") == "" else text


def _is_seed(name: str) -> bool:
    """A seed's name (``seed``, ``simulation.seed``): shown as a plain integer, as
    ``--seed`` takes it (no thousands separators to paste)."""
    return str(name).rpartition(".")[2] == "seed"


def _fmt_named(name: str, value: Any) -> str:
    """``value`` formatted for the column or parameter ``name``: a seed as it is typed."""
    if _is_seed(name) and isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if math.isfinite(number) and number == int(number) and not isinstance(value, bool):
            return str(int(number))
    return _fmt(value)


def _ci_text(low: Any, high: Any) -> str:
    """``[low, high]``, or an en dash where the interval is missing."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        return DASH
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return DASH
    # A no-break space: the interval stays on one line in a narrow column.
    return f"[{_fmt(lo)},\u00a0{_fmt(hi)}]"


def share_interval(analysis: Mapping[str, Any], name: str) -> str:
    """``low–high%``: ``name``'s win share's 95 % interval in percent
    (``strategy_performance_ci95``), or an empty cell where there is none."""
    intervals = analysis.get("strategy_performance_ci95")
    found = intervals.get(name) if isinstance(intervals, Mapping) else None
    if not isinstance(found, Mapping):
        return ""
    low, high = float(found.get("ci95_low", math.nan)), float(found.get("ci95_high", math.nan))
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"{100 * low:.1f}–{100 * high:.1f}%"


STAT_COLUMNS: tuple[str, ...] = ("mean", "median", "std", "min", "p05", "p95", "max")
#: The column of the summary table holding the 95 % confidence interval of the mean.
CI_COLUMN = "95% CI of the mean"


def summary_rows(analysis: Mapping[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    """``(metric, unit, stats)`` for every entry of ``analysis`` that holds statistics."""
    rows = []
    for metric, stats in analysis.items():
        # The seed's names repeat other entries' statistics (SEED_METRIC_NAMES).
        if isinstance(stats, Mapping) and "mean" in stats and metric not in SEED_METRIC_NAMES:
            info = METRICS.get(metric)
            rows.append((metric, info.unit if info else "", dict(stats)))
    return rows


def _table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, names: Sequence[str] | None = None
) -> str:
    """An HTML table; ``names``: each column's name, for values formatted by name (a
    seed column is shown as plain integers), else the header."""
    keys = list(names) if names is not None else [str(h) for h in header]
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_fmt_named(keys[i] if i < len(keys) else '', v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ci_note(analysis: Mapping[str, Any]) -> str:
    """How the intervals of the summary table were computed (``analyze_results``)."""
    method = analysis.get("ci_method")
    ratios = ", ".join(m for m in RATIO_HEADLINES if isinstance(analysis.get(m), Mapping))
    ratio_note = (
        f" For {ratios} the mean is the ratio of sums over the auctions and its interval "
        "comes from the delta method."
        if ratios
        else ""
    )
    if not isinstance(method, str) or not method:
        return (
            f"<p class='muted'>{CI_COLUMN}: as analyze_results computed it; a dash "
            f"({DASH}) where it was not computed.{html.escape(ratio_note)}</p>"
        )
    if "batch" in method:
        text = (
            f"{CI_COLUMN}: by {method}, not Student's t over single auctions: the auctions "
            "are not independent (bidders learn across them), so the interval comes from "
            "the means of consecutive batches of auctions." + ratio_note
        )
    else:
        text = (
            f"{CI_COLUMN}: {method}; Wilson's score interval for an event (phantom_won) "
            "and for the shares of auctions won." + ratio_note
        )
    return f"<p class='muted'>{html.escape(text)} A dash ({DASH}): no interval.</p>"


def _summary_table(analysis: Mapping[str, Any]) -> str:
    """Each metric's statistics, with the 95 % CI of its mean beside the mean."""
    header = ["metric", "unit", "mean", CI_COLUMN, *STAT_COLUMNS[1:]]
    rows = [
        [
            metric,
            unit,
            stats.get("mean", math.nan),
            _ci_text(stats.get("ci95_low"), stats.get("ci95_high")),
            *(stats.get(c, math.nan) for c in STAT_COLUMNS[1:]),
        ]
        for metric, unit, stats in summary_rows(analysis)
    ]
    # A wide table scrolls inside its box instead of running off the page.
    return "<div class='wide'>" + _table(header, rows) + "</div>" + _ci_note(analysis)


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
                share_interval(analysis, str(name)),
                extra.get("bid_shading", "") if extra else "",
                extra.get("profit_bps", "") if extra else "",
            ]
        )
    header = [
        "strategy",
        "auctions won",
        "95% CI",
        "mean bid shading (share)",
        "mean profit (bps)",
    ]
    return "<h2>Winners by strategy</h2>" + _table(header, rows)


def _rerun_block(rerun: str | None) -> str:
    """The command line that reproduces the report, as a block to copy."""
    if not rerun:
        return ""
    return f"<pre class='rerun'>Rerun: {html.escape(rerun)}</pre>"


def _parameter_rows(parameters: Mapping[str, Any]) -> list[list[str]]:
    """``[name, value]`` rows, each value formatted for its name (a seed as typed)."""
    return [[str(name), _fmt_named(str(name), value)] for name, value in parameters.items()]


def _page(
    title: str,
    parameters: Mapping[str, Any],
    blocks: Sequence[str],
    sections: Sequence[_Section],
    *,
    rerun: str | None = None,
) -> str:
    figures = "".join(
        f"<h2>{html.escape(s.heading)}</h2><figure>"
        f'<img src="{html.escape(s.image)}" alt="{html.escape(s.heading)}">'
        f"<figcaption>{html.escape(s.caption)}</figcaption></figure>"
        for s in sections
    )
    params = (
        "<h2>Parameters</h2>"
        + _rerun_block(rerun)
        + (_table(["parameter", "value"], _parameter_rows(parameters)) if parameters else "")
        if parameters or rerun
        else ""
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{''.join(blocks)}{figures}{params}"
        "<p class='muted'>Generated by phantom-auction.</p></body></html>\n"
    )
