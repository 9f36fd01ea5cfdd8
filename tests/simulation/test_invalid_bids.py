"""A bid no strategy may send raises; a bid the rule book refuses is counted.

A NaN, an infinite value or a negative quantity coming out of a strategy is a bug in
the strategy: the simulator raises :class:`InvalidBidParameters` naming the strategy,
the field and the value, on the fast path and on the object path, from the scalar and
the batch form (before, the rule book refused the bid like any other and the results
showed an auction without it: improvement 0, fill 0). A finite bid out of bounds, late
or of volume 0 is a legitimate refusal: no error, and ``refused_bids`` counts it.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import (
    PhantomSimulator,
    SimulationConfig,
    analyze_results,
    run_monte_carlo,
    run_simulation,
)
from phantom_auction.simulation.strategies import InvalidStrategyBid, TruthfulStrategy
from phantom_auction.simulation.strategies.base import Bid, BidBatch

from .conftest import BASELINE_PRICE as BP
from .conftest import BASELINE_QUANTITY as BQ

GOOD = Bid(BP * 1.002, BQ, 10.0, 0.0)  # 20 bps for the whole order, early, no fee

#: (field, bad value) of a Bid: each replaces GOOD's field.
BAD_FIELDS = [
    ("price", math.nan),
    ("price", math.inf),
    ("price", -math.inf),
    ("quantity", math.nan),
    ("quantity", math.inf),
    ("quantity", -1.0),
    ("timestamp", math.nan),
    ("timestamp", math.inf),
    ("priority_fee", math.nan),
    ("priority_fee", -math.inf),
    # Not numbers at all (the API audit: a bare TypeError that named nothing).
    ("price", "100.2"),
    ("quantity", None),
    ("price", complex(100.2, 0.0)),
]


class Sends:
    """A seed-style strategy (``generate_bid`` only) that sends ``bid`` every auction."""

    def __init__(self, name: str, bid: Bid) -> None:
        self.name = name
        self.bid = bid

    def generate_bid(
        self, bp: float, bq: float, market: Any, rng: Any, private_value: Any = None
    ) -> Bid:
        return self.bid


class SometimesNaN:
    """The audit's case: a NaN price half the time (a uniform draw of its own stream)."""

    name = "sometimes_nan"

    def generate_bid(
        self, bp: float, bq: float, market: Any, rng: Any, private_value: Any = None
    ) -> Bid:
        nan = rng.random() < 0.5
        return Bid(math.nan if nan else bp * 1.002, bq, 10.0, 0.0)


def _simulator(strategy: Any, n: int = 3, **config: Any) -> PhantomSimulator:
    settings = {"num_simulations": 300, "seed": 1, **config}
    return PhantomSimulator(
        SimulationConfig(real_strategy=strategy, num_real_bidders=n, **settings)
    )


def _same(value: float, expected: float) -> bool:
    return value == expected or (math.isnan(value) and math.isnan(expected))


def _assert_names(
    error: pytest.ExceptionInfo[InvalidBidParameters], label: str, field: str, value: float
) -> None:
    """The error names the strategy's label, the field and the value."""
    assert isinstance(error.value, InvalidBidParameters)
    assert error.value.field == field
    assert _same(error.value.value, value)
    assert f"strategy {label!r}" in str(error.value)
    assert str(error.value).startswith(f"{field}={value!r}")


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_a_scalar_bid_no_strategy_may_send_raises_on_both_paths(field: str, value: float) -> None:
    bid = GOOD._replace(**{field: value})
    strategy = Sends("broken", bid)
    with pytest.raises(InvalidBidParameters) as fast:
        run_monte_carlo(_simulator(strategy), BP, BQ)
    _assert_names(fast, "broken", field, value)
    with pytest.raises(InvalidBidParameters) as objects:
        run_simulation(_simulator(strategy), BP, BQ)
    _assert_names(objects, "broken", field, value)
    with pytest.raises(InvalidBidParameters) as engine:
        run_monte_carlo(_simulator(strategy), BP, BQ, engine="object")
    _assert_names(engine, "broken", field, value)


