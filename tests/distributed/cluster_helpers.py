"""Builders and exact comparisons for the Dask tests (imported by the test modules)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from phantom_auction.simulation import (
    Bid,
    BidderStrategy,
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
)

BASELINE_PRICE = 100.0  # token B per token A
BASELINE_QUANTITY = 1000.0  # token A


def simulator(num_simulations: int, *, seed: int = 2024, **config: Any) -> PhantomSimulator:
    """The default market (5 real bidders of the five strategies, 15 phantoms, VCG)."""
    return PhantomSimulator(
        SimulationConfig(num_simulations=num_simulations, seed=seed, **config),
        MarketConditions(),
    )


def same_value(a: Any, b: Any) -> bool:
    """Exact equality, recursively; NaN equals NaN (an undefined statistic on both sides)."""
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping) and list(a) == list(b) and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and bool(a == b)


def assert_same_analysis(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """``analyze_results`` outputs equal to the last bit (NaN where both are undefined)."""
    assert list(a) == list(b)
    mismatched = [k for k in a if not same_value(a[k], b[k])]
    assert not mismatched, f"statistics differ: {mismatched}"


def assert_same_columns(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> None:
    """Bit for bit: same names, dtypes and bytes (so also -0.0 and NaN payloads)."""
    assert list(a) == list(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        assert a[name].tobytes() == b[name].tobytes(), name


class FixedImprovementStrategy(BidderStrategy):
    """A user's strategy in the seed's scalar form: a fixed improvement of ``bps``.

    It lives in a module the workers can import (Dask pickles it by reference).
    """

    name = "fixed"

    def __init__(self, bps: float) -> None:
        self.bps = bps

    def generate_bid(self, price, qty, market, rng):  # type: ignore[no-untyped-def,override]
        return Bid(
            price=price * (1 + self.bps / 10_000),
            quantity=qty,
            timestamp=rng.random() * 50.0,
            priority_fee=0.0,
        )


class FailingStrategy(BidderStrategy):
    """Raises when asked to bid: only a worker running a chunk ever asks."""

    name = "failing"

    def generate_bid(self, price, qty, market, rng):  # type: ignore[no-untyped-def,override]
        raise RuntimeError("strategy failed on the worker")
