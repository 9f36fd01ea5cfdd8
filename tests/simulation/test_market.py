"""Market model, value distributions and ``SimulationConfig`` validation."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from phantom_auction import InvalidBidParameters
from phantom_auction.config import load_config
from phantom_auction.engine.phantoms import PhantomModel
from phantom_auction.simulation import MarketConditions, PhantomSimulator, SimulationConfig
from phantom_auction.simulation.market import (
    VOLATILITY_BPS,
    ValueModel,
    value_distribution,
)
from phantom_auction.simulation.strategies import create_strategy


@settings(max_examples=50, deadline=None)
@given(
    liquidity=st.floats(0.01, 1.0),
    fraction=st.one_of(st.none(), st.floats(-0.99, 0.99)),
    n=st.integers(1, 30),
)
def test_correlation_matrix_is_positive_definite(
    liquidity: float, fraction: float | None, n: int
) -> None:
    # Any correlation strictly inside (-1/(n-1), 1) is allowed.
    floor = 1.0 / (n - 1) if n > 1 else 1.0
    correlation = None if fraction is None else fraction * (floor if fraction < 0 else 1.0)
    market = MarketConditions(liquidity=liquidity, correlation=correlation, num_bidders=n)
    matrix = market.values_correlation
    assert matrix.shape == (n, n)
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    assert np.linalg.eigvalsh(matrix).min() > 0
    expected = 0.5 * liquidity if correlation is None else correlation
    if n > 1:
        assert matrix[0, 1] == pytest.approx(expected)
    assert np.array_equal(MarketConditions(correlation=0.0).values_correlation, np.eye(20))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("volatility", 1.5),
        ("liquidity", 0.0),
        ("trend", -2.0),
        ("spread", -1.0),
        ("volume", 0.0),
        ("num_bidders", 0),
        ("correlation", 1.0),
        ("correlation", -0.5),  # -1/(20-1) is the floor for 20 bidders
    ],
)
def test_market_conditions_reject_bad_values(field: str, value: float) -> None:
    with pytest.raises(InvalidBidParameters, match=field) as info:
        MarketConditions(**{field: value})  # type: ignore[arg-type]
    assert info.value.value == value


def test_market_mode_moments_follow_the_model() -> None:
    market = MarketConditions(volatility=0.4, liquidity=0.5, trend=0.5, spread=8.0, volume=2e6)
    model = ValueModel.build(market, 4, 1000.0)
    draws = model.draw(np.random.default_rng(1), 100_000)
    # LP fee + impact - half the spread + trend lag.
    center = 30.0 + 10_000.0 * 1000.0 / (2e6 * 0.5) - 4.0 + 20.0 * 0.5
    assert draws.true_premium_bps.mean() == pytest.approx(center, abs=4 * 16.0 / math.sqrt(1e5))
    assert draws.true_premium_bps.std() == pytest.approx(VOLATILITY_BPS * 0.4, rel=0.01)
    noise = draws.values_bps - draws.true_premium_bps[:, None]
    assert noise.std() == pytest.approx(8.0 * 0.9, rel=0.01)
    corr = np.corrcoef(noise.T)
    assert corr[0, 1] == pytest.approx(0.25, abs=0.02)  # 0.5 * liquidity
    # Row by row: drawing k auctions at once equals drawing them one by one.
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    whole = model.draw(rng_a, 10).values_bps
    parts = np.vstack([model.draw(rng_b, 1).values_bps for _ in range(10)])
    assert np.array_equal(whole, parts)


@pytest.mark.parametrize("rho", [0.6, -0.2])
def test_gaussian_copula_for_independent_private_values(rho: float) -> None:
    dist = value_distribution(("uniform", 0.0, 100.0))
    market = MarketConditions(correlation=rho, num_bidders=3)
    model = ValueModel.build(market, 3, 1000.0, dist)
    values = model.draw(np.random.default_rng(2), 60_000).values_bps
    # Marginals stay uniform; the normal scores carry the copula's correlation.
    assert stats.kstest(values[:, 0], dist.cdf).pvalue > 1e-4
    scores = stats.norm.ppf(values / 100.0)
    assert np.corrcoef(scores.T)[0, 1] == pytest.approx(rho, abs=0.02)
    assert np.all(model.draw(np.random.default_rng(3), 10).true_premium_bps == 50.0)
    independent = ValueModel.build(MarketConditions(), 3, 1000.0, dist)
    v = independent.draw(np.random.default_rng(4), 60_000).values_bps
    assert abs(np.corrcoef(v.T)[0, 1]) < 0.02


def test_value_distribution_families() -> None:
    u = value_distribution(("uniform", 10, 30))
    assert (u.mean(), u.std()) == pytest.approx((20.0, 20 / math.sqrt(12)))
    n = value_distribution(("normal", 5, 2))
    assert (n.mean(), n.std()) == pytest.approx((5.0, 2.0))
    ln = value_distribution(("lognormal", 1.0, 0.5))
    assert ln.median() == pytest.approx(math.e)
    frozen = stats.gamma(2.0, scale=10.0)
    assert value_distribution(frozen) is frozen
    for bad in [("beta", 1, 2), ("uniform", 5, 5), ("normal", 0, -1), ("uniform", 0), "normal"]:
        with pytest.raises(InvalidBidParameters, match="value_distribution"):
            value_distribution(bad)
    # A frozen distribution without a closed form goes through ppf and stays finite.
    model = ValueModel.build(MarketConditions(), 2, 1.0, frozen)
    v = model.draw(np.random.default_rng(1), 50_000).values_bps
    assert np.isfinite(v).all() and v.mean() == pytest.approx(20.0, rel=0.02)


def test_simulation_config_resolves_mechanism_and_defaults() -> None:
    cfg = load_config()
    assert SimulationConfig().clearing_mechanism == "vcg"
    assert SimulationConfig(mechanism="first_price").clearing_mechanism == "discriminatory"
    assert SimulationConfig(mechanism="second_price").clearing_mechanism == "vickrey"
    assert SimulationConfig(enable_vcg=False).clearing_mechanism == cfg.phantom_auction.mechanism
    default = SimulationConfig()
    assert default.resolved_chunk_size == cfg.resources.simulation_chunk_size
    assert default.collection_window_ms == 80.0
    assert default.resolved_phantom_model.max_phantom_bidders == 15
    assert (
        default.resolved_phantom_model.mean_bps == cfg.phantom_auction.phantom_improvement_mean_bps
    )
    assert SimulationConfig(auction_duration_ms=50).collection_window_ms == 40.0
    assert not default.textbook
    assert SimulationConfig(num_phantom_bidders=0, value_distribution=("uniform", 0, 1)).textbook
    cfg2 = SimulationConfig(value_distribution=("normal", 1, 2))
    assert pickle.loads(pickle.dumps(cfg2)) == cfg2


def test_config_reads_the_environment() -> None:
    from phantom_auction.config import load_config as load

    custom = load(env={"AUCTION_RESOURCES_SIMULATION_CHUNK_SIZE": "1000"})
    assert SimulationConfig(auction_config=custom).resolved_chunk_size == 1000
    assert SimulationConfig(auction_config=custom, chunk_size=7).resolved_chunk_size == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_real_bidders", -1),
        ("num_phantom_bidders", 1.5),
        ("num_simulations", 0),
        ("auction_duration_ms", 0),
        ("seed", -3),
        ("mechanism", "dutch"),
        ("chunk_size", 0),
        ("reveal_delay_ms", 100),
        ("enable_learning", "yes"),
        ("workers", 0),
        ("phantom_model", "many"),
    ],
)
def test_simulation_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(InvalidBidParameters, match=field):
        SimulationConfig(**{field: value})  # type: ignore[arg-type]


def test_phantom_model_must_match_the_phantom_count() -> None:
    with pytest.raises(InvalidBidParameters, match="max_phantom_bidders"):
        SimulationConfig(num_phantom_bidders=3, phantom_model=PhantomModel(max_phantom_bidders=4))


R3 = [[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]]


def test_the_seeds_correlation_matrix_is_accepted_and_drives_the_copula() -> None:
    market = MarketConditions(volatility=0.3, liquidity=0.7, correlation_matrix=np.array(R3))
    assert market.num_bidders == 3
    np.testing.assert_array_equal(market.values_correlation, R3)
    assert market == MarketConditions(correlation_matrix=R3)  # comparable, hashable
    assert hash(market) == hash(MarketConditions(correlation_matrix=R3))
    dist = value_distribution(("uniform", 0.0, 100.0))
    values = ValueModel.build(market, 3, 1000.0, dist).draw(np.random.default_rng(5), 80_000)
    scores = stats.norm.ppf(values.values_bps / 100.0)
    np.testing.assert_allclose(np.corrcoef(scores.T), R3, atol=0.02)


@pytest.mark.parametrize(
    ("matrix", "needle"),
    [
        ([[1.0, 0.9, 0.9], [0.9, 1.0, -0.9], [0.9, -0.9, 1.0]], "positive definite"),
        ([[1.0, 0.2], [0.3, 1.0]], "symmetric"),
        ([[2.0, 0.0], [0.0, 1.0]], "diagonal"),
        ([[1.0, 0.0, 0.0]], "square"),
        ([[1.0, float("nan")], [float("nan"), 1.0]], "not a finite number"),
    ],
)
def test_a_bad_correlation_matrix_is_named(matrix: list[list[float]], needle: str) -> None:
    with pytest.raises(InvalidBidParameters, match="correlation_matrix") as info:
        MarketConditions(correlation_matrix=matrix)
    assert needle in str(info.value)


def test_correlation_matrix_with_the_scalar_or_a_mismatched_size_is_refused() -> None:
    with pytest.raises(InvalidBidParameters, match="correlation"):
        MarketConditions(correlation=0.1, correlation_matrix=R3)
    with pytest.raises(InvalidBidParameters, match="num_bidders"):
        MarketConditions(num_bidders=4, correlation_matrix=R3)


def test_a_matrix_market_runs_alike_on_both_paths() -> None:
    from phantom_auction import PhantomSimulator, SimulationConfig, run_monte_carlo

    config = SimulationConfig(num_simulations=60, seed=3, num_real_bidders=3)
    sim = PhantomSimulator(config, MarketConditions(correlation_matrix=R3))
    fast = run_monte_carlo(sim, 100.0, 1000.0).columns
    slow = run_monte_carlo(sim, 100.0, 1000.0, engine="object").columns
    np.testing.assert_allclose(fast["improvement_bps"], slow["improvement_bps"], atol=1e-9)
    with pytest.raises(InvalidBidParameters, match="fewer rows"):
        run_monte_carlo(
            PhantomSimulator(config.__class__(num_real_bidders=5, num_simulations=10), sim.market),
            100.0,
            1000.0,
        )


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("volatility", "high", "must be a number in [0, 1]"),
        ("spread", "1", "must be a number in [0, 10000) bps"),
        ("liquidity", None, "must be a number in (0, 1]"),
        ("volume", [1.0], "must be a number finite and > 0"),
        ("amm_fee_bps", "30", "must be a number in [0, 10000) bps"),
        ("correlation", "x", "must be a number"),
        # A bool is not a number here (it was taken as 1 or 0).
        ("volatility", True, "must be a number"),
        ("trend", True, "must be a number"),
        ("correlation", False, "must be a number"),
        ("volatility", np.bool_(True), "must be a number"),
        # Finite but beyond the model: a spread of the whole price (1e300 overflowed).
        ("spread", 1e300, "must be in [0, 10000) bps"),
        ("spread", 10_000.0, "must be in [0, 10000) bps"),
    ],
)
def test_market_conditions_check_types_before_ranges(
    field: str, value: object, needle: str
) -> None:
    with pytest.raises(InvalidBidParameters, match=field) as info:
        MarketConditions(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field and needle in info.value.reason
    assert info.value.value is value


def test_market_conditions_take_numpy_numbers_and_the_widest_spread() -> None:
    market = MarketConditions(volatility=np.float32(0.5), trend=np.float64(-1.0), spread=9_999.0)
    model = ValueModel.build(market, 3, 1000.0)
    draws = model.draw(np.random.default_rng(0), 100)
    assert np.isfinite(draws.values_bps).all()


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"auction_duration_ms": 100_000_000}, "auction_duration_ms", "at most 60,000 ms"),
        ({"auction_duration_ms": 60_001}, "auction_duration_ms", "at most 60,000 ms"),
        ({"num_phantom_bidders": 100_000_000}, "num_phantom_bidders", "at most 10,000"),
        ({"num_real_bidders": 10_001}, "num_real_bidders", "at most 10,000"),
        ({"auction_config": 1}, "auction_config", "must be an AuctionConfig"),
    ],
)
def test_simulation_config_bounds_one_auctions_work(
    changes: dict[str, object], field: str, needle: str
) -> None:
    with pytest.raises(InvalidBidParameters) as info:
        SimulationConfig(**changes)  # type: ignore[arg-type]
    assert info.value.field == field and needle in info.value.reason
    assert info.value.value == changes.get(field, info.value.value)


def test_simulation_config_accepts_the_bounds_themselves() -> None:
    from phantom_auction.simulation.settings import MAX_AUCTION_DURATION_MS, MAX_BIDDERS

    SimulationConfig(num_phantom_bidders=MAX_BIDDERS, num_real_bidders=0)
    SimulationConfig(num_real_bidders=1, auction_duration_ms=MAX_AUCTION_DURATION_MS)


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        # random_walk bids every 5 ms: 17 bids in the packaged 80 ms window.
        ({"num_real_bidders": 600, "real_strategy": "random_walk"}, "num_real_bidders", "10,200"),
        # The default mix of 5 in a 32 s window (10,671 bids): the duration is blamed.
        ({"auction_duration_ms": 40_000}, "auction_duration_ms", "10,671 bids"),
    ],
)
def test_the_real_bids_bound_counts_each_strategys_own_schedule(
    changes: dict[str, object], field: str, needle: str
) -> None:
    """Real bids per auction are counted by each bidder's re-bid schedule when the run's
    rules are resolved: a bidder that bids once counts once. Before, every bidder was
    counted at the finest schedule (one bid per 5 ms), so 600 equilibrium bidders were
    refused in the packaged 100 ms auction."""
    from phantom_auction.simulation.settings import MAX_BIDDERS, MAX_REAL_BIDS_PER_AUCTION
    from phantom_auction.simulation.strategies.base import bid_slots

    simulator = PhantomSimulator(SimulationConfig(num_simulations=1, **changes))  # type: ignore[arg-type]
    with pytest.raises(InvalidBidParameters) as info:
        simulator.environment(100.0, 1000.0)
    assert info.value.field == field and needle in info.value.reason
    many = PhantomSimulator(
        SimulationConfig(
            num_simulations=1, num_real_bidders=MAX_BIDDERS, real_strategy="equilibrium"
        )
    )
    many.environment(100.0, 1000.0)  # 10,000 bidders of one bid each: at the bound
    window = many.config.collection_window_ms
    assert sum(bid_slots(many.strategies, window)) == MAX_REAL_BIDS_PER_AUCTION
    walker = create_strategy("random_walk")
    assert bid_slots([walker], window) == [int(window // 5) + 1]