def test_the_audits_example_raises_instead_of_reporting_no_improvement() -> None:
    # Before: analyze_results gave improvement 0 and fill 0 over 1,000 auctions.
    sim = _simulator(Sends("nan_bidder", Bid(math.nan, BQ, 10.0, 0.0)), num_simulations=1000)
    with pytest.raises(InvalidBidParameters, match="nan_bidder"):
        analyze_results(run_monte_carlo(sim, BP, BQ))


def test_a_strategy_sending_nan_half_the_time_raises() -> None:
    # Before: the other half made a tight, believable interval of the wrong mean.
    with pytest.raises(InvalidBidParameters) as fast:
        run_monte_carlo(_simulator(SometimesNaN()), BP, BQ)
    _assert_names(fast, "sometimes_nan", "price", math.nan)
    sim = _simulator(SometimesNaN())
    with pytest.raises(InvalidBidParameters) as objects:
        for _ in range(50):  # P(no NaN in 50 auctions x 3 bidders) = 2^-150
            run_simulation(sim, BP, BQ)
    _assert_names(objects, "sometimes_nan", "price", math.nan)


#: (BidBatch field, bad value) of the batch form.
BAD_BATCH_FIELDS = [
    ("improvement_bps", math.nan),
    ("improvement_bps", math.inf),
    ("quantity", -5.0),
    ("quantity", math.nan),
    ("timestamp_ms", math.nan),
    ("priority_fee", math.inf),
]


@pytest.mark.parametrize(("field", "value"), BAD_BATCH_FIELDS)
def test_a_batch_bid_no_strategy_may_send_raises_on_both_paths(
    monkeypatch: pytest.MonkeyPatch, field: str, value: float
) -> None:
    # A built-in strategy whose batch form breaks in one auction's slot: the fast path
    # calls its batch form for a block of auctions, the object path for its group of
    # bidders (both through prepare_batch and finish_batch).
    finish = TruthfulStrategy.finish_batch

    def broken(self: TruthfulStrategy, *args: Any) -> BidBatch:
        batch = finish(self, *args)
        column = np.array(np.broadcast_to(getattr(batch, field), batch.present.shape))
        column[-1, 0] = value
        present = np.array(batch.present)
        present[-1, 0] = True
        return replace(batch, **{field: column, "present": present})

    monkeypatch.setattr(TruthfulStrategy, "finish_batch", broken)
    with pytest.raises(InvalidBidParameters) as fast:
        run_monte_carlo(_simulator("truthful"), BP, BQ)
    _assert_names(fast, "truthful", field, value)
    with pytest.raises(InvalidBidParameters) as objects:
        run_simulation(_simulator("truthful"), BP, BQ)
    _assert_names(objects, "truthful", field, value)


def test_nan_in_slots_without_a_bid_is_padding_not_an_error() -> None:
    # The equilibrium bidder leaves NaN where its value is below the reserve (no bid):
    # not a bid, so no error, and the two paths count the same refusals.
    sim = _simulator("equilibrium", value_distribution=("normal", 10.0, 8.0))
    results = run_monte_carlo(sim, BP, BQ)
    assert (results.columns["num_real_bids"] < 3).any()  # some bidders did not bid
    again = _simulator("equilibrium", value_distribution=("normal", 10.0, 8.0))
    objects = run_monte_carlo(again, BP, BQ, engine="object")
    np.testing.assert_array_equal(results.columns["refused_bids"], objects.columns["refused_bids"])


