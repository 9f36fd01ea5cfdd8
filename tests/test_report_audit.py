"""The report defects an outside audit found: each test fails on the report before its fix.

Figures are checked through their artists (colours, widths, texts and where they sit),
not their pixels: every plotting function saves through ``_save``, which the ``drawn``
fixture wraps to keep each figure.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from phantom_auction import report
from phantom_auction.report import calibrate as report_calibrate
from phantom_auction.report import figures as report_figures
from phantom_auction.report import learning as report_learning
from phantom_auction.report import sweep as report_sweep
from phantom_auction.report.figures import _GREY, _ORANGE, fill_breakdown, percent
from phantom_auction.report.html import _fmt

from .test_report import synthetic_analysis, synthetic_frame


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """Every figure saved while the test runs, by file name."""
    figures: dict[str, Figure] = {}
    real = report_figures._save

    def keep(fig: Figure, path: Path) -> Path:
        figures[Path(path).name] = fig
        return real(fig, path)

    for module in (report_figures, report_sweep, report_calibrate, report_learning):
        monkeypatch.setattr(module, "_save", keep)
    return figures


def texts_outside(fig: Figure, within: Any = None) -> list[str]:
    """What of ``fig`` runs past ``within`` (an Axes: its texts; default: the figure,
    everything drawn) by more than a pixel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    if within is not None:
        box = within.get_window_extent(renderer)
        out = []
        for text in within.texts:
            if not text.get_visible() or not text.get_text().strip():
                continue
            ext = text.get_window_extent(renderer)
            if (
                ext.x0 < box.x0 - 1
                or ext.x1 > box.x1 + 1
                or ext.y0 < box.y0 - 1
                or ext.y1 > box.y1 + 1
            ):
                out.append(text.get_text())
        return out
    # The tight box holds every artist drawn (tick labels, axis and colour-bar labels).
    tight = fig.get_tightbbox(renderer)
    width, height = fig.get_size_inches()
    slack = 1.0 / fig.dpi
    if (
        tight.x0 < -slack
        or tight.y0 < -slack
        or tight.x1 > width + slack
        or tight.y1 > height + slack
    ):
        labels = [ax.get_ylabel() for ax in fig.axes] + [ax.get_xlabel() for ax in fig.axes]
        return [f"drawn past the figure: {tight} of {width} x {height} in; labels {labels}"]
    return []


def volume_patches(fig: Figure) -> list[tuple[str, float]]:
    """``(colour, width)`` of each segment of the "Order volume" bar (y = 1)."""
    right = fig.axes[1]
    return [
        (to_hex(p.get_facecolor()), p.get_width())
        for p in right.patches
        if abs(p.get_y() + p.get_height() / 2 - 1.0) < 1e-9 and p.get_width() > 0
    ]


# -- 1. the "Phantom vs real fills" panel and the shares in legends -----------------


def zero_phantom_frame(n: int = 1_000, no_fill: int = 176) -> pd.DataFrame:
    frame = synthetic_frame(n).assign(phantom_won=False, winner_strategy="aggressive")
    fill = np.ones(n)
    fill[:no_fill] = 0.0
    frame["real_fill_fraction"] = fill
    frame.loc[: no_fill - 1, "winner_strategy"] = "none"
    return frame


