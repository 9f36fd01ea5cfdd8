"""``phantom-auction sweep``: one Monte Carlo per grid point, a table, Parquet and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.simulation import sweeps

SMALL = ["--simulations", "300", "--seed", "5", "--workers", "1"]


@pytest.mark.parametrize("policy", ["floor", "reserve"])
def test_one_field_line_plots(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    monkeypatch.setenv("AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY", policy)
    out = tmp_path / "sweep"
    result = runner.invoke(
        app, ["sweep", "--grid", "num_phantom_bidders=0,5,20", *SMALL, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "sweep.parquet")
    assert table["num_phantom_bidders"].tolist() == [0, 5, 20]
    assert (table["num_auctions"] == 300).all()
    # No phantom slots, no phantom wins. reserve: more slots, more of the order left to
    # the CFMM; floor: phantoms never take volume.
    assert table["phantom_won_mean"].iloc[0] == 0
    fills = table["real_fill_fraction_mean"]
    if policy == "reserve":
        assert table["phantom_won_mean"].iloc[2] > table["phantom_won_mean"].iloc[0]
        assert fills.iloc[2] < fills.iloc[0]
    else:
        assert (table["phantom_won_mean"] == 0).all()
        assert fills.iloc[2] >= fills.iloc[0]
    plot = out / "sweep_improvement_bps.png"
    assert plot.is_file() and imread(plot).var() > 0
    assert 'src="sweep_improvement_bps.png"' in (out / "index.html").read_text()


def test_two_fields_heatmaps(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        [
            "sweep",
            "--grid",
            "num_phantom_bidders=0,10",
            "--grid",
            "volatility=0.1,0.8",
            *SMALL,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out / "sweep.parquet")
    assert len(table) == 4
    assert set(zip(table.num_phantom_bidders, table.volatility, strict=True)) == {
        (0, 0.1),
        (0, 0.8),
        (10, 0.1),
        (10, 0.8),
    }
    assert (out / "sweep_improvement_bps.png").is_file()


def test_no_plots(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    result = runner.invoke(
        app,
        ["sweep", "--grid", "mechanism=vickrey,uniform", *SMALL, "--out", str(out), "--no-plots"],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out / "sweep.parquet")["mechanism"].tolist() == ["vickrey", "uniform"]
    assert not list(out.glob("*.png"))


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        (["num_phantom_bidders"], "expected FIELD=v1,v2"),
        (["num_phantom_bidders="], "expected FIELD=v1,v2"),
        (["colour=1,2"], "unknown field 'colour'"),
        (["num_phantom_bidders=1,x"], "'x' is not an integer"),
        (["volatility=0.1,high"], "'high' is not a number"),
        (["volatility=0.1,2"], "volatility: must be in [0, 1]"),
        (["num_phantom_bidders=1,1"], "listed twice"),
        (["volatility=0.1", "volatility=0.2"], "swept twice"),
        (["mechanism=vickrey,dutch"], "'dutch'"),
    ],
)
def test_bad_grid_exits_2_before_running(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    grid: list[str],
    needle: str,
) -> None:
    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("a bad grid must be refused before any point runs")

    monkeypatch.setattr(sweeps, "run_monte_carlo", must_not_run)
    args = [x for spec in grid for x in ("--grid", spec)]
    result = runner.invoke(app, ["sweep", *args, *SMALL, "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "'--grid'" in line and needle in line


def test_grid_is_required(runner: CliRunner) -> None:
    result = runner.invoke(app, ["sweep", "-n", "10"])
    assert result.exit_code == 2 and "--grid" in result.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_completed_points(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sweeps.run_monte_carlo
    calls = {"n": 0}

    def third_is_interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweeps, "run_monte_carlo", third_is_interrupted)
    out = tmp_path / "sweep"
    result = runner.invoke(
        app, ["sweep", "--grid", "num_phantom_bidders=0,5,10,20", *SMALL, "--out", str(out)]
    )
    assert result.exit_code == 130
    assert "kept 2 of 4" in result.stderr
    table = pd.read_parquet(out / "sweep.parquet")
    assert table["num_phantom_bidders"].tolist() == [0, 5]
    # The plots of what finished are drawn too.
    assert (out / "sweep_improvement_bps.png").is_file()


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")
def test_cluster_sweep_equals_local_sweep(runner: CliRunner, tmp_path: Path) -> None:
    grid = ["--grid", "num_phantom_bidders=0,10", "-n", "600", "--seed", "3", "--no-plots"]
    local = runner.invoke(app, ["sweep", *grid, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    on_cluster = runner.invoke(
        app, ["sweep", *grid, "--cluster", "local:1", "--out", str(tmp_path / "cluster")]
    )
    assert on_cluster.exit_code == 0, on_cluster.output
    # Same chunks, same seeds: bit-identical tables whichever ran them.
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "local" / "sweep.parquet"),
        pd.read_parquet(tmp_path / "cluster" / "sweep.parquet"),
    )
