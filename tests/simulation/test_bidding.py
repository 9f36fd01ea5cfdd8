"""The object path's bids by group: uniforms drawn ahead are the ones drawn one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction.simulation import (
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
    create_strategy,
    run_simulation,
    simulator,
    strategy_names,
)
from phantom_auction.simulation.bidding import BidderStreams, _prepared, bidding_groups
from phantom_auction.simulation.environment import Streams, UniformsAhead
from phantom_auction.simulation.strategies.base import BidBatch

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY


def _fresh(n: int) -> list[np.random.Generator]:
    return Streams.from_seed(np.random.SeedSequence(11), n).bidders


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([(0, 1, 2), (3, 4), (0, 1, 2, 3, 4)]),  # a group, or the scalar 5
            st.integers(1, 70),
        ),
        max_size=40,
    )
)
def test_draws_ahead_equal_draws_one_by_one(calls: list[tuple[tuple[int, ...], int]]) -> None:
    # Groups change, block sizes change and scalar forms draw in between: every bidder
    # still sees its stream's numbers in order, and nothing is skipped or reused.
    ahead, rngs, plain = UniformsAhead(), _fresh(6), _fresh(6)
    for group, block in calls:
        if len(group) == 5:  # the bidders called one by one, in the scalar form
            ahead.give_back(rngs, group)
            for i in group:
                np.testing.assert_array_equal(rngs[i].random(block), plain[i].random(block))
            continue
        got = BidderStreams(ahead, rngs, group).random((len(group), block))
        want = np.stack([plain[i].random(block) for i in group])
        np.testing.assert_array_equal(got, want)
    ahead.give_back(rngs, range(6))
    for rng, same in zip(rngs, plain, strict=True):  # every stream back where it should be
        np.testing.assert_array_equal(rng.random(5), same.random(5))


def test_a_one_dimensional_draw_takes_one_number_per_bidder() -> None:
    ahead, rngs, plain = UniformsAhead(), _fresh(3), _fresh(3)
    for _ in range(50):
        got = BidderStreams(ahead, rngs, (0, 2)).random((2,))
        assert got.shape == (2,)
        np.testing.assert_array_equal(got, [plain[0].random(), plain[2].random()])


def test_successive_auctions_do_not_depend_on_drawing_ahead() -> None:
    # The same runs with the buffer given back before every auction (nothing ahead).
    config = SimulationConfig(seed=5, num_real_bidders=30)
    ahead_sim, plain_sim = PhantomSimulator(config), PhantomSimulator(config)
    for _ in range(40):
        streams = plain_sim.streams()
        streams.ahead.give_back(streams.bidders, range(len(streams.bidders)))
        a = run_simulation(ahead_sim, BASELINE_PRICE, BASELINE_QUANTITY)
        b = run_simulation(plain_sim, BASELINE_PRICE, BASELINE_QUANTITY)
        assert a.row == b.row
        assert list(a.all_bids) == list(b.all_bids)


def test_built_in_bidders_bid_by_strategy() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=1, num_real_bidders=20))
    env = sim.environment(BASELINE_PRICE, BASELINE_QUANTITY)
    groups = bidding_groups(env, sim.strategies)
    assert len(groups.together) == 5 and not groups.alone  # the five seed strategies
    assert sorted(i for g in groups.together for i in g) == list(range(20))
    for g in groups.together:
        assert len({type(sim.strategies[i]) for i in g}) == 1


class _Rows:
    """A generator stand-in for a batch form whose rows are ``streams``' next blocks."""

    def __init__(self, streams: list[np.random.Generator]) -> None:
        self.streams = streams

    def random(self, size: tuple[int, ...]) -> np.ndarray:
        block = int(np.prod(size[1:]))
        return np.stack([rng.random(block) for rng in self.streams]).reshape(size)


