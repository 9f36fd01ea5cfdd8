"""The engine's fast paths (issue 12, engine cost) against the reference path they stand
for, bit for bit: the rule book's one-call reveal check, the lazily sorted value order
(two maximum scans for a Vickrey clearing), settle() against a settlement written with
the full sort and the rule book's two-call verdict, and the pooled seed's commitment."""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from phantom_auction.engine import (
    ImprovementBid,
    Outcome,
    SettlementRequest,
    finalize_auction,
    make_bid,
    submit_bid,
)
from phantom_auction.engine.auction import Auction, reveal_bid
from phantom_auction.engine.phantoms import PhantomColumns
from phantom_auction.engine.result import Fill
from phantom_auction.engine.settlement import _batch_finite_bps, _finite_bps, bid_table, settle
from phantom_auction.mechanisms.clearing import ValueOrder, clear_ranked, clear_ranked_winners
from phantom_auction.mechanisms.rules import (
    AuctionRules,
    RevealLimits,
    fill_improvement,
    improvement_bps,
    phantom_floor,
    price_of,
    reserve_score,
    reveal_check,
    reveal_verdict,
)

from .engine_support import PAIR, T0, config, ms

ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
# Few distinct values, so that ties are common.
SCORES = st.sampled_from([0.0, 1.0, 2.0, 2.5, 5.0, 100.0]) | st.floats(0, 200)


def _bits(x: float) -> bytes:
    return struct.pack(">d", x)


@settings(max_examples=400)
@given(
    st.tuples(ANY_FLOAT, ANY_FLOAT, ANY_FLOAT, ANY_FLOAT),
    st.floats(min_value=1e-300, max_value=1e300),
    ANY_FLOAT,
    ANY_FLOAT,
    ANY_FLOAT,
)
@example((0.0, math.inf, 10.0, 0.01), 100.0, math.inf, 1.0, 0.0)  # an infinite improvement
@example((0.0, 50.0, 10.0, 0.01), 100.0, math.nan, 1.0, 0.0)
@example((0.0, 50.0, 10.0, 0.01), 100.0, 100.2, 10.0, 0.1)  # on the limits: accepted
@example((0.0, 50.0, 10.0, 0.01), 100.0, 100.2, 10.0, math.nextafter(0.1, 1.0))
def test_reveal_check_is_the_verdict_of_the_improvement(
    bounds: tuple[float, float, float, float],
    baseline: float,
    price: float,
    volume: float,
    fee: float,
) -> None:
    limits = RevealLimits(*bounds)
    expected = reveal_verdict(limits, improvement_bps(price, baseline), volume, fee)
    assert reveal_check(limits, baseline, price, volume, fee) is expected


@settings(max_examples=400)
@given(st.lists(SCORES | ANY_FLOAT, max_size=30), st.integers(0, 31))
def test_value_order_is_the_stable_descending_sort(values: list[float], read: int) -> None:
    expected = sorted(range(len(values)), key=values.__getitem__, reverse=True)
    # Iterated first (the head from two scans), read partly, then in full.
    order = ValueOrder(values)
    head = []
    for i in order:
        if len(head) == read:
            break
        head.append(i)
    assert head == expected[:read]
    assert list(order) == expected
    assert order == expected and len(order) == len(values)
    # Indexed first (sorted at once).
    indexed = ValueOrder(values)
    assert [indexed[k] for k in range(len(values))] == expected
    assert indexed[:3] == expected[:3]


@pytest.mark.parametrize("mechanism", ["vcg", "vickrey", "uniform", "discriminatory"])
@settings(max_examples=150)
@given(st.lists(st.tuples(SCORES, SCORES), max_size=25), st.floats(0, 300))
def test_clearing_on_a_value_order_is_clearing_on_the_sorted_list(
    mechanism: str, bids: list[tuple[float, float]], supply: float
) -> None:
    values = [v for v, _ in bids]
    quantities = [q for _, q in bids]
    order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
    expected = clear_ranked(values, quantities, order, supply=supply, mechanism=mechanism)
    got = clear_ranked(values, quantities, ValueOrder(values), supply=supply, mechanism=mechanism)
    assert got == expected


def _reference_settle(
    book: AuctionRules,
    reals: Sequence[ImprovementBid],
    phantoms: PhantomColumns,
    baseline: float,
    amount: float,
) -> tuple[Outcome, list[Fill], bool, list[float] | None, list[float | None] | None]:
    """settle() as it was before the fast paths: the whole table sorted at once, the
    reals' order filtered out of it."""
    table = bid_table(book, reals, phantoms, baseline, amount)
    n = len(table.prices)
    if n == 0:
        return Outcome.NO_BIDS, [], False, None, None
    if n < book.min_participants:
        return Outcome.INSUFFICIENT_PARTICIPANTS, [], False, None, None
    scores = table.scores
    order = sorted(range(n), key=scores.__getitem__, reverse=True)
    n_real = len(reals)
    floor = 0.0
    if book.phantom_policy == "floor":
        floor = phantom_floor(book, scores[n_real:])
        cleared, volumes = scores[:n_real], table.volumes[:n_real]
        ranked = [i for i in order if i < n_real]
    else:
        cleared, volumes, ranked = scores, table.volumes, order
    _, allocated, payment, winners = clear_ranked_winners(
        cleared,
        volumes,
        ranked,
        supply=amount,
        reserve=reserve_score(book),
        mechanism=book.mechanism,
    )
    allocated += [0.0] * (n - len(allocated))
    fill_prices: list[float | None] = [None] * n
    fills = []
    for i in winners:
        if i >= n_real:
            continue
        own = table.improvements[i]
        paid = fill_improvement(book, payment[i], allocated[i], own, table.fees_bps[i], floor)
        price = table.prices[i] if paid == own else price_of(paid, baseline)
        fill_prices[i] = price
        fills.append(Fill(reals[i].bidder_id, allocated[i], price))
    phantom_won = book.phantom_policy != "floor" and order[0] >= n_real
    outcome = Outcome.FILLED if fills else Outcome.PHANTOM_WON if phantom_won else Outcome.NO_BIDS
    return outcome, fills, phantom_won, allocated, fill_prices


