"""The rule book's array twins agree with each other and with the scalar verdict."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction.mechanisms.rules import (
    AuctionRules,
    reveal_accepted,
    reveal_all_accepted,
    reveal_verdict,
    reveal_verdicts,
    to_us,
)

EDGES = [0.0, -0.0, 1e-300, 5.0, 10.0 - 1e-10, 10.0, 25.0, 50.0, 50.0 + 1e-10, 51.0]
SPECIAL = [math.nan, math.inf, -math.inf, -1.0]
numbers = st.sampled_from(EDGES + SPECIAL) | st.floats(-10.0, 2000.0)
volumes = st.sampled_from([0.0, 1.0, 999.0, 1000.0, 1000.0 * (1 + 1e-13), 1001.0, math.nan])
fees = st.sampled_from([0.0, 0.5, 5.0, 10.0, 10.0 * (1 + 1e-13), 11.0, -1.0, math.nan])
times = st.sampled_from([-0.001, -0.0005, 0.0, 0.0005, 79.9994, 79.9995, 79.9996, 80.0, math.nan])


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 4),
    imp=st.lists(numbers, min_size=12, max_size=12),
    vol=st.lists(volumes, min_size=12, max_size=12),
    fee=st.lists(fees, min_size=12, max_size=12),
    when=st.lists(times, min_size=12, max_size=12),
    one_volume=st.booleans(),
    one_fee=st.booleans(),
    high=st.sampled_from([50.0, math.inf]),
)
def test_accepted_mask_is_the_verdicts(
    rows: int,
    imp: list[float],
    vol: list[float],
    fee: list[float],
    when: list[float],
    one_volume: bool,
    one_fee: bool,
    high: float,
) -> None:
    rules = AuctionRules("vcg", min_bps=10.0, max_bps=high, volume_multiplier=1.0, fee_ratio=0.01)
    limits = rules.limits(1000.0)
    shape = (rows, 12 // rows if 12 % rows == 0 else 1)
    size = shape[0] * shape[1]
    improvement = np.array(imp[:size]).reshape(shape)
    volume = np.array(vol[:size]).reshape(shape)
    priority_fee = np.array(fee[:size]).reshape(shape)
    arrival = np.array(when[:size]).reshape(shape)
    # Strategies send one volume and fee for every slot as a broadcast scalar.
    if one_volume:
        volume = np.broadcast_to(vol[0], shape)
    if one_fee:
        priority_fee = np.broadcast_to(fee[0], shape)
    deadline = to_us(80.0)
    accepted, codes = reveal_verdicts(limits, improvement, volume, priority_fee, arrival, deadline)
    mask = reveal_accepted(limits, improvement, volume, priority_fee, arrival, deadline)
    np.testing.assert_array_equal(mask, accepted)
    assert mask.shape == shape
    without_time = reveal_accepted(limits, improvement, volume, priority_fee)
    for i in range(shape[0]):
        for j in range(shape[1]):
            scalar = reveal_verdict(
                limits, float(improvement[i, j]), float(volume[i, j]), float(priority_fee[i, j])
            )
            assert without_time[i, j] == (scalar is None)
            assert (codes[i, j] == 0) == bool(mask[i, j])
    for i in range(shape[0]):
        whole = reveal_all_accepted(limits, improvement[i], volume[i], priority_fee[i])
        assert whole is bool(without_time[i].all())


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 40),
    bad=st.lists(st.tuples(st.integers(0, 39), st.integers(0, 2), numbers), max_size=2),
    high=st.sampled_from([50.0, math.inf]),
    broadcast=st.booleans(),
)
def test_a_whole_batch_is_accepted_when_every_bid_is(
    n: int, bad: list[tuple[int, int, float]], high: float, broadcast: bool
) -> None:
    # Batches of valid bids with at most two fields replaced by edge values (NaN,
    # infinities, the bounds and just past them): the reductions' verdict is the mask's.
    rules = AuctionRules("vcg", min_bps=10.0, max_bps=high, volume_multiplier=1.0, fee_ratio=0.01)
    limits = rules.limits(1000.0)
    rng = np.random.default_rng(n)
    columns = [rng.uniform(10.0, 50.0, n), rng.uniform(1.0, 1000.0, n), np.zeros(n)]
    columns[2] = columns[1] * rng.uniform(0.0, 0.01, n)
    for i, field, value in bad:
        column = columns[field]
        column[i % n] = value if field == 0 else value * (1000.0 if field == 1 else 0.2)
    improvement, volume, priority_fee = columns
    if broadcast:
        volume = np.broadcast_to(volume[0], (n,))
    mask = reveal_accepted(limits, improvement, volume, priority_fee)
    assert reveal_all_accepted(limits, improvement, volume, priority_fee) is bool(mask.all())