def test_volume_without_phantoms_is_not_coloured_as_the_phantoms(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    frame = zero_phantom_frame()
    report.plot_winners(frame, tmp_path / "winners.png")
    segments = volume_patches(drawn["winners.png"])
    # No phantom ranked first: nothing in the phantom colour; the 17.6% sent to the CFMM
    # is the auctions with no fill, in their (grey) colour.
    assert not [w for colour, w in segments if colour == _ORANGE]
    grey = sum(w for colour, w in segments if colour == _GREY)
    assert grey == pytest.approx(0.176)
    assert sum(w for _, w in segments) == pytest.approx(1.0)
    kinds = {kind: (share, real, cfmm) for kind, _, share, real, cfmm in fill_breakdown(frame)}
    assert kinds["no fill (CFMM at baseline)"] == pytest.approx((0.176, 0.0, 0.176))
    assert kinds["phantom first, all to the CFMM at baseline"] == (0.0, 0.0, 0.0)


def test_volume_split_by_cause_with_phantoms_and_partial_fills() -> None:
    frame = pd.DataFrame(
        {
            "phantom_won": [True, True, False, False],
            "real_fill_fraction": [0.0, 0.5, 0.75, 0.0],
            "winner_strategy": ["phantom", "phantom", "aggressive", "none"],
        }
    )
    rows = fill_breakdown(frame)
    assert [r[2] for r in rows] == [0.25, 0.25, 0.25, 0.25]
    # Real volume: 0.75 (no phantom first) + 0.5 (phantom first, part filled), of 4.
    assert [r[3] for r in rows] == pytest.approx([0.75 / 4, 0.5 / 4, 0.0, 0.0])
    assert [r[4] for r in rows] == pytest.approx([0.25 / 4, 0.5 / 4, 1 / 4, 1 / 4])


def test_auction_bar_labels_match_the_legend_and_stay_inside(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    frame = zero_phantom_frame(n=1_000, no_fill=4)  # 99.6% filled, 0.4% no fill
    report.plot_winners(frame, tmp_path / "winners.png")
    fig = drawn["winners.png"]
    right = fig.axes[1]
    labels = [t.get_text() for t in right.texts]
    assert "99.6%" in labels and "100%" not in labels
    legend = [t.get_text() for t in right.get_legend().get_texts()]
    assert any("99.6% of auctions" in t for t in legend)
    assert any("0.4% of auctions" in t for t in legend)
    assert texts_outside(fig, right) == []
    assert texts_outside(fig) == []


def test_winners_caption_describes_panels_that_exist(tmp_path: Path) -> None:
    frame = synthetic_frame(300)
    page = report.write_report(tmp_path, frame, synthetic_analysis(frame)).html.read_text()
    caption = re.search(r"winners\.png.*?<figcaption>(.*?)</figcaption>", page, re.S)
    assert caption is not None
    assert "Below" not in caption.group(1) and "Order volume" in caption.group(1)


def test_small_shares_are_not_shown_as_zero(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    assert percent(0.004) == "0.4%" and percent(0.0002) == "<0.1%" and percent(0.0) == "0%"
    assert percent(0.9996) == ">99.9%" and percent(1.0) == "100%"
    values = np.r_[np.zeros(4), np.linspace(10.0, 50.0, 996)]
    report.plot_improvement(pd.DataFrame({"improvement_bps": values}), tmp_path / "i.png")
    legend = [t.get_text() for t in drawn["i.png"].axes[0].get_legend().get_texts()]
    assert "0.4% of auctions at 0 bps (CFMM)" in legend


def test_cut_bar_count_does_not_overlap_the_legend(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    frame = synthetic_frame(4_000)
    frame.loc[:2_000, "clearing_price"] = 100.5  # a spike: its bar is cut and labelled
    report.plot_clearing_price(frame, tmp_path / "c.png")
    fig = drawn["c.png"]
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    counts = [t for t in ax.texts if "↑" in t.get_text()]
    assert counts
    legend = ax.get_legend().get_window_extent(renderer)
    for text in counts:
        assert not text.get_window_extent(renderer).overlaps(legend)
    assert texts_outside(fig, ax) == []


# -- 2. confidence intervals in the summary and grid tables -------------------------


def analysis_with_ci(ci_method: str) -> dict[str, Any]:
    return {
        "improvement_bps": {
            "mean": 37.7596,
            "ci95_low": 37.2935,
            "ci95_high": 38.2256,
            "sem": 0.2376,
            "median": 39.13,
            "std": 10.6,
            "min": 0.0,
            "max": 50.0,
            "p05": 19.2,
            "p95": 50.0,
        },
        "mev_capture_rate": {"mean": 0.8, "ci95_low": math.nan, "ci95_high": math.nan},
        "ci_method": ci_method,
    }


def test_summary_table_gives_the_ci_of_the_mean(tmp_path: Path) -> None:
    frame = synthetic_frame(200)
    written = report.write_report(
        tmp_path, frame, analysis_with_ci("independent auctions (Student t)")
    )
    page = written.html.read_text()
    assert "<th>95% CI of the mean</th>" in page
    assert "<td>[37.2935,\u00a038.2256]</td>" in page
    assert "Wilson" in page and "independent auctions (Student t)" in page
    # A missing interval is a dash, not "nan".
    assert "nan" not in page.lower().replace("nanosec", "")


def test_summary_table_names_batch_means(tmp_path: Path) -> None:
    frame = synthetic_frame(200)
    method = "batch means (20 batches, Student t)"
    page = report.write_report(tmp_path, frame, analysis_with_ci(method)).html.read_text()
    assert method in page and "not Student&#x27;s t over single auctions" in page


def test_sweep_grid_gives_the_ci_of_the_mean(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "num_phantom_bidders": [0, 5],
            "num_auctions": [2000, 2000],
            "improvement_bps_mean": [37.76, 38.25],
            "improvement_bps_ci95_low": [37.29, 37.82],
            "improvement_bps_ci95_high": [38.23, 38.68],
        }
    )
    page = report.write_sweep_report(tmp_path, table, ["num_phantom_bidders"]).html.read_text()
    assert "<th>improvement_bps 95% CI</th>" in page
    assert "<td>[37.29,\u00a038.23]</td>" in page and "<td>[37.82,\u00a038.68]</td>" in page


# -- 3. sweep bands from the table's own interval, combined over other fields --------


def test_band_is_the_tables_asymmetric_interval(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    table = pd.DataFrame(
        {
            "num_phantom_bidders": [0, 5, 10],
            "num_auctions": [5000, 5000, 5000],
            "phantom_won_mean": [0.0, 0.0, 0.0],
            "phantom_won_ci95_low": [0.0, 0.0, 0.0],
            "phantom_won_ci95_high": [0.00077, 0.00077, 0.00077],
        }
    )
    report.plot_sweep_line(table, "num_phantom_bidders", "phantom_won", tmp_path / "p.png")
    ax = drawn["p.png"].axes[0]
    (band,) = ax.collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    assert ys.min() == pytest.approx(0.0) and ys.max() == pytest.approx(0.00077)


def test_band_over_other_fields_is_conservative_and_says_so(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    # The grid points share a seed, so the cells are correlated: the mean of 4 means of
    # half-width h has a half-width of at most h (all correlations 1), at least h / 2
    # (independent). The band takes the bound that always holds and is labelled so; a
    # Wilson interval [0, 0.0019] per cell stays [0, 0.0019], never below 0.
    grid = pd.MultiIndex.from_product(
        [[0.1, 0.8], [0, 10], [0.5, 0.9]], names=["volatility", "num_phantom_bidders", "liquidity"]
    ).to_frame(index=False)
    table = grid.assign(
        num_auctions=2000,
        phantom_won_mean=0.0,
        phantom_won_ci95_low=0.0,
        phantom_won_ci95_high=0.0019,
    )
    report.plot_sweep_line(table, "volatility", "phantom_won", tmp_path / "w.png")
    ax = drawn["w.png"].axes[0]
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    assert ys.min() == pytest.approx(0.0) and ys.max() == pytest.approx(0.0019)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "95% CI of the mean, conservative (cells share a seed)" in legend
    page = report.write_sweep_report(tmp_path, table, list(grid.columns)).html.read_text()
    assert "share a seed (common random numbers)" in page
    assert report_sweep._combined(
        np.array([1.0, 2.0]), np.array([0.0, 1.5]), np.array([2.0, 2.5])
    ) == pytest.approx((1.5, 0.75, 2.25))


def test_maximum_is_marked_only_when_its_interval_clears_the_others(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    def table(highest: float) -> pd.DataFrame:
        means = np.array([447.0, 447.5, highest])
        return pd.DataFrame(
            {
                "num_phantom_bidders": [0, 5, 10],
                "num_auctions": [2000] * 3,
                "welfare_mean": means,
                "welfare_ci95_low": means - 3.5,
                "welfare_ci95_high": means + 3.5,
            }
        )

    report.plot_sweep_line(table(448.3), "num_phantom_bidders", "welfare", tmp_path / "a.png")
    assert not [t for t in drawn["a.png"].axes[0].texts if "max at" in t.get_text()]
    report.plot_sweep_line(table(460.0), "num_phantom_bidders", "welfare", tmp_path / "b.png")
    marks = [t.get_text() for t in drawn["b.png"].axes[0].texts if "max at" in t.get_text()]
    assert marks == ["max at num_phantom_bidders = 10"]


# -- 4. clearing prices readable ---------------------------------------------------


def price_table(fields: dict[str, list[Any]]) -> pd.DataFrame:
    grid = pd.MultiIndex.from_product(list(fields.values()), names=list(fields)).to_frame(
        index=False
    )
    mean = 100.3776 + 0.0025 * np.arange(len(grid))
    return grid.assign(
        num_auctions=2000,
        clearing_price_mean=mean,
        clearing_price_ci95_low=mean - 0.0047,
        clearing_price_ci95_high=mean + 0.0047,
    )


def test_clearing_price_line_has_no_offset(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    table = price_table({"num_phantom_bidders": [0, 2, 5, 10]})
    report.plot_sweep_line(table, "num_phantom_bidders", "clearing_price", tmp_path / "p.png")
    fig = drawn["p.png"]
    fig.canvas.draw()
    axis = fig.axes[0].yaxis
    assert axis.get_major_formatter().get_offset() == ""  # type: ignore[attr-defined]
    labels = [t.get_text() for t in axis.get_ticklabels() if t.get_text()]
    assert labels and all(label.startswith("100.3") for label in labels)


def test_clearing_price_by_category_does_not_start_at_zero(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    table = price_table({"mechanism": ["vickrey", "uniform", "discriminatory"]})
    report.plot_sweep_line(table, "mechanism", "clearing_price", tmp_path / "m.png")
    ax = drawn["m.png"].axes[0]
    assert ax.get_ylim()[0] > 100.0
    assert not [p for p in ax.patches if p.get_height() > 50]  # no bars from 0


def test_clearing_price_heatmap_cells_in_full(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    table = price_table({"num_phantom_bidders": [0, 5], "volatility": [0.1, 0.8]})
    report.plot_sweep_heatmap(
        table, ("num_phantom_bidders", "volatility"), "clearing_price", tmp_path / "h.png"
    )
    fig = drawn["h.png"]
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert "100.3776\n±0.0047" in cells and "100" not in cells
    fig.canvas.draw()
    colorbar_axis = fig.axes[1].yaxis
    assert colorbar_axis.get_major_formatter().get_offset() == ""  # type: ignore[attr-defined]


# -- 5. heatmaps: uncertainty in each cell, scales of shares ------------------------


def test_heatmap_cells_carry_their_ci_and_the_scale_spans_it(
    tmp_path: Path, drawn: dict[str, Figure]
) -> None:
    table = pd.DataFrame(
        {
            "num_phantom_bidders": [0, 0, 5, 5],
            "volatility": [0.1, 0.8, 0.1, 0.8],
            "num_auctions": [2000] * 4,
            "improvement_bps_mean": [38.9, 39.0, 39.1, 39.0],
            "improvement_bps_ci95_low": [38.5, 38.6, 38.7, 38.6],
            "improvement_bps_ci95_high": [39.3, 39.4, 39.5, 39.4],
        }
    )
    report.plot_sweep_heatmap(
        table, ("num_phantom_bidders", "volatility"), "improvement_bps", tmp_path / "h.png"
    )
    fig = drawn["h.png"]
    assert "39.00\n±0.40" in [t.get_text() for t in fig.axes[0].texts]
    (image,) = fig.axes[0].images
    low, high = image.get_clim()
    # 38.9 to 39.1 is within one interval (0.8 wide): they must not span the whole scale.
    assert high - low >= 0.8 - 1e-9


def test_share_heatmap_scale_is_never_negative(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    table = pd.DataFrame(
        {
            "num_phantom_bidders": [0, 0, 0, 0],
            "volatility": [0.1, 0.8, 0.1, 0.8],
            "liquidity": [0.5, 0.5, 0.9, 0.9],
            "num_auctions": [2000] * 4,
            "phantom_won_mean": [0.0] * 4,
            "phantom_won_ci95_low": [0.0] * 4,
            "phantom_won_ci95_high": [0.0019] * 4,
        }
    )
    report.plot_sweep_heatmap(table, ("liquidity", "volatility"), "phantom_won", tmp_path / "h.png")
    (image,) = drawn["h.png"].axes[0].images
    low, high = image.get_clim()
    assert low == 0.0 and 0.0 < high <= 1.0
    cells = [t.get_text() for t in drawn["h.png"].axes[0].texts]
    assert cells and all("[0.0000, 0.0019]" in c for c in cells)
    assert report_sweep.colour_range(
        np.zeros(3), np.zeros(3), np.zeros(3), share=True
    ) == pytest.approx((0.0, 1.0))


# -- 6. labels inside the figure ----------------------------------------------------


@pytest.mark.parametrize("metric", ["mev_capture_rate", "price_discovery_efficiency"])
def test_sweep_labels_fit_in_the_figure(
    tmp_path: Path, drawn: dict[str, Figure], metric: str
) -> None:
    table = pd.DataFrame(
        {
            "num_phantom_bidders": [0, 5, 0, 5],
            "volatility": [0.1, 0.1, 0.8, 0.8],
            "num_auctions": [2000] * 4,
            f"{metric}_mean": [0.80, 0.81, 0.79, 0.82],
            f"{metric}_ci95_low": [0.79, 0.80, 0.78, 0.81],
            f"{metric}_ci95_high": [0.81, 0.82, 0.80, 0.83],
        }
    )
    report.plot_sweep_line(table, "num_phantom_bidders", metric, tmp_path / "l.png")
    report.plot_sweep_heatmap(
        table, ("num_phantom_bidders", "volatility"), metric, tmp_path / "h.png"
    )
    for name in ("l.png", "h.png"):
        assert texts_outside(drawn[name]) == [], name


# -- 7. numbers for a person ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (math.nan, "–"),
        (None, "–"),
        (-0.0, "0"),
        (7.105427357601002e-15, "0"),
        (-3e-12, "0"),
        (1e6, "1,000,000"),
        (1_709.2723, "1,709.2723"),
        (0.0001325, "0.0001325"),
        (-0.00004, "-0.00004"),
        (931_147_782, "931,147,782"),
    ],
)
def test_numbers_are_formatted_for_a_person(value: Any, text: str) -> None:
    assert _fmt(value) == text


def test_report_tables_have_no_raw_number_artefacts(tmp_path: Path) -> None:
    frame = synthetic_frame(200)
    analysis = synthetic_analysis(frame)
    analysis["welfare"] = {"mean": 465.4, "min": -0.0, "max": 971.6}
    analysis["price_discovery_efficiency"] = {"mean": -13.95, "min": -50.2, "max": 7.1e-15}
    analysis["strategy_details"] = {"conservative": {"bid_shading": math.nan, "profit_bps": 0.0}}
    parameters = {"simulation.seed": 931_147_782, "market.volume": 1e6}
    page = report.write_report(tmp_path, frame, analysis, parameters=parameters).html.read_text()
    cells = re.findall(r"<td>(.*?)</td>", page)
    assert "nan" not in cells and "-0" not in cells and not [c for c in cells if "e-" in c]
    assert "931147782" in cells and "931,147,782" not in page
    assert "1,000,000" in cells and "1e+06" not in page


def test_a_swept_seed_is_shown_as_typed(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "seed": [931_147_782, 5],
            "num_auctions": [100, 100],
            "improvement_bps_mean": [30.0, 31.0],
            "improvement_bps_ci95_low": [29.0, 30.0],
            "improvement_bps_ci95_high": [31.0, 32.0],
        }
    )
    page = report.write_sweep_report(tmp_path, table, ["seed"]).html.read_text()
    assert "<td>931147782</td>" in page and "931,147,782" not in page


# -- 8. the command that reproduces a report -----------------------------------------


RERUN = 'phantom-auction simulate --seed 3 --out "a&b" <x>'
ESCAPED = "Rerun: phantom-auction simulate --seed 3 --out &quot;a&amp;b&quot; &lt;x&gt;"


def test_run_report_shows_the_rerun_command_escaped(tmp_path: Path) -> None:
    frame = synthetic_frame(200)
    page = report.write_report(
        tmp_path, frame, synthetic_analysis(frame), parameters={"a": 1}, rerun=RERUN
    ).html.read_text()
    assert f"<pre class='rerun'>{ESCAPED}</pre>" in page
    # Beside the parameters.
    assert page.index("<h2>Parameters</h2>") < page.index(ESCAPED) < page.index("<th>parameter")
    # Without it, no block.
    page = report.write_report(tmp_path, frame, synthetic_analysis(frame)).html.read_text()
    assert "Rerun:" not in page


def test_sweep_report_shows_the_rerun_command_escaped(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {"num_phantom_bidders": [0, 5], "num_auctions": [10, 10], "welfare_mean": [1.0, 2.0]}
    )
    page = report.write_sweep_report(
        tmp_path, table, ["num_phantom_bidders"], rerun=RERUN
    ).html.read_text()
    assert f"<pre class='rerun'>{ESCAPED}</pre>" in page


# -- 9. calibrate's comparison: paired differences and a title ----------------------


def comparison_rows() -> list[dict[str, Any]]:
    def row(label: str, mean: float, d: float, lo: float, hi: float) -> dict[str, Any]:
        return {
            "label": label,
            "improvement_bps": mean,
            "ci95_low": mean - 0.45,
            "ci95_high": mean + 0.45,
            "vs_reference_bps": d,
            "vs_reference_ci95_low": lo,
            "vs_reference_ci95_high": hi,
        }

    return [
        row("no phantoms", 39.74, 0.0, 0.0, 0.0),
        row("Myerson reserve 30.87 bps", 35.05, -4.69, -5.12, -4.26),
        row("calibrated (reserve): 1 x 1 @ N(10, 5)", 39.74, 0.004, -0.03, 0.04),
        row("calibrated (floor): 1 x 1 @ N(30, 5)", 39.92, 0.18, 0.16, 0.21),
    ]


def test_calibration_comparison_shows_the_paired_differences(tmp_path: Path) -> None:
    fig = report.calibration_comparison_figure(comparison_rows())
    assert fig.get_suptitle()
    level, paired = fig.axes
    assert level.get_title() and paired.get_title() == "Difference to no phantoms"
    labels = [t.get_text() for t in paired.get_yticklabels()]
    assert labels == [
        "reference",
        "-4.69 [-5.12, -4.26]",
        "0.00 [-0.03, +0.04]",
        "+0.18 [+0.16, +0.21]",
    ]
    colours = {
        round(float(line.get_xdata()[0]), 3): to_hex(line.get_color())
        for line in paired.lines
        if len(line.get_xdata()) == 1 and line.get_linestyle() == "None"
    }
    assert colours[0.18] == report_figures._GREEN and colours[-4.69] == report_figures._RED
    assert colours[0.004] == report_figures._GREY
    path = report.plot_calibration_comparison(comparison_rows(), tmp_path / "c.png")
    assert path.is_file()
    assert texts_outside(fig) == []


# -- 10. learn: what the user gets -----------------------------------------------------


def test_learning_figure_adds_price_over_value(tmp_path: Path, drawn: dict[str, Figure]) -> None:
    from phantom_auction.simulation.learning import LearningRun

    auctions = np.array([100.0, 200.0, 300.0])
    run = LearningRun(
        "discriminatory",
        False,
        (1, 2),
        auctions,
        played=np.array([[0.5, 0.55, 0.6], [0.5, 0.45, 0.4]]),
        greedy=np.full((2, 3), 0.5),
        improvement_bps=np.array([[60.0, 70.0, 80.0], [60.0, 50.0, 40.0]]),
    )
    report.plot_learning([run], tmp_path / "learning.png", value_bps=100.0)
    bids, price = drawn["learning.png"].axes
    assert "bid / value" in bids.get_ylabel() and "price / value" in price.get_ylabel()
    (line,) = [ln for ln in price.lines if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.6, 0.6])
    (bid_line,) = [ln for ln in bids.lines if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(bid_line.get_ydata(), [0.5, 0.5, 0.5])
