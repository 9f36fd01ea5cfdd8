"""The HTML report: every figure is written, decodes as a non-blank image, and is linked."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from phantom_auction import report
from phantom_auction._extras import MissingExtra

STRATEGIES = ("aggressive", "conservative", "adaptive", "random_walk", "equilibrium")


def synthetic_frame(n: int = 2_000, seed: int = 7) -> pd.DataFrame:
    """A per-auction frame with the columns of ``MonteCarloResults.to_frame()``."""
    rng = np.random.default_rng(seed)
    baseline = 100.0
    true_price = baseline * (1.0 + rng.normal(30.0, 8.0, n) / 10_000)
    phantom_won = rng.random(n) < 0.3
    improvement = np.where(phantom_won, 0.0, rng.uniform(10.0, 50.0, n))
    best_value_bps = improvement + rng.uniform(1.0, 20.0, n)
    winner = np.where(phantom_won, "phantom", rng.choice(STRATEGIES, n))
    return pd.DataFrame(
        {
            "improvement_bps": improvement,
            "mev_capture_rate": np.clip(improvement / best_value_bps, 0.0, 1.0),
            "price_discovery_efficiency": 1.0 - rng.uniform(0.0, 0.004, n),
            "bid_shading": rng.uniform(0.0, 0.3, n),
            "phantom_won": phantom_won,
            "winner_strategy": winner,
            "clearing_price": baseline * (1.0 + improvement / 10_000),
            "baseline_price": np.full(n, baseline),
            "true_price": true_price,
            "welfare": rng.normal(50.0, 5.0, n),
            "welfare_improvement": rng.normal(3.0, 1.0, n),
            "best_bid_time_ms": rng.uniform(5.0, 80.0, n),
            "num_real_bids": rng.integers(0, 6, n),
            "num_phantom_bids": rng.integers(0, 16, n),
            "real_fill_fraction": np.where(phantom_won, 0.0, rng.uniform(0.5, 1.0, n)),
        }
    )


def synthetic_analysis(frame: pd.DataFrame) -> dict[str, Any]:
    """Statistics in the shape ``analyze_results`` returns."""
    out: dict[str, Any] = {}
    for metric in ("improvement_bps", "mev_capture_rate", "bid_shading", "clearing_price"):
        values = frame[metric].to_numpy(dtype=float)
        out[metric] = {
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "p05": float(np.quantile(values, 0.05)),
            "p95": float(np.quantile(values, 0.95)),
        }
    out["strategy_performance"] = frame["winner_strategy"].value_counts(normalize=True).to_dict()
    return out


def synthetic_paths(n: int = 20, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    time_ms = np.linspace(0.0, 100.0, 51)
    steps = rng.exponential(2.0, size=(n, time_ms.size)) * (rng.random((n, time_ms.size)) < 0.2)
    return time_ms, np.cumsum(steps, axis=1)


def assert_image_ok(path: Path) -> None:
    assert path.is_file(), path
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    # A blank (single-colour) canvas has zero variance; a drawn plot does not.
    assert float(np.var(pixels[..., :3])) > 1e-3, f"{path} looks blank"


def linked_images(page: Path) -> set[str]:
    return set(re.findall(r'<img src="([^"]+)"', page.read_text("utf-8")))


def test_run_report_writes_every_figure_and_links_it(tmp_path: Path) -> None:
    frame = synthetic_frame()
    written = report.write_report(
        tmp_path / "rep",
        frame,
        synthetic_analysis(frame),
        convergence=synthetic_paths(),
        parameters={"num_simulations": len(frame)},
    )
    assert set(written.figures) == {
        "improvement",
        "mev_capture",
        "clearing_price",
        "convergence",
        "winners",
    }
    for path in written.figures.values():
        assert_image_ok(path)
        assert path.parent == written.html.parent
    assert linked_images(written.html) == {p.name for p in written.figures.values()}
    text = written.html.read_text("utf-8")
    # The summary table carries each analysed metric with its unit.
    assert "improvement_bps" in text and "bps over baseline" in text
    assert "2,000 simulated auctions" in text


def test_run_report_without_convergence_or_phantoms(tmp_path: Path) -> None:
    frame = synthetic_frame(300).assign(phantom_won=False, winner_strategy="aggressive")
    written = report.write_report(tmp_path, frame, synthetic_analysis(frame))
    assert "convergence" not in written.figures
    for path in written.figures.values():
        assert_image_ok(path)


def test_run_report_with_no_improving_auction(tmp_path: Path) -> None:
    frame = synthetic_frame(50).assign(improvement_bps=0.0, mev_capture_rate=0.0)
    written = report.write_report(tmp_path, frame, synthetic_analysis(frame))
    assert_image_ok(written.figures["improvement"])


def sweep_table(fields: dict[str, list[Any]], seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    grid = pd.MultiIndex.from_product(list(fields.values()), names=list(fields)).to_frame(
        index=False
    )
    n = len(grid)
    phantoms = grid.get("num_phantom_bidders", pd.Series(np.zeros(n))).to_numpy(dtype=float)
    improvement = 20.0 + 2.0 * phantoms - 0.12 * phantoms**2 + rng.normal(0.0, 0.5, n)
    out = grid.assign(num_auctions=500)
    for metric, mean in (
        ("improvement_bps", improvement),
        ("mev_capture_rate", np.clip(improvement / 60.0, 0, 1)),
        ("real_fill_fraction", np.clip(1.0 - phantoms / 30.0, 0, 1)),
        ("phantom_won", np.clip(phantoms / 30.0, 0, 1)),
    ):
        out[f"{metric}_mean"] = mean
        out[f"{metric}_std"] = np.abs(mean) * 0.3 + 0.01
        out[f"{metric}_p05"] = mean * 0.5
        out[f"{metric}_p95"] = mean * 1.5
    return out


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"num_phantom_bidders": [0, 5, 10, 20]}, 4),
        ({"num_phantom_bidders": [0, 10, 20], "volatility": [0.1, 0.3, 0.8]}, 4),
        ({"num_phantom_bidders": [0, 10], "volatility": [0.1, 0.8], "liquidity": [0.5, 0.9]}, 12),
        ({"mechanism": ["vickrey", "uniform"]}, 4),
    ],
)
def test_sweep_report_plots_each_metric(
    tmp_path: Path, fields: dict[str, list[Any]], expected: int
) -> None:
    table = sweep_table(fields)
    written = report.write_sweep_report(tmp_path, table, list(fields))
    assert len(written.figures) == expected
    for path in written.figures.values():
        assert_image_ok(path)
    assert linked_images(written.html) == {p.name for p in written.figures.values()}


def test_sweep_report_refuses_an_empty_table(tmp_path: Path) -> None:
    table = sweep_table({"num_phantom_bidders": [0, 5]}).iloc[0:0]
    with pytest.raises(ValueError, match="no grid points"):
        report.write_sweep_report(tmp_path, table, ["num_phantom_bidders"])


def test_missing_matplotlib_names_the_install_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes `import matplotlib` raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    frame = synthetic_frame(20)
    with pytest.raises(MissingExtra, match=r"pip install 'phantom-auction\[reports\]'"):
        report.write_report(tmp_path, frame, synthetic_analysis(frame))


def test_metric_label_has_units() -> None:
    assert report.metric_label("improvement_bps") == "User price improvement (bps over baseline)"
    assert report.metric_label("best_bid_time_ms").endswith("(ms after open)")
    assert report.metric_label("some_new_metric") == "Some new metric"


def test_sweep_interval_is_the_tables_own_and_the_grid_scrolls(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "mechanism": ["vcg", "vickrey", "discriminatory"],
            "num_auctions": [100, 100, 100],
            "improvement_bps_mean": [30.0, 29.0, 33.0],
            "improvement_bps_ci95_low": [29.0, 27.0, 32.5],
            "improvement_bps_ci95_high": [31.0, 31.0, 33.5],
            "improvement_bps_std": [99.0, 99.0, 99.0],
        }
    )
    # The interval comes from the interval columns, not from 1.96 std / sqrt(n).
    from phantom_auction.report.sweep import _ci95_bounds

    low, high = _ci95_bounds(table, "improvement_bps")
    np.testing.assert_allclose(low, [29.0, 27.0, 32.5])
    np.testing.assert_allclose(high, [31.0, 31.0, 33.5])
    written = report.write_sweep_report(tmp_path, table, ["mechanism"])
    page = written.html.read_text("utf-8")
    assert "<div class='wide'><table>" in page
    assert imread(str(written.figures["improvement_bps"])).shape[0] > 100


def test_improvement_plot_marks_the_cap(tmp_path: Path) -> None:
    frame = pd.DataFrame({"improvement_bps": [0.0, 10.0, 50.0, 50.0, 25.0]})
    path = report.plot_improvement(frame, tmp_path / "a.png", cap_bps=50.0)
    assert imread(str(path)).shape[0] > 100
