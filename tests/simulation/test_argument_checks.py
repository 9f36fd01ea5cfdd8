"""Argument checks of the Python API that the command line relies on: each bad value is
an :class:`InvalidBidParameters` naming its field, raised before any auction runs."""

from __future__ import annotations

from typing import Any

import pytest

from phantom_auction import InvalidBidParameters, MarketConditions, SimulationConfig
from phantom_auction.simulation import calibration, sweep
from phantom_auction.simulation.calibration import optimize_phantoms


def _config() -> SimulationConfig:
    return SimulationConfig(num_simulations=200, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"policy": ()}, "policy"),  # was "max() arg is an empty sequence"
        ({"policy": []}, "policy"),
        ({"policy": ("reserve", "reserve")}, "policy"),
        ({"means": ()}, "means"),
        ({"means": (10.0, float("nan"))}, "means"),
        ({"means": (10.0, "x")}, "means"),
        ({"means": "10"}, "means"),
        ({"sds": (float("inf"),)}, "sds"),
        ({"sds": ()}, "sds"),
        ({"presence": ()}, "presence"),
        ({"presence": ((0, 0.5),)}, "presence"),
        ({"presence": ((100_000, 0.5),)}, "presence"),
        ({"presence": ((1, 1.5),)}, "presence"),
        ({"presence": ((1,),)}, "presence"),
    ],
)
def test_optimize_phantoms_names_a_bad_argument_before_running(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], field: str
) -> None:
    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("checked before any candidate runs")

    monkeypatch.setattr(calibration, "_evaluate", must_not_run)
    with pytest.raises(InvalidBidParameters) as info:
        optimize_phantoms(_config(), **kwargs)
    assert info.value.field == field


def test_sweeping_a_field_that_is_not_a_value_is_named() -> None:
    """Was AttributeError: 'int' object has no attribute 'phantom_auction'."""
    pytest.importorskip("pandas")
    with pytest.raises(InvalidBidParameters) as info:
        sweep(_config(), MarketConditions(), grid={"auction_config": [1]})
    assert info.value.field == "auction_config"


def _simulator_takers() -> list[tuple[str, Any]]:
    from phantom_auction import (
        backtest_strategy,
        calibrate_parameters,
        plan_chunks,
        run_monte_carlo,
        run_simulation,
    )
    from phantom_auction.simulation.distributed import run_monte_carlo_on_cluster

    return [
        ("run_simulation", lambda s: run_simulation(s, 100.0, 1000.0)),
        ("run_monte_carlo", lambda s: run_monte_carlo(s, 100.0, 1000.0)),
        ("plan_chunks", lambda s: plan_chunks(s, 100.0, 1000.0)),
        ("calibrate_parameters", lambda s: calibrate_parameters(s, {})),
        ("backtest_strategy", lambda s: backtest_strategy(s, "truthful", {})),
        ("run_monte_carlo_on_cluster", lambda s: run_monte_carlo_on_cluster(s, 1.0, 1.0, None)),
    ]


@pytest.mark.parametrize(("function", "call"), _simulator_takers())
def test_a_config_passed_for_the_simulator_is_named_with_the_fix(function: str, call: Any) -> None:
    """The seed's functions take a PhantomSimulator; a config passed as is failed deep
    inside (``'SimulationConfig' object has no attribute 'environment'``)."""
    with pytest.raises(
        TypeError,
        match=rf"^{function}: simulator=SimulationConfig is not a "
        r"PhantomSimulator: wrap it, PhantomSimulator\(config, market\)$",
    ):
        call(_config())
    with pytest.raises(TypeError, match=rf"^{function}: simulator=MarketConditions is not a"):
        call(MarketConditions())


def test_the_api_audits_small_findings_are_named() -> None:
    """Each was accepted, or failed on an unnamed error, in the API audit."""
    from phantom_auction import PhantomSimulator, analyze_results, run_monte_carlo
    from phantom_auction.engine import SettlementRequest

    with pytest.raises(TypeError, match=r"^PhantomSimulator: market=dict is not a Market"):
        PhantomSimulator(_config(), {"volatility": 0.2})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^PhantomSimulator: config=dict is not a Simulation"):
        PhantomSimulator({"num_simulations": 10})  # type: ignore[arg-type]
    simulator = PhantomSimulator(_config())
    with pytest.raises(InvalidBidParameters, match=r"^keep_rows='no': must be True, False"):
        run_monte_carlo(simulator, 100.0, 1000.0, keep_rows="no")  # type: ignore[arg-type]
    results = run_monte_carlo(simulator, 100.0, 1000.0)
    with pytest.raises(TypeError, match=r"^auction index 'a': an integer or a slice"):
        results["a"]  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^analyze_results: results=DataFrame is neither"):
        analyze_results(results.to_frame())  # type: ignore[arg-type]
    # The summary takes the seed's names, as analyze_results does.
    seed_named = results.summary.stats("avg_price_improvement")
    assert seed_named == results.summary.stats("improvement_bps")
    with pytest.raises(KeyError, match=r"'improvement' is not a metric here"):
        results.summary.stats("improvement")
    with pytest.raises(InvalidBidParameters, match=r"^policy='flor': must be one of reserve"):
        SimulationConfig(policy="flor")
    with pytest.raises(InvalidBidParameters, match=r"^token_out=1: must differ from token_in"):
        SettlementRequest(token_in=1, token_out=1, amount=10.0)