#: Bids the rule book refuses (default rules: 10-50 bps, 80 ms collection window, volume
#: up to the order, fee up to 1 % of the volume); each is finite and must not raise.
REFUSED = [
    Bid(BP * 1.0006, BQ, 10.0, 0.0),  # 6 bps: below the minimum
    Bid(BP * 1.0060, BQ, 10.0, 0.0),  # 60 bps: above the maximum
    Bid(1e300, BQ, 10.0, 0.0),  # absurd but finite: above the maximum
    Bid(BP * 1.002, 0.0, 10.0, 0.0),  # no volume
    Bid(BP * 1.002, 2 * BQ, 10.0, 0.0),  # more than the order
    Bid(BP * 1.002, BQ, 90.0, 0.0),  # after the collection window
    Bid(BP * 1.002, BQ, -1.0, 0.0),  # before the open
    Bid(BP * 1.002, BQ, 10.0, 0.02 * BQ),  # fee above 1 % of the volume
]


class SendsMany:
    """Sends ``bids`` every auction (re-bids: each is judged)."""

    name = "sends_many"

    def __init__(self, bids: list[Bid]) -> None:
        self.bids = bids

    def generate_bids(self, *args: Any, **kwargs: Any) -> list[Bid]:
        return list(self.bids)


def test_bids_the_rule_book_refuses_do_not_raise_and_are_counted_on_both_paths() -> None:
    n = 3
    strategy = SendsMany([*REFUSED, GOOD])  # one accepted, len(REFUSED) refused each
    fast = run_monte_carlo(_simulator(strategy, n), BP, BQ)
    objects = run_monte_carlo(_simulator(strategy, n), BP, BQ, engine="object")
    expected = np.full(300, n * len(REFUSED))
    np.testing.assert_array_equal(fast.columns["refused_bids"], expected)
    np.testing.assert_array_equal(objects.columns["refused_bids"], expected)
    assert (fast.columns["num_real_bids"] == n).all()  # GOOD stands for each bidder
    stats = analyze_results(fast)["refused_bids"]
    assert stats["mean"] == stats["min"] == stats["max"] == n * len(REFUSED)
    # The object path's trace tells the reasons; the row counts them all.
    one = run_simulation(_simulator(strategy, n), BP, BQ)
    trace = one.execution_trace["rejected_bids"]
    assert one.row["refused_bids"] == sum(trace.values()) == n * len(REFUSED)
    assert trace == {
        "improvement_out_of_bounds": 3 * n,
        "volume_out_of_bounds": 2 * n,
        "late": 2 * n,
        "fee_out_of_bounds": n,
    }
    # A summary-only run keeps the column too.
    summary = run_monte_carlo(_simulator(strategy, n), BP, BQ, keep_rows=False)
    assert analyze_results(summary)["refused_bids"]["mean"] == n * len(REFUSED)


def test_refused_bids_is_zero_when_every_bid_is_accepted() -> None:
    results = run_monte_carlo(_simulator(Sends("good", GOOD)), BP, BQ)
    assert not results.columns["refused_bids"].any()


def test_the_error_reaches_the_caller_from_a_worker_process() -> None:
    error = InvalidStrategyBid("broken", 2, "quantity", -1.0)
    back = pickle.loads(pickle.dumps(error))
    assert isinstance(back, InvalidBidParameters)
    assert (back.strategy, back.bidder, back.field, back.value) == ("broken", 2, "quantity", -1.0)
    assert str(back) == str(error)
    # End to end: the first auction (run here, for the columns' layout) is fine, a later
    # one in a worker's chunk is not.
    late = SendsLater()
    sim = _simulator(late, 2, num_simulations=600, chunk_size=300)
    with pytest.raises(InvalidBidParameters) as raised:
        run_monte_carlo(sim, BP, BQ, workers=2)
    _assert_names(raised, "sends_later", "timestamp", math.nan)


class SendsLater:
    """GOOD for its first 100 calls, then a NaN timestamp."""

    name = "sends_later"

    def __init__(self) -> None:
        self.calls = 0

    def generate_bid(
        self, bp: float, bq: float, market: Any, rng: Any, private_value: Any = None
    ) -> Bid:
        self.calls += 1
        return GOOD if self.calls <= 100 else GOOD._replace(timestamp=math.nan)


