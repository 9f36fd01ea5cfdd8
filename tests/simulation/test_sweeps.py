"""``sweep``: the Python face of ``phantom-auction sweep``, a DataFrame with CIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from phantom_auction.simulation.sweeps import grid_points


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
        # A scalar used to fail inside list() ('int' object is not iterable), and a
        # string to sweep its characters.
        ({"num_phantom_bidders": 5}, r"grid\['num_phantom_bidders'\]=5: must be a list"),
        ({"mechanism": "vcg"}, r"grid\['mechanism'\]='vcg': must be a list of values"),
    ],
)
def test_bad_grids_name_the_field(grid: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidBidParameters, match=needle):
        sweep(SimulationConfig(num_simulations=10, seed=1), grid=grid)


@pytest.mark.parametrize(
    ("grid", "first", "second", "field"),
    [
        # Used to give two rows both labelled volatility=0.5 (0.1 and 0.9 never ran).
        (
            {"volatility": [0.1, 0.9], "market.volatility": [0.5]},
            "volatility",
            "market.volatility",
            "market.volatility",
        ),
        # Used to run 3 phantoms only.
        (
            {"num_phantom_bidders": [5], "simulation.num_phantom_bidders": [3]},
            "num_phantom_bidders",
            "simulation.num_phantom_bidders",
            "simulation.num_phantom_bidders",
        ),
        (
            {"market.trend": [0.0], "trend": [0.1]},
            "market.trend",
            "trend",
            "market.trend",
        ),
    ],
)
def test_a_field_named_twice_is_refused(
    grid: dict[str, list[float]], first: str, second: str, field: str
) -> None:
    with pytest.raises(InvalidBidParameters) as info:
        sweep(SimulationConfig(num_simulations=10, seed=1), MarketConditions(), grid, workers=1)
    assert (info.value.field, info.value.value) == ("grid", [first, second])
    assert f"{first!r} and {second!r} are the same field, {field}" in str(info.value)


def test_grid_values_may_be_any_iterable_but_a_string() -> None:
    grid = {
        "num_phantom_bidders": range(2),
        "market.volatility": np.array([0.1]),
        "seed": (s for s in (3,)),
    }
    assert grid_points(grid) == [
        {"num_phantom_bidders": 0, "market.volatility": 0.1, "seed": 3},
        {"num_phantom_bidders": 1, "market.volatility": 0.1, "seed": 3},
    ]


def test_a_simulator_is_not_a_config() -> None:
    # Used to fail in dataclasses.replace: "replace() should be called on dataclass
    # instances", naming neither the argument nor what it takes.
    config = SimulationConfig(num_simulations=10, seed=1)
    simulator = PhantomSimulator(config)
    grid = {"num_phantom_bidders": [0]}
    with pytest.raises(
        TypeError, match=r"config=PhantomSimulator .*SimulationConfig.*simulator\.config"
    ):
        sweep(simulator, MarketConditions(), grid)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"market=PhantomSimulator .*simulator\.market"):
        sweep(config, simulator, grid)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"market=dict is not a MarketConditions or None"):
        sweep(config, {"volatility": 0.5}, grid)  # type: ignore[arg-type]


def test_the_phantom_policy_is_a_config_field_and_sweeps() -> None:
    """``policy`` set on the config gives what the engine configuration's
    phantom_auction.phantom_policy gives (it could be set only through auction_config),
    and a sweep can cross it."""
    from phantom_auction.config import load_config
    from phantom_auction.simulation import PhantomSimulator, run_monte_carlo

    base = SimulationConfig(num_simulations=400, seed=2)
    for policy in ("reserve", "floor"):
        env = {"AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY": policy}
        configured = SimulationConfig(
            num_simulations=400, seed=2, auction_config=load_config(env=env)
        )
        direct = SimulationConfig(num_simulations=400, seed=2, policy=policy)
        assert direct.phantom_policy == configured.phantom_policy == policy
        runs = [run_monte_carlo(PhantomSimulator(c), 100.0, 1000.0) for c in (direct, configured)]
        assert np.array_equal(
            runs[0].columns["improvement_bps"], runs[1].columns["improvement_bps"]
        )
    table = sweep(base, MarketConditions(), grid={"policy": ["reserve", "floor"]})
    assert list(table["policy"]) == ["reserve", "floor"]
    # Floor phantoms never take volume (SPEC): no phantom wins there.
    assert table["phantom_won_mean"].iloc[1] == 0.0 < table["phantom_won_mean"].iloc[0]
