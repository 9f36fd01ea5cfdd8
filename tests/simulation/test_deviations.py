"""``utility_loss``: about 0 for the equilibrium, clearly positive for a shaded heuristic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import MarketConditions, PhantomSimulator, SimulationConfig
from phantom_auction.simulation.deviations import DeviatingStrategy, utility_loss
from phantom_auction.simulation.strategies import create_strategy

SCALES = (0.9, 0.95, 1.0, 1.05, 1.1)
SHIFTS = (-1.0, 0.0, 1.0)


def _config(phantoms: int, mechanism: str = "first_price") -> SimulationConfig:
    # Values N(25, 8) bps: with phantoms, the accepted range [10, 50] bps rarely binds.
    return SimulationConfig(
        num_real_bidders=3,
        num_phantom_bidders=phantoms,
        value_distribution=("normal", 25.0, 8.0),
        mechanism=mechanism,
        num_simulations=20_000,
        seed=21,
    )


@pytest.mark.slow
@pytest.mark.parametrize("phantoms", [0, 15])
@pytest.mark.parametrize("mechanism", ["first_price", "second_price"])
def test_the_equilibrium_has_no_profitable_deviation(phantoms: int, mechanism: str) -> None:
    loss = utility_loss(
        _config(phantoms, mechanism),
        MarketConditions(),
        "equilibrium",
        scales=SCALES,
        shifts=SHIFTS,
    )
    print(f"\n{mechanism}, {phantoms} phantoms: {loss}")
    # Every deviation's mean gain is within 4 standard errors of 0 or below it.
    assert np.all(loss.gains <= 4.0 * loss.gain_se + 1e-12), loss.gains
    assert loss.utility_bps > 0.0


@pytest.mark.slow
@pytest.mark.parametrize("phantoms", [0, 15])
def test_a_shaded_heuristic_has_a_profitable_deviation(phantoms: int) -> None:
    """Bidding 95 % of one's value in first price (a shaded heuristic) is far from
    equilibrium: shading more pays."""
    heuristic = DeviatingStrategy(create_strategy("truthful"), scale=0.95)
    loss = utility_loss(
        _config(phantoms), MarketConditions(), heuristic, scales=SCALES, shifts=SHIFTS
    )
    print(f"\nfirst price, {phantoms} phantoms, bid 0.95 v: {loss}")
    assert loss.gain_bps > 10.0 * loss.gain_se_bps
    assert loss.best_scale < 1.0 or loss.best_shift < 0.0


def test_utility_loss_checks_its_arguments() -> None:
    config = _config(0)
    with pytest.raises(InvalidBidParameters, match="scales"):
        utility_loss(config, None, "equilibrium", scales=(0.9,), shifts=(0.0,))
    with pytest.raises(InvalidBidParameters, match="seed"):
        utility_loss(
            SimulationConfig(num_phantom_bidders=0, value_distribution=("uniform", 0, 1)),
            None,
            "truthful",
        )
    with pytest.raises(InvalidBidParameters, match="strategy"):
        utility_loss(config, None, None)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scales": (-1.0, 1.0)}, "scales"),  # was accepted
        ({"scales": (0.0, 1.0)}, "scales"),
        ({"scales": (1.0, float("inf"))}, "scales"),
        ({"scales": (1.0, float("nan"))}, "scales"),
        ({"scales": "1"}, "scales"),
        ({"scales": (0.9,)}, "scales"),
        ({"shifts": (float("nan"), 0.0)}, "shifts"),  # was accepted
        ({"shifts": (0.0, float("-inf"))}, "shifts"),
        ({"shifts": (1.0,)}, "shifts"),
    ],
)
def test_utility_loss_names_a_bad_grid_before_running(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], field: str
) -> None:
    from phantom_auction.simulation import deviations

    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("checked before any run")

    monkeypatch.setattr(deviations, "_profit", must_not_run)
    with pytest.raises(InvalidBidParameters) as info:
        utility_loss(_config(0), None, "equilibrium", **kwargs)
    assert info.value.field == field
    assert info.value.value is kwargs[field]  # as passed


def test_utility_loss_names_what_it_takes() -> None:
    """The API audit: a simulator passed for its config failed on 'PhantomSimulator'
    object has no attribute 'num_real_bidders'."""
    config = _config(0)
    with pytest.raises(
        TypeError,
        match=r"^utility_loss: config=PhantomSimulator is not a SimulationConfig: pass its "
        r"parts, utility_loss\(simulator.config, simulator.market, ...\)$",
    ):
        utility_loss(PhantomSimulator(config, MarketConditions()), None, "equilibrium")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^utility_loss: market=str is not a MarketConditions"):
        utility_loss(config, "equilibrium")  # type: ignore[arg-type]
