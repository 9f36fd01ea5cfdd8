"""``sweep``: the Python face of ``phantom-auction sweep``, a DataFrame with CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from phantom_auction import (
    InvalidBidParameters,
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
    analyze_results,
    run_monte_carlo,
    sweep,
)
from phantom_auction.cli import app
from phantom_auction.simulation.results import SWEEP_METRICS


def test_sweep_rows_carry_the_mean_and_its_ci_per_metric() -> None:
    config = SimulationConfig(num_simulations=400, seed=11)
    grid = {"num_phantom_bidders": [0, 10], "market.volatility": [0.1, 0.5]}
    table = sweep(config, MarketConditions(), grid, workers=1)
    assert isinstance(table, pd.DataFrame)
    assert len(table) == 4
    assert table[["num_phantom_bidders", "volatility"]].values.tolist() == [
        [0, 0.1],
        [0, 0.5],
        [10, 0.1],
        [10, 0.5],
    ]
    assert (table["num_auctions"] == 400).all()
    for metric in ("improvement_bps", "phantom_won", "mev_capture_rate"):
        low, mean, high = (table[f"{metric}_{s}"] for s in ("ci95_low", "mean", "ci95_high"))
        assert (low <= mean).all() and (mean <= high).all()
    assert (table["improvement_bps_ci95_low"] < table["improvement_bps_ci95_high"]).all()
    assert (table.loc[table["num_phantom_bidders"] == 0, "phantom_won_mean"] == 0).all()
    # A point's statistics are analyze_results' on the same run.
    one = PhantomSimulator(
        SimulationConfig(num_simulations=400, seed=11, num_phantom_bidders=10),
        MarketConditions(volatility=0.5),
    )
    analysis = analyze_results(run_monte_carlo(one, 100.0, 1000.0))
    row = table.iloc[3]
    for metric in SWEEP_METRICS:
        for statistic in ("mean", "ci95_low", "ci95_high", "std", "p05", "p95"):
            assert row[f"{metric}_{statistic}"] == pytest.approx(
                analysis[metric][statistic], nan_ok=True
            )


def test_python_sweep_equals_the_command_line_sweep(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "sweep",
            "--grid",
            "num_phantom_bidders=0,5",
            "-n",
            "300",
            "--seed",
            "5",
            "--workers",
            "1",
            "--no-plots",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    cli = pd.read_parquet(out / "sweep.parquet")
    python = sweep(
        SimulationConfig(num_simulations=300, seed=5),
        grid={"num_phantom_bidders": [0, 5]},
        workers=1,
    )
    assert list(cli.columns) == list(python.columns)
    pd.testing.assert_frame_equal(cli, python, check_dtype=False)
    assert np.isfinite(python["improvement_bps_ci95_low"]).all()


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ({"nope": [1]}, "unknown field"),
        ({"num_phantom_bidders": []}, "at least one value"),
        ({}, "at least one field"),
    ],
)
def test_bad_grids_name_the_field(grid: dict[str, list[int]], needle: str) -> None:
    with pytest.raises(InvalidBidParameters, match=needle):
        sweep(SimulationConfig(num_simulations=10, seed=1), grid=grid)
