"""``phantom-auction sweep``: one Monte Carlo per grid point, a table, Parquet and plots."""

from __future__ import annotations

import json
import tomllib
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
        # The same field under its two names: one value would be silently lost.
        (
            ["volatility=0.1", "market.volatility=0.9"],
            "volatility and market.volatility are the same field",
        ),
        (["market.trend=0.1", "trend=0.2"], "market.trend and trend are the same field"),
        (["mechanism=vickrey,dutch"], "'dutch'"),
        # Fields a grid value cannot give (was an AttributeError traceback).
        (["auction_config=1"], "auction_config cannot be swept"),
        (["phantom_model=1"], "phantom_model cannot be swept"),
        (["value_distribution=normal"], "value_distribution cannot be swept"),
        (["correlation_matrix=1"], "correlation_matrix cannot be swept"),
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


def _sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record each grid point's auction count instead of running it."""
    seen: list[int] = []

    def record(simulator: Any, *_: Any, **__: Any) -> Any:
        seen.append(simulator.config.num_simulations)
        raise KeyboardInterrupt  # one point is enough: Ctrl-C keeps nothing, exits 130

    monkeypatch.setattr(sweeps, "run_monte_carlo", record)
    return seen


def test_the_files_num_simulations_is_used_unless_the_flag_is_given(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flags win over the file only when typed: no --simulations, the file's count."""
    file = tmp_path / "scenario.toml"
    file.write_text("[simulation]\nnum_simulations = 300\nseed = 7\n")
    seen = _sizes(monkeypatch)
    args = ["sweep", "--grid", "num_phantom_bidders=0", "--config", str(file), "--no-plots"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert result.exit_code == 130, result.output
    assert "× 300 auctions" in result.stdout
    result = runner.invoke(app, [*args, "-n", "120", "--out", str(tmp_path / "b")])
    assert "× 120 auctions" in result.stdout
    # Neither flag nor file: the sweep's own default.
    result = runner.invoke(
        app, ["sweep", "--grid", "num_phantom_bidders=0", "--out", str(tmp_path / "c")]
    )
    assert "× 2,000 auctions" in result.stdout
    assert seen == [300, 120, 2000]


def test_a_swept_auction_count_is_what_the_header_says(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    grid = ["--grid", "num_simulations=100,200", "--seed", "3", "--workers", "1", "--no-plots"]
    result = runner.invoke(app, ["sweep", *grid, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 grid points × 100/200 auctions, seed 3 at every point" in result.stdout
    assert "2,000" not in result.stdout
    assert pd.read_parquet(out / "sweep.parquet")["num_auctions"].tolist() == [100, 200]
    # A swept seed is not "one seed at every point".
    grid = ["--grid", "seed=4,5", "-n", "100", "--workers", "1", "--no-plots"]
    result = runner.invoke(app, ["sweep", *grid, "--out", str(tmp_path / "seeds")])
    assert result.exit_code == 0, result.output
    assert "2 grid points × 100 auctions, seeds 4/5" in result.stdout


def test_json_prints_every_row_and_out_records_the_seed(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--grid", "num_phantom_bidders=0,5", "-n", "200", "--workers", "1"]
    result = runner.invoke(app, [*args, "--no-plots", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # only JSON on stdout
    assert [row["num_phantom_bidders"] for row in printed["points"]] == [0, 5]
    assert printed["parameters"]["grid"] == {"num_phantom_bidders": [0, 5]}
    table = pd.read_parquet(out / "sweep.parquet")
    assert printed["points"][1]["improvement_bps_mean"] == pytest.approx(
        table["improvement_bps_mean"].iloc[1]
    )
    # The seed was drawn: run.json and scenario.toml record it, and rerun the sweep.
    record = json.loads((out / "run.json").read_text())
    seed = printed["parameters"]["simulation.seed"]
    assert record["seed"] == seed and record["seed_drawn"] is True
    assert record["grid"] == {"num_phantom_bidders": [0, 5]}
    assert tomllib.loads((out / "scenario.toml").read_text())["simulation"]["seed"] == seed
    again = runner.invoke(
        app,
        [
            "sweep",
            "--config",
            str(out / "scenario.toml"),
            "--grid",
            "num_phantom_bidders=0,5",
            "--no-plots",
            "--json",
            "--out",
            str(tmp_path / "again"),
        ],
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["points"] == printed["points"]


def test_ctrl_c_while_plotting_says_the_table_is_complete_and_which_plots_are_missing(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phantom_auction.report import sweep as report_sweep

    real = report_sweep.plot_sweep_line
    calls = {"n": 0}

    def third_is_interrupted(table: Any, fld: str, metric: str, path: Path) -> Path:
        calls["n"] += 1
        if calls["n"] == 3:
            path.write_bytes(b"\x89PNG\r\n\x1a\n half a picture")  # cut short
            raise KeyboardInterrupt
        return real(table, fld, metric, path)

    monkeypatch.setattr(report_sweep, "plot_sweep_line", third_is_interrupted)
    out = tmp_path / "sweep"
    result = runner.invoke(
        app, ["sweep", "--grid", "num_phantom_bidders=0,5", *SMALL, "--out", str(out)]
    )
    assert result.exit_code == 130
    line = result.stderr.strip().splitlines()[-1]
    assert f"{out / 'sweep.parquet'} is complete (2 grid points)" in line
    assert "drew 2 of 8 plots, not drawn: sweep_real_fill_fraction.png, sweep_phantom_won.png" in (
        line
    )
    assert "index.html was not written" in line
    assert len(pd.read_parquet(out / "sweep.parquet")) == 2
    assert not (out / "index.html").exists()
    # The PNG cut short is removed; the two drawn are whole.
    assert sorted(p.name for p in out.glob("*.png")) == [
        "sweep_improvement_bps.png",
        "sweep_mev_capture_rate.png",
    ]


def test_a_flag_for_a_field_the_grid_varies_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    """The CLI audit: --phantoms 5 beside --grid num_phantom_bidders=1,2 ran (the grid
    won) and run.json recorded 5 as the base."""
    args = ["sweep", "--grid", "num_phantom_bidders=1,2", "--phantoms", "5", "-n", "100"]
    result = runner.invoke(app, [*args, "--seed", "1", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "'--phantoms'" in result.output and "--grid varies num_phantom_bidders" in result.output
