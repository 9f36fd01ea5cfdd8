"""Shared builders for the simulator tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from phantom_auction.simulation import (
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
)

BASELINE_PRICE = 100.0
BASELINE_QUANTITY = 1000.0


def textbook(
    n: int,
    mechanism: str,
    strategy: Any,
    *,
    num_simulations: int = 1000,
    seed: int = 1,
    distribution: Any = ("uniform", 0.0, 100.0),
    **config: Any,
) -> PhantomSimulator:
    """``n`` bidders with i.i.d. values from ``distribution``, no phantoms, whole-order bids."""
    return PhantomSimulator(
        SimulationConfig(
            num_real_bidders=n,
            num_phantom_bidders=0,
            value_distribution=distribution,
            mechanism=mechanism,
            real_strategy=strategy,
            num_simulations=num_simulations,
            seed=seed,
            **config,
        ),
        MarketConditions(),
    )


def assert_columns_equal(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, exact: bool = False
) -> None:
    """Same keys; ints/bools equal; floats equal (bitwise when ``exact``) or within 1e-9."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        assert x.shape == y.shape, key
        if exact or x.dtype.kind in "biu":
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), key
        else:
            np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-7, err_msg=key)


@pytest.fixture
def default_simulator() -> PhantomSimulator:
    return PhantomSimulator(SimulationConfig(seed=11), MarketConditions())
