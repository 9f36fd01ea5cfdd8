"""Textbook mode against auction theory (independent private values, no phantoms).

With n bidders and values U[0, H] bps, the expected improvement is H (n-1)/(n+1) for
second price with truthful bidders and for first price with equilibrium bidders
(revenue equivalence: both equal the expected second-highest value), and the
first-price equilibrium bid is (n-1)/n v (Vickrey 1961; Krishna, Auction Theory, ch. 2).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from phantom_auction.simulation import (
    AuctionView,
    CompetitiveEquilibriumStrategy,
    run_monte_carlo,
)
from phantom_auction.simulation.market import value_distribution

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY, textbook

H = 100.0


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


@pytest.mark.parametrize(
    ("mechanism", "strategy"),
    [
        ("vickrey", "truthful"),
        ("second_price", "equilibrium"),  # the equilibrium of second price is truthful
        ("vcg", "truthful"),  # whole-order bids: VCG is second price
        ("uniform", "truthful"),  # one winner pays the best rejected bid
        ("discriminatory", "equilibrium"),
        ("first_price", "equilibrium"),
    ],
)
@pytest.mark.parametrize("n", [2, 5])
def test_expected_improvement_is_the_expected_second_value(
    mechanism: str, strategy: str, n: int
) -> None:
    sim = textbook(n, mechanism, strategy, num_simulations=40_000, seed=100 + n)
    cols = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY).columns
    mean, se = _mean_and_se(cols["improvement_bps"])
    expected = H * (n - 1) / (n + 1)
    assert abs(mean - expected) < 4 * se, (mechanism, n, mean, expected, se)
    # One winner takes the whole order, and it is the highest-value bidder.
    assert np.all(cols["real_fill_fraction"] == 1.0)
    np.testing.assert_allclose(cols["welfare_improvement"], 1.0, rtol=1e-12)


def test_first_price_and_second_price_differ_in_bids_not_revenue() -> None:
    first = run_monte_carlo(
        textbook(4, "first_price", "equilibrium", num_simulations=20_000, seed=7),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
    ).columns
    second = run_monte_carlo(
        textbook(4, "second_price", "truthful", num_simulations=20_000, seed=7),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
    ).columns
    # Same seed, same values: first price shades by exactly 1/n, second price not at all.
    # (Tiny values divide the table's ~1e-9 bps absolute error: per-auction 1e-4.)
    np.testing.assert_allclose(first["bid_shading"], 0.25, atol=1e-4)
    assert float(np.mean(first["bid_shading"])) == pytest.approx(0.25, abs=1e-6)
    np.testing.assert_allclose(second["bid_shading"], 0.0, atol=1e-9)
    # Pay-as-bid revenue = (n-1)/n of the best value; second price = the second value.
    np.testing.assert_allclose(
        first["improvement_bps"], 0.75 * first["best_real_value_bps"], rtol=1e-6
    )


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_equilibrium_bid_is_n_minus_one_over_n_for_uniform_values(n: int) -> None:
    view = AuctionView(
        mechanism="discriminatory",
        num_bidders=n,
        value_distribution=value_distribution(("uniform", 0.0, H)),
        min_improvement_bps=0.0,
        max_improvement_bps=math.inf,
    )
    v = np.linspace(0.0, H, 101)
    bids = CompetitiveEquilibriumStrategy().equilibrium_bid(v, view)
    np.testing.assert_allclose(bids, (n - 1) / n * v, atol=1e-4)


@pytest.mark.parametrize(("spec", "n"), [(("lognormal", 3.0, 0.5), 4), (("normal", 30.0, 10.0), 3)])
def test_equilibrium_bid_matches_the_integral_formula(spec: tuple, n: int) -> None:
    dist = value_distribution(spec)
    view = AuctionView(
        mechanism="first_price",  # aliases are resolved by the view
        num_bidders=n,
        value_distribution=dist,
        min_improvement_bps=0.0,
        max_improvement_bps=math.inf,
    )
    strategy = CompetitiveEquilibriumStrategy()
    # Bids below the baseline are refused, so the integral starts at the reserve, 0 bps
    # (it started at F's 1e-12 quantile before the equilibrium honoured the reserve).
    lower = 0.0
    for q in (0.05, 0.25, 0.5, 0.75, 0.95, 0.999):
        v = float(dist.ppf(q))
        integral, _ = integrate.quad(lambda x: float(dist.cdf(x)) ** (n - 1), lower, v, limit=200)
        expected = v - integral / float(dist.cdf(v)) ** (n - 1)
        assert float(strategy.equilibrium_bid(v, view)) == pytest.approx(expected, rel=1e-5)
        assert float(strategy.equilibrium_bid(v, view)) < v


def test_first_price_revenue_equivalence_for_lognormal_values() -> None:
    """Expected pay-as-bid revenue = E[second-highest of n values], for non-uniform F too."""
    n, spec = 4, ("lognormal", 3.0, 0.5)
    dist = value_distribution(spec)
    sim = textbook(
        n, "first_price", "equilibrium", num_simulations=40_000, seed=5, distribution=spec
    )
    cols = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY).columns
    mean, se = _mean_and_se(cols["improvement_bps"])

    def density_of_second(x: float) -> float:
        f, cdf = float(dist.pdf(x)), float(dist.cdf(x))
        return x * n * (n - 1) * cdf ** (n - 2) * (1.0 - cdf) * f

    expected, _ = integrate.quad(density_of_second, 0.0, float(dist.ppf(1 - 1e-12)), limit=400)
    assert abs(mean - expected) < 4 * se, (mean, expected, se)


def test_market_conditions_do_not_move_independent_private_values() -> None:
    from phantom_auction.simulation import MarketConditions

    indep = run_monte_carlo(
        textbook(2, "vickrey", "truthful", num_simulations=20_000, seed=3),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
    )
    # Market volatility and trend do not move independent private values.
    sim = textbook(2, "vickrey", "truthful", num_simulations=20_000, seed=3)
    sim.market = MarketConditions(volatility=1.0, trend=1.0)
    moved = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    np.testing.assert_array_equal(
        indep.columns["improvement_bps"], moved.columns["improvement_bps"]
    )