def test_a_bid_mapping_with_a_wrong_key_names_it() -> None:
    """The API audit: a dict bid with a misspelt key raised a bare KeyError."""

    class Typo:
        name = "typo"

        def generate_bid(self, bp: float, bq: float, market: Any, rng: Any) -> Any:
            return {"prise": bp * 1.002, "quantity": bq, "timestamp": 10.0, "priority_fee": 0.0}

    with pytest.raises(InvalidBidParameters, match="'price'") as error:
        run_monte_carlo(_simulator(Typo()), BP, BQ)
    assert "generate_bid" in error.value.field


def test_a_mistyped_engine_is_refused() -> None:
    """The API audit: engine="Object" quietly ran the fast path."""
    with pytest.raises(InvalidBidParameters, match="engine"):
        run_monte_carlo(_simulator(Sends("fine", GOOD)), BP, BQ, engine="Object")  # type: ignore[arg-type]
    with pytest.raises(InvalidBidParameters, match="baseline_price"):
        run_monte_carlo(_simulator(Sends("fine", GOOD)), "100", BQ)  # type: ignore[arg-type]


def test_numpy_integers_are_integers() -> None:
    """The API audit: np.int64(3) was refused as "must be an integer >= 0"."""
    config = SimulationConfig(
        num_real_bidders=np.int64(3), seed=np.uint32(7), num_simulations=np.int64(50)
    )  # type: ignore[arg-type]
    assert (config.num_real_bidders, config.seed, config.num_simulations) == (3, 7, 50)
    assert type(config.num_real_bidders) is int


def test_a_learning_run_updates_the_callers_learners_and_refuses_a_shared_one() -> None:
    """The API audit: run_monte_carlo replaced the simulator's learners by copies (a
    learner the caller kept showed nothing of the run), and one learner given to two
    bidders became one Q-table counting both bidders' auctions."""
    from phantom_auction.simulation import MarketConditions
    from phantom_auction.simulation.strategies import AdaptiveStrategy

    mine = AdaptiveStrategy()
    config = SimulationConfig(num_simulations=300, seed=4, enable_learning=True,
                              num_real_bidders=2, real_strategy="truthful")  # fmt: skip
    simulator = PhantomSimulator(config, MarketConditions())
    simulator.strategies.append(mine)
    run_simulation(simulator, BP, BQ)
    assert mine.auctions_learnt == 1
    run_monte_carlo(simulator, BP, BQ)
    assert simulator.strategies[-1] is mine and mine.auctions_learnt == 301
    shared = AdaptiveStrategy()
    twice = PhantomSimulator(
        replace(config, num_real_bidders=0), MarketConditions(), [shared, shared]
    )
    with pytest.raises(InvalidBidParameters, match="the same learner is bidder 0 and bidder 1"):
        run_monte_carlo(twice, BP, BQ)


def test_learners_inside_labelled_strategies_are_written_back_and_not_shared() -> None:
    """The review: a learner given as LabelledStrategy (the documented way to tell two
    learners apart) was written back as its wrapper, so the caller's learner learnt
    nothing; and one learner under two labels was not refused."""
    from phantom_auction.simulation import MarketConditions
    from phantom_auction.simulation.strategies import AdaptiveStrategy
    from phantom_auction.simulation.strategies.base import LabelledStrategy

    config = SimulationConfig(num_simulations=300, seed=4, enable_learning=True,
                              num_real_bidders=0)  # fmt: skip
    inner = AdaptiveStrategy()
    labelled = PhantomSimulator(config, MarketConditions(), [LabelledStrategy(inner, "A")])
    run_monte_carlo(labelled, BP, BQ)
    assert inner.auctions_learnt == 300 and labelled.strategies[0].inner is inner
    shared = AdaptiveStrategy()
    both = [LabelledStrategy(shared, "A"), LabelledStrategy(shared, "B")]
    with pytest.raises(InvalidBidParameters, match="the same learner is bidder 0 and bidder 1"):
        run_monte_carlo(PhantomSimulator(config, MarketConditions(), both), BP, BQ)
