"""One contract every strategy passes (Axelrod style), plus each strategy's promise."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import InvalidBidParameters
from phantom_auction.simulation import (
    STRATEGIES,
    AdaptiveStrategy,
    AuctionView,
    Bid,
    BidderStrategy,
    LabelledStrategy,
    MarketConditions,
    SimulationConfig,
    create_strategy,
    filter_strategies,
    strategy_names,
)
from phantom_auction.simulation.market import value_distribution
from phantom_auction.simulation.strategies.base import ROW_BLOCK, add_to_rows, call_generate_bids

from .test_seed_examples import DuckTypedStrategy, MyCustomStrategy

BP, BQ = 100.0, 1000.0
MARKET = MarketConditions()
VIEWS = {
    "engine": AuctionView(value_distribution=value_distribution(("normal", 20.0, 15.0))),
    "first price": AuctionView(
        mechanism="first_price", value_distribution=value_distribution(("uniform", 0, 60))
    ),
    "textbook": AuctionView(
        min_improvement_bps=0.0,
        max_improvement_bps=math.inf,
        whole_order=True,
        mechanism="first_price",
        value_distribution=value_distribution(("uniform", 0, 100)),
    ),
}
ALL = [*strategy_names(), "custom", "duck"]


def make(name: str) -> object:
    if name == "custom":
        return MyCustomStrategy(0.8)
    if name == "duck":
        return DuckTypedStrategy()
    return create_strategy(name)


def bids_for(
    strategy: object, values: list[float], seed: int, view: AuctionView
) -> list[list[Bid]]:
    rng = np.random.default_rng(seed)
    return [
        call_generate_bids(strategy, BP, BQ, MARKET, rng, BP * (1 + v / 1e4), view) for v in values
    ]


@pytest.mark.parametrize("view_name", list(VIEWS))
@pytest.mark.parametrize("name", ALL)
def test_strategy_contract(name: str, view_name: str) -> None:
    view = VIEWS[view_name]
    values = list(np.linspace(-20.0, 120.0, 57))
    strategy = make(name)
    first = bids_for(strategy, values, 5, view)
    # Same seed, same bids; and a pickled copy bids the same.
    assert bids_for(make(name), values, 5, view) == first
    assert bids_for(pickle.loads(pickle.dumps(strategy)), values, 5, view) == first
    if name in ("custom", "duck"):
        return  # the seed's custom examples make no promise about bounds or values
    for v, bids in zip(values, first, strict=True):
        times = [b.timestamp for b in bids]
        assert times == sorted(times)
        for b in bids:
            imp = (b.price / BP - 1) * 1e4
            assert view.min_improvement_bps - 1e-9 <= imp <= view.max_improvement_bps + 1e-9
            # Individually rational: never an offer above its own value.
            assert imp <= v + 1e-9
            assert 0 < b.quantity <= BQ * view.max_volume_fraction
            assert 0 <= b.priority_fee <= b.quantity * view.priority_fee_max_ratio + 1e-12
            assert 0 <= b.timestamp <= view.duration_ms
            if view.whole_order:
                assert b.quantity == BQ


@pytest.mark.parametrize("view_name", list(VIEWS))
@pytest.mark.parametrize("name", strategy_names())
def test_batch_form_equals_scalar_form(name: str, view_name: str) -> None:
    view = VIEWS[view_name]
    values = np.linspace(-20.0, 120.0, 57)
    scalar = bids_for(create_strategy(name), list(values), 9, view)
    strategy = create_strategy(name)
    batch = strategy.generate_batch(view, MARKET, BP, BQ, values, np.random.default_rng(9))
    assert batch is not None
    for a, bids in enumerate(scalar):
        present = np.flatnonzero(batch.present[a])
        assert len(present) == len(bids)
        for k, bid in zip(present, bids, strict=True):
            assert batch.improvement_bps[a, k] == pytest.approx(
                (bid.price / BP - 1) * 1e4, abs=1e-8
            )
            assert batch.timestamp_ms[a, k] == pytest.approx(bid.timestamp, abs=1e-12)
            assert batch.quantity[a, k] == pytest.approx(bid.quantity, rel=1e-12)
            assert batch.priority_fee[a, k] == pytest.approx(bid.priority_fee, rel=1e-12)


@pytest.mark.parametrize(
    "view", [AuctionView(), AuctionView(window_ms=95.0, duration_ms=90.0)], ids=["open", "cut"]
)
@pytest.mark.parametrize("name", ["random_walk", "aggressive", "conservative"])
def test_batch_times_equal_scalar_times_over_many_rows(name: str, view: AuctionView) -> None:
    # 600 rows: past ROW_BLOCK and CUMSUM_LOOP_ROWS and a multiple of neither, so the
    # blocked and column-wise passes run, with a remainder. "cut": the last slots' times
    # pass the auction's end and are capped; "open": they cannot (the cap is skipped).
    values = np.linspace(-20.0, 120.0, 600)
    scalar = bids_for(create_strategy(name), list(values), 11, view)
    batch = create_strategy(name).generate_batch(
        view, MARKET, BP, BQ, values, np.random.default_rng(11)
    )
    assert batch is not None
    assert float(np.max(batch.timestamp_ms)) <= view.duration_ms
    for a, bids in enumerate(scalar):
        present = np.flatnonzero(batch.present[a])
        assert batch.timestamp_ms[a, present].tolist() == [b.timestamp for b in bids]


@pytest.mark.parametrize("rows", [0, 3, ROW_BLOCK, 2 * ROW_BLOCK + 5])
def test_add_to_rows_is_broadcast_addition_bit_for_bit(rows: int) -> None:
    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, 17)) * 1e3
    row = rng.standard_normal(17)
    assert np.array_equal(add_to_rows(a.copy(), row), a + row)
    wide = rng.standard_normal((rows, 20))
    strided = wide[:, 2:19]  # not contiguous: added as numpy would
    expected = strided + row
    assert np.array_equal(add_to_rows(strided, row), expected)


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(strategy_names()),
    value=st.floats(-50.0, 400.0),
    low=st.floats(0.0, 30.0),
    width=st.floats(1.0, 80.0),
    window=st.floats(20.0, 90.0),
    volatility=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_bids_stay_in_bounds_for_any_rules(
    name: str, value: float, low: float, width: float, window: float, volatility: float, seed: int
) -> None:
    view = AuctionView(
        window_ms=window,
        duration_ms=100.0,
        min_improvement_bps=low,
        max_improvement_bps=low + width,
        value_distribution=value_distribution(("uniform", 0.0, 100.0)),
    )
    market = MarketConditions(volatility=volatility)
    rng = np.random.default_rng(seed)
    for bid in create_strategy(name).generate_bids(
        BP, BQ, market, rng, private_value=BP * (1 + value / 1e4), view=view
    ):
        imp = (bid.price / BP - 1) * 1e4
        assert low - 1e-9 <= imp <= min(low + width, value) + 1e-9
        assert 0 <= bid.timestamp <= 100.0


def test_each_strategy_does_what_it_promises() -> None:
    view = VIEWS["engine"]
    v = BP * (1 + 45.0 / 1e4)
    rng = np.random.default_rng(1)
    aggressive = create_strategy("aggressive").generate_bids(
        BP, BQ, MARKET, rng, private_value=v, view=view
    )
    gaps = np.diff([b.timestamp for b in aggressive])
    assert np.all((gaps >= 9.0) & (gaps <= 11.0))  # every ~10 ms
    steps = np.diff([(b.price / BP - 1) * 1e4 for b in aggressive])
    assert np.all((steps >= -1e-9) & (steps <= 15.0 + 1e-9))  # 10-15 bps raises, then capped
    assert max((b.price / BP - 1) * 1e4 for b in aggressive) == pytest.approx(45.0 * 0.98)
    assert all(b.priority_fee <= 0.1 * b.quantity * view.priority_fee_max_ratio for b in aggressive)
    conservative = create_strategy("conservative")
    bids = conservative.generate_bids(BP, BQ, MARKET, rng, private_value=v, view=view)
    assert 2 <= len(bids) <= 3
    starts = np.diff([0.0, *(b.timestamp for b in bids)])
    assert np.all((starts >= 27.0) & (starts <= 33.0))  # every ~30 ms
    assert all(b.priority_fee >= 0.3 * b.quantity * view.priority_fee_max_ratio for b in bids)
    for market in (MarketConditions(volatility=0.7), MarketConditions(liquidity=0.2)):
        assert conservative.generate_bids(BP, BQ, market, rng, private_value=v, view=view) == []
    walk = create_strategy("random_walk").generate_bids(
        BP, BQ, MARKET, rng, private_value=v, view=view
    )
    assert len(walk) > 5 and len({b.price for b in walk}) > 3  # a path, not one bid
    eq = create_strategy("equilibrium").generate_bids(
        BP, BQ, MARKET, rng, private_value=v, view=view
    )
    assert len(eq) == 1 and eq[0].timestamp >= 0.75 * view.window_ms  # strategic timing
    # Without a private value a strategy assumes the view's mean value.
    assert create_strategy("truthful").generate_bid(
        BP, BQ, MARKET, rng, view=view
    ).price == pytest.approx(BP * (1 + 20.0 / 1e4))


def test_registry_and_classifiers() -> None:
    assert set(STRATEGIES) == {
        "truthful",
        "aggressive",
        "conservative",
        "adaptive",
        "random_walk",
        "equilibrium",
    }
    assert (
        type(create_strategy("competitive_equilibrium")).__name__
        == "CompetitiveEquilibriumStrategy"
    )
    assert filter_strategies(learns=True) == ["adaptive"]
    assert filter_strategies(truthful=True) == ["truthful"]
    assert set(filter_strategies(rebids=True)) == {"aggressive", "conservative", "random_walk"}
    for cls in STRATEGIES.values():
        assert set(cls.classifier) == set(BidderStrategy.classifier)
        assert cls.__doc__
    with pytest.raises(InvalidBidParameters, match=r"^name='telepathic': unknown strategy"):
        create_strategy("telepathic")
    # A config names its own field, when it is made (it was accepted until the first run).
    with pytest.raises(InvalidBidParameters, match=r"^real_strategy='truthfull': unknown"):
        SimulationConfig(real_strategy="truthfull")


def test_interface_edges() -> None:
    class Nothing(BidderStrategy):
        pass

    with pytest.raises(NotImplementedError):
        Nothing().generate_bid(BP, BQ, MARKET, np.random.default_rng(0))
    labelled = LabelledStrategy(AdaptiveStrategy(), "learner A")
    assert labelled.label == "learner A" and labelled.classifier["learns"]
    with pytest.raises(InvalidBidParameters, match="shading_levels"):
        AdaptiveStrategy(shading_levels=[1.5])
    with pytest.raises(InvalidBidParameters, match="mechanism"):
        AuctionView(mechanism="dutch")

    class BadReturn:
        def generate_bid(self, price, qty, market, rng):  # type: ignore[no-untyped-def]
            return "a bid"

    with pytest.raises(InvalidBidParameters, match="generate_bid"):
        call_generate_bids(BadReturn(), BP, BQ, MARKET, np.random.default_rng(0), None, None)


class _NearlyOne:
    """An rng whose uniforms are the largest double below 1 (a bid time at the window's end)."""

    def random(self, size: object = None) -> object:
        top = math.nextafter(1.0, 0.0)
        return top if size is None else np.full(size, top)


def test_truthful_bid_timed_at_the_window_end_stays_inside() -> None:
    """``window_ms * u`` rounds to the deadline for u within ~1e-5 of 1, which the
    half-open window leaves out: the truthful bidder must still bid (it once abstained in
    ~1 of 160,000 live auctions)."""
    from phantom_auction.mechanisms.rules import in_window, to_us
    from phantom_auction.simulation.strategies import TruthfulStrategy

    view = AuctionView()
    deadline_us = to_us(view.window_ms)
    assert not in_window(view.window_ms * math.nextafter(1.0, 0.0), deadline_us)
    strategy = TruthfulStrategy()
    bid = strategy.generate_bid(100.0, 10.0, MarketConditions(), _NearlyOne(), view=view)  # type: ignore[arg-type]
    assert bid is not None and in_window(bid.timestamp, deadline_us)
    batch = strategy.generate_batch(
        view,
        MarketConditions(),
        100.0,
        10.0,
        np.full(4, 30.0),
        _NearlyOne(),  # type: ignore[arg-type]
    )
    assert batch is not None and bool(in_window(batch.timestamp_ms, deadline_us).all())
    assert batch.timestamp_ms[0, 0] == bid.timestamp


def test_a_batch_draws_number_without_the_two_steps_is_refused_by_name() -> None:
    class HalfBatch(BidderStrategy):
        def generate_bid(self, *args: object, **kwargs: object) -> None:
            return None

        def batch_draws(self, view: AuctionView) -> int:
            return 1

    with pytest.raises(NotImplementedError, match=r"HalfBatch\.batch_draws .* prepare_batch"):
        HalfBatch().generate_batch(
            AuctionView(),
            MarketConditions(),
            100.0,
            10.0,
            np.full(2, 30.0),
            np.random.default_rng(0),
        )