def _same_batch(got: BidBatch, want: BidBatch) -> None:
    for field in ("improvement_bps", "quantity", "timestamp_ms", "priority_fee", "present"):
        a, b = np.asarray(getattr(got, field)), np.asarray(getattr(want, field))
        assert a.shape == b.shape, field
        np.testing.assert_array_equal(a, b, err_msg=field)  # NaN == NaN, bit for bit
    if want.tag is None:
        assert got.tag is None
    else:
        np.testing.assert_array_equal(got.tag, want.tag)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(strategy_names()),
    bidders=st.integers(1, 9),
    auctions=st.integers(1, 80),
    textbook=st.booleans(),
    volatility=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_prepared_ahead_equals_the_batch_form_auction_by_auction(
    name: str, bidders: int, auctions: int, textbook: bool, volatility: float, seed: int
) -> None:
    # The object path prepares a group's rows for every auction of a buffer of uniforms
    # at once and finishes each auction when its values come: the same bids, to the bit,
    # as the batch form called auction by auction on the same uniforms.
    textbook_mode = {"value_distribution": ("uniform", 0.0, 60.0), "num_phantom_bidders": 0}
    config = SimulationConfig(
        seed=seed,
        num_real_bidders=bidders,
        real_strategy=name,
        **(textbook_mode if textbook else {}),
    )
    assert config.textbook == textbook
    market = MarketConditions(volatility=volatility)
    strategies = [create_strategy(name) for _ in range(bidders)]
    env = PhantomSimulator(config, market, strategies).environment(
        BASELINE_PRICE, BASELINE_QUANTITY
    )
    group = tuple(range(bidders))
    ahead, rngs, plain = UniformsAhead(), _fresh(bidders), _fresh(bidders)
    values = np.random.default_rng(seed).normal(20.0, 30.0, (auctions, bidders))
    strategy = strategies[0]
    draws = strategy.batch_draws(env.view)
    assert draws is not None
    for a in range(auctions):
        prepared = _prepared(env, strategy, group, ahead, ahead.take_at(rngs, group, draws))
        got = strategy.finish_batch(
            env.view, env.market, BASELINE_PRICE, BASELINE_QUANTITY, values[a], prepared
        )
        want = create_strategy(name).generate_batch(
            env.view, env.market, BASELINE_PRICE, BASELINE_QUANTITY, values[a], _Rows(plain)
        )
        assert want is not None
        _same_batch(got, want)


def test_a_changed_policy_is_prepared_again() -> None:
    # An adaptive bidder's policy is part of what it prepares: when it changes between
    # auctions of one buffer, the rows are prepared again under the new one.
    config = SimulationConfig(seed=3, num_real_bidders=4, real_strategy="adaptive")
    strategies = [create_strategy("adaptive") for _ in range(4)]
    env = PhantomSimulator(config, strategies=strategies).environment(
        BASELINE_PRICE, BASELINE_QUANTITY
    )
    group, strategy = (0, 1, 2, 3), strategies[0]
    ahead, rngs, plain = UniformsAhead(), _fresh(4), _fresh(4)
    values = np.full(4, 30.0)
    for a in range(6):
        if a == 3:
            strategy.q_values[7] = 5.0  # a new greedy action
            strategy._policy_block = -1
        prepared = _prepared(env, strategy, group, ahead, ahead.take_at(rngs, group, 3))
        got = strategy.finish_batch(
            env.view, env.market, BASELINE_PRICE, BASELINE_QUANTITY, values, prepared
        )
        want = strategy.generate_batch(
            env.view, env.market, BASELINE_PRICE, BASELINE_QUANTITY, values, _Rows(plain)
        )
        assert want is not None
        _same_batch(got, want)
    assert strategy._greedy == 7


