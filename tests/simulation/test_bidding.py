"""The object path's bids by group: uniforms drawn ahead are the ones drawn one by one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction.simulation import PhantomSimulator, SimulationConfig, run_simulation
from phantom_auction.simulation.bidding import BidderStreams, bidding_groups
from phantom_auction.simulation.environment import Streams, UniformsAhead

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