BPS_OFFERS = st.lists(
    st.tuples(st.sampled_from([10, 12, 20, 20, 35, 50]) | st.integers(10, 50), st.integers(1, 9)),
    max_size=22,
)


@pytest.mark.parametrize("policy", ["floor", "reserve"])
@pytest.mark.parametrize("mechanism", ["vickrey", "uniform", "vcg", "discriminatory"])
@settings(max_examples=60, deadline=None)
@given(BPS_OFFERS, BPS_OFFERS)
def test_settle_is_the_reference_settlement_bit_for_bit(
    policy: str,
    mechanism: str,
    reals_spec: list[tuple[int, int]],
    phantom_spec: list[tuple[int, int]],
) -> None:
    book = AuctionRules.from_config(
        config(mechanism=mechanism, phantom_policy=policy, min_participants=1)
    )
    baseline, amount = 100.0, 1000.0
    reals = [
        make_bid("a", f"b{i}", PAIR, baseline * (1 + bps / 10_000), 100.0 * vol, 0.5 * vol, 1)
        for i, (bps, vol) in enumerate(reals_spec)
    ]
    phantoms: PhantomColumns = (
        tuple(range(len(phantom_spec))),
        tuple(baseline * (1 + bps / 10_000) for bps, _ in phantom_spec),
        tuple(100.0 * vol for _, vol in phantom_spec),
        tuple(0.25 * vol for _, vol in phantom_spec),
    )
    got = settle(book, reals, phantoms, baseline, amount)
    outcome, fills, phantom_won, allocated, fill_prices = _reference_settle(
        book, reals, phantoms, baseline, amount
    )
    assert (got.outcome, got.phantom_won) == (outcome, phantom_won)
    assert [(f.bidder_id, _bits(f.volume), _bits(f.price)) for f in got.fills] == [
        (f.bidder_id, _bits(f.volume), _bits(f.price)) for f in fills
    ]
    columns = got.ranking.columns  # type: ignore[attr-defined]
    if allocated is not None:
        assert columns is not None
        assert list(columns.allocated) == allocated
        assert list(columns.fill_prices) == fill_prices
        n = len(columns.scores)
        assert list(columns.order) == sorted(
            range(n), key=list(columns.scores).__getitem__, reverse=True
        )


def test_the_command_functions_are_the_methods() -> None:
    # No wrapper layer: submit_bid(auction, bid, now=...) is Auction.commit itself.
    assert submit_bid is Auction.commit
    assert reveal_bid is Auction.reveal
    assert finalize_auction is Auction.finalize


def test_a_pooled_opening_publishes_the_sha256_of_its_seed() -> None:
    auction = Auction(
        SettlementRequest(*PAIR, 1000.0), 100.0, 1000.0, T0 + ms(100), config=config(), now=T0
    )
    assert auction.phantom_commitment == hashlib.sha256(auction.phantom_seed).digest()


def test_a_lazy_ranking_is_the_ranking_of_its_columns() -> None:
    from phantom_auction.engine.result import Ranking, RankingColumns

    fields = (
        ["a", "b", "phantom-0"],
        2,
        [100.3, 100.2, 100.25],
        [600.0, 500.0, 300.0],
        [0.0, 1.0, 0.5],
        [600.0, 400.0, 0.0],
        [100.2, 100.2, None],
        [0, 2, 1],
        [30.0, 20.0, 25.0],
        [0.0, 10.0, 5.0],
        [30.0, 20.0, 25.0],
    )
    lazy = Ranking.of_columns(*fields)
    eager = Ranking(columns=RankingColumns(*fields))
    assert len(lazy) == len(eager) == 3
    assert lazy.columns == eager.columns
    assert tuple(lazy) == tuple(eager)
    assert [r.bidder_id for r in lazy] == ["a", "phantom-0", "b"]
    assert lazy == eager


BIG = st.sampled_from([0.0, -0.0, 1.0, 1e300, 1.7e308, math.inf]) | st.floats(0.0, 1e308)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(BIG, min_size=1, max_size=6),
    st.lists(st.sampled_from([-1e308, -math.inf, math.nan, 1e308]) | ANY_FLOAT, max_size=4),
    st.sampled_from([1e-300, 1e-3, 1.0, 1000.0]),
)
def test_a_batchs_fees_in_bps_are_finite_as_the_whole_lists(
    reals: list[float], phantoms: list[float], amount: float
) -> None:
    # A batch's fees are >= 0 (the verdict): its largest alone decides its bps' bounds.
    fees = reals + phantoms
    assert _batch_finite_bps(fees, max(reals), phantoms, amount) == _finite_bps(fees, amount)