def test_a_replaced_strategy_object_is_seen() -> None:
    # The simulator's environment and the bidding groups are cached by the identity of
    # the strategy objects: replacing one in the list (same length) is seen.
    sim = PhantomSimulator(SimulationConfig(seed=2, num_real_bidders=6))
    first = run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    env = sim.environment(BASELINE_PRICE, BASELINE_QUANTITY)
    assert sim.environment(BASELINE_PRICE, BASELINE_QUANTITY) is env  # cached
    before = bidding_groups(env, sim.strategies)
    sim.strategies[0] = create_strategy("truthful")
    changed = sim.environment(BASELINE_PRICE, BASELINE_QUANTITY)
    assert changed is not env and changed.labels[0] == "truthful"
    groups = bidding_groups(changed, sim.strategies)
    assert groups is not before and (0,) in groups.together
    again = run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert "profit_bps:truthful" in again.row and "profit_bps:truthful" not in first.row
    # An equal config object (not the same one) keeps the rules: the same environment.
    sim.config = SimulationConfig(seed=2, num_real_bidders=6)
    assert sim.environment(BASELINE_PRICE, BASELINE_QUANTITY) is changed


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([(0, 1, 2), (3, 4), (0, 1, 2, 3, 4)]),
            st.integers(1, 70),
            st.integers(1, 40),
        ),
        max_size=30,
    )
)
def test_spans_of_auctions_drawn_ahead_equal_draws_one_by_one(
    calls: list[tuple[tuple[int, ...], int, int]],
) -> None:
    # take_at(..., auctions): the next blocks of several auctions at once (run_simulation
    # working out auctions ahead), mixed with one-auction takes and other groups.
    ahead, rngs, plain = UniformsAhead(), _fresh(6), _fresh(6)
    for group, block, auctions in calls:
        buffer, at = ahead.take_at(rngs, group, block, auctions)
        got = buffer[:, at : at + auctions]
        want = np.stack([plain[i].random((auctions, block)) for i in group])
        np.testing.assert_array_equal(got, want)
    ahead.give_back(rngs, range(6))
    for rng, same in zip(rngs, plain, strict=True):
        np.testing.assert_array_equal(rng.random(5), same.random(5))


def test_auctions_worked_out_ahead_equal_one_auction_a_call() -> None:
    # run_simulation works out up to AHEAD auctions at once (bids, verdicts, standing
    # bids); a simulator made to give back what it drew ahead after every call runs one
    # auction a call. Baselines change, strategies are replaced and appended mid-lot:
    # the numbers are the same, and what was drawn ahead and not used is given back.
    config = SimulationConfig(seed=14, num_real_bidders=30)
    ahead_sim, plain_sim = PhantomSimulator(config), PhantomSimulator(config)
    sizes = set()
    for call in range(220):
        price = BASELINE_PRICE * (1.0 + 0.01 * (call // 100))  # a new environment now and then
        for sim in (ahead_sim, plain_sim):
            if call == 20:
                sim.strategies[3] = create_strategy("truthful")
            if call == 150:
                sim.strategies.append(create_strategy("random_walk"))
        a = run_simulation(ahead_sim, price, BASELINE_QUANTITY)
        b = run_simulation(plain_sim, price, BASELINE_QUANTITY)
        plain_sim.give_back()
        sizes.add(ahead_sim._ahead._size)
        assert a.row == b.row, call
        assert list(a.all_bids) == list(b.all_bids), call
        np.testing.assert_array_equal(a.convergence_path, b.convergence_path)
        assert a.execution_trace["rejected_bids"] == b.execution_trace["rejected_bids"]
        assert a.vcg_result == b.vcg_result
    assert max(sizes) == simulator.AHEAD  # it did work ahead, up to the most
    assert plain_sim._ahead._size == 1
    # Given back mid-lot, every generator stands where one auction a call left it.
    ahead_sim.give_back()
    ahead, plain = ahead_sim.streams(), plain_sim.streams()
    for mine, theirs in zip(
        [ahead.market, ahead.phantom, *ahead.bidders],
        [plain.market, plain.phantom, *plain.bidders],
        strict=True,
    ):
        assert mine.bit_generator.state == theirs.bit_generator.state
