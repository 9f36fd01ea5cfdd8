"""Each clearing rule with hand-computed prices (fee_weight 0 and > 0), phantoms setting
prices but never filling, and clearing properties against a brute-force oracle."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from phantom_auction import AuctionResult, Outcome
from phantom_auction.engine import Fill

from .engine_support import T0, clear_bids, config, ms, no_phantoms, offer, open_auction

MECHANISMS = ("vickrey", "discriminatory", "uniform", "vcg")


def _fills(result: AuctionResult) -> list[tuple[str | None, float, float]]:
    return [(f.bidder_id, round(f.volume, 9), round(f.price, 9)) for f in result.fills]


def _three_bids(mechanism: str, **extra: object) -> AuctionResult:
    """Baseline 100, amount 1000: A 100.30 x 600, B 100.20 x 500, C 100.10 x 300, no fees."""
    auction = open_auction(no_phantoms(mechanism=mechanism, **extra))
    return clear_bids(
        auction,
        [
            offer(auction, "A", 100.30, 600.0),
            offer(auction, "B", 100.20, 500.0),
            offer(auction, "C", 100.10, 300.0),
        ],
    )


def test_vickrey_second_score() -> None:
    # A wins up to its volume at B's price; the CFMM takes the other 400 at the baseline.
    result = _three_bids("vickrey")
    assert _fills(result) == [("A", 600.0, 100.2), (None, 400.0, 100.0)]
    assert result.price == pytest.approx((600 * 100.2 + 400 * 100.0) / 1000)  # 100.12
    assert result.improvement_bps == pytest.approx(12.0)
    assert result.winning_bid is not None and result.winning_bid.bidder_id == "A"


def test_discriminatory_pay_as_bid() -> None:
    result = _three_bids("discriminatory")
    assert _fills(result) == [("A", 600.0, 100.3), ("B", 400.0, 100.2)]
    assert result.price == pytest.approx(100.26)


def test_uniform_highest_rejected_unit_price() -> None:
    # A 600 and B 400 of its 500 win; B's 100 unfilled units are the highest rejected:
    # everyone at B's 100.20 (textbook uniform price; the seed priced at C's 100.10).
    result = _three_bids("uniform")
    assert _fills(result) == [("A", 600.0, 100.2), ("B", 400.0, 100.2)]
    assert result.price == pytest.approx(100.2)


def test_uniform_without_rejected_bid_pays_the_reserve() -> None:
    # Nothing rejected: every fill at the reserve, min_improvement_bps = 10 (100.10);
    # with a reserve of 0 bps, at the baseline.
    auction = open_auction(no_phantoms(mechanism="uniform"))
    result = clear_bids(
        auction, [offer(auction, "A", 100.3, 600.0), offer(auction, "B", 100.2, 300.0)]
    )
    assert [(b, v) for b, v, _ in _fills(result)] == [("A", 600.0), ("B", 300.0), (None, 100.0)]
    assert [p for _, _, p in _fills(result)] == pytest.approx([100.1, 100.1, 100.0])
    auction = open_auction(no_phantoms(mechanism="uniform", min_improvement_bps=0.0))
    result = clear_bids(
        auction, [offer(auction, "A", 100.3, 600.0), offer(auction, "B", 100.2, 300.0)]
    )
    assert _fills(result) == [("A", 600.0, 100.0), ("B", 300.0, 100.0), (None, 100.0, 100.0)]


@pytest.mark.parametrize("mechanism", ["vickrey", "vcg", "uniform"])
def test_a_lone_winner_pays_the_reserve(mechanism: str) -> None:
    """No rival above the reserve (min_improvement_bps = 10): the winner pays the
    reserve, as in auction theory, not the baseline; pay-as-bid pays its own price."""
    auction = open_auction(no_phantoms(mechanism=mechanism, min_participants=1))
    result = clear_bids(auction, [offer(auction, "A", 100.3, 1000.0)])
    assert _fills(result) == [("A", 1000.0, pytest.approx(100.1))]
    assert result.improvement_bps == pytest.approx(10.0)


def test_vcg_displaced_values() -> None:
    # The seller values a unit it keeps at the reserve, min_improvement_bps = 10 (100.1).
    # A displaces 100 of B (100.2), 300 of C (100.1) and 200 kept by the seller (100.1):
    # 10020 + 30030 + 20020 = 60070, per unit 100.116666...
    # B displaces 300 of C and 100 of the seller: 30030 + 10010 = 40040, per unit 100.1.
    result = _three_bids("vcg")
    assert [f.bidder_id for f in result.fills] == ["A", "B"]
    assert result.fills[0].price == pytest.approx(60070 / 600)
    assert result.fills[1].price == pytest.approx(40040 / 400)
    assert result.price == pytest.approx((60070 + 40040) / 1000)


def test_ranking_and_scores() -> None:
    result = _three_bids("discriminatory")
    assert [(r.rank, r.bidder_id, r.is_phantom) for r in result.ranking] == [
        (1, "A", False),
        (2, "B", False),
        (3, "C", False),
    ]
    assert [r.score for r in result.ranking] == pytest.approx([30.0, 20.0, 10.0])
    assert [r.allocated for r in result.ranking] == [600.0, 400.0, 0.0]
    assert [r.fill_price for r in result.ranking] == [
        pytest.approx(100.3),
        pytest.approx(100.2),
        None,
    ]


def test_ties_go_to_the_earlier_commit() -> None:
    auction = open_auction(no_phantoms(mechanism="vickrey"))
    result = clear_bids(
        auction, [offer(auction, "first", 100.2, 1000.0), offer(auction, "second", 100.2, 1000.0)]
    )
    assert _fills(result) == [("first", 1000.0, 100.2)]


# -- fee_weight > 0: score = price_weight * improvement_bps + fee_weight * fee_bps --

FEES = {"price_weight": 1.0, "fee_weight": 1.0}


def test_vickrey_with_fee_weight() -> None:
    # A: 20 bps + fee 2 (20 fee bps) = 40; B: 30 bps + fee 0.5 (5 fee bps) = 35.
    # A wins with a lower price; it would still win down to 35 - 20 = 15 bps: 100.15.
    auction = open_auction(no_phantoms(mechanism="vickrey", **FEES))
    result = clear_bids(
        auction,
        [offer(auction, "A", 100.2, 1000.0, fee=2.0), offer(auction, "B", 100.3, 1000.0, fee=0.5)],
    )
    assert [r.score for r in result.ranking] == pytest.approx([40.0, 35.0])
    assert _fills(result) == [("A", 1000.0, 100.15)]


def test_vickrey_with_fee_weight_never_below_baseline() -> None:
    # A: 10 bps + 50 fee bps = 60 beats B's 30; needed improvement 30 - 50 < 0 -> baseline.
    auction = open_auction(no_phantoms(mechanism="vickrey", **FEES))
    result = clear_bids(
        auction, [offer(auction, "A", 100.1, 1000.0, fee=5.0), offer(auction, "B", 100.3, 1000.0)]
    )
    assert _fills(result) == [("A", 1000.0, 100.0)]
    assert result.outcome is Outcome.FILLED


def _fee_bids(mechanism: str) -> AuctionResult:
    """A 100.20 x 600 fee 1.2 (12 fee bps, score 32); B 100.30 x 600 (30); C 100.25 x 300 (25)."""
    auction = open_auction(no_phantoms(mechanism=mechanism, **FEES))
    return clear_bids(
        auction,
        [
            offer(auction, "A", 100.20, 600.0, fee=1.2),
            offer(auction, "B", 100.30, 600.0),
            offer(auction, "C", 100.25, 300.0),
        ],
    )


def test_discriminatory_with_fee_weight_pays_own_price() -> None:
    result = _fee_bids("discriminatory")
    assert _fills(result) == [("A", 600.0, 100.2), ("B", 400.0, 100.3)]


def test_uniform_with_fee_weight() -> None:
    # The clearing score is B's 30 (its 200 unfilled units are the highest rejected):
    # A pays 30 less its 12 fee bps = 18 bps, B its own 30 bps (capped at its price).
    result = _fee_bids("uniform")
    assert _fills(result) == [("A", 600.0, 100.18), ("B", 400.0, 100.3)]
    assert result.price == pytest.approx(100.228)


def test_vcg_with_fee_weight() -> None:
    # Scores as prices: A 100.32, B 100.30, C 100.25. Without A, B would take 600, C 300
    # and the seller keep 100 (valued at the reserve, 100.1); with A, B takes 400. So A
    # displaces 200 of B, 300 of C and 100 of the seller: (20060 + 30075 + 10010) / 600,
    # less its fee term 0.12. B displaces 300 of C and 100 of the seller:
    # (30075 + 10010) / 400 = 100.2125.
    result = _fee_bids("vcg")
    assert result.fills[0].bidder_id == "A"
    assert result.fills[0].price == pytest.approx(60145 / 600 - 0.12)
    assert result.fills[1].price == pytest.approx(40085 / 400)


# -- phantoms: rank and set prices, never fill --


def _one_phantom(mechanism: str, policy: str = "floor") -> tuple[object, float]:
    cfg = config(
        max_phantom_bidders=1, bid_probability=1.0, mechanism=mechanism, phantom_policy=policy
    )
    auction = open_auction(cfg)
    (phantom,) = auction.phantom_bids
    assert 100.1 < phantom.improved_price < 100.5
    return auction, phantom.improved_price


def test_phantom_sets_the_vickrey_price() -> None:
    auction, phantom_price = _one_phantom("vickrey")
    result = clear_bids(auction, [offer(auction, "A", 100.5, 1000.0)])  # type: ignore[arg-type]
    assert _fills(result) == [("A", 1000.0, round(phantom_price, 9))]
    assert not result.phantom_won and result.num_participants == 2


def test_phantom_allocation_goes_to_the_cfmm() -> None:
    auction, _ = _one_phantom("discriminatory", "reserve")
    phantom = auction.phantom_bids[0]  # type: ignore[attr-defined]
    result = clear_bids(auction, [offer(auction, "A", 100.1, 1000.0)])  # type: ignore[arg-type]
    # The phantom ranks first and is allocated its volume; that volume is sold at baseline.
    assert result.phantom_won and result.outcome is Outcome.FILLED
    top = result.ranking[0]
    assert top.is_phantom and top.allocated == pytest.approx(phantom.volume) and top.filled == 0.0
    assert _fills(result) == [
        ("A", round(1000.0 - phantom.volume, 9), 100.1),
        (None, round(phantom.volume, 9), 100.0),
    ]


def test_phantom_sets_the_uniform_price() -> None:
    auction, phantom_price = _one_phantom("uniform")
    result = clear_bids(auction, [offer(auction, "A", 100.5, 1000.0)])  # type: ignore[arg-type]
    # A takes everything; the phantom is the best rejected bid and sets the price.
    assert _fills(result) == [("A", 1000.0, round(phantom_price, 9))]


# -- properties against a brute-force oracle --

offers = st.lists(
    st.tuples(
        st.integers(10, 50),  # improvement bps
        st.integers(1, 1000),  # volume
        st.integers(0, 10),  # fee, in 1/10 of the maximum
    ),
    min_size=1,
    max_size=8,
)


def _oracle_allocation(values: list[float], volumes: list[float], amount: float) -> list[float]:
    """Fill in score order (ties: earlier first) until the amount is sold."""
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    left, out = amount, [0.0] * len(values)
    for i in order:
        out[i] = min(volumes[i], left)
        left -= out[i]
    return out


@settings(max_examples=60)
@given(offers, st.sampled_from(MECHANISMS), st.sampled_from([0.0, 1.0]))
def test_clearing_invariants(
    bids: list[tuple[int, int, int]], mechanism: str, fee_weight: float
) -> None:
    cfg = no_phantoms(mechanism=mechanism, min_participants=1, fee_weight=fee_weight)
    auction = open_auction(cfg)
    full = [
        offer(auction, f"b{i}", 100.0 * (1 + bps / 10_000), float(vol), vol * 0.01 * tenth / 10)
        for i, (bps, vol, tenth) in enumerate(bids)
    ]
    result = clear_bids(auction, full)
    best = max(b.improved_price for b in full)
    assert 100.0 <= result.price <= best + 1e-9
    assert math.fsum(f.volume for f in result.fills) == pytest.approx(1000.0)
    by_id = {b.bidder_id: b for b in full}
    for fill in result.fills:
        if fill.bidder_id is None:
            assert fill.price == 100.0
        else:
            assert 100.0 <= fill.price <= by_id[fill.bidder_id].improved_price + 1e-9
    values = [
        r.improved_price + 100.0 * fee_weight / 1000.0 * r.priority_fee for r in result.ranking
    ]
    assert values == sorted(values, reverse=True)
    if mechanism != "vickrey":
        # Every multi-unit rule fills in score order.
        scores = [b.improved_price + 100.0 * fee_weight / 1000.0 * b.priority_fee for b in full]
        expected = _oracle_allocation(scores, [b.volume for b in full], 1000.0)
        got = {f.bidder_id: f.volume for f in result.fills}
        for bid, units in zip(full, expected, strict=True):
            assert got.get(bid.bidder_id, 0.0) == pytest.approx(units)
    else:
        real = [f for f in result.fills if f.bidder_id is not None]
        assert len(real) == 1 and real[0].bidder_id == result.ranking[0].bidder_id
    assert result.price == pytest.approx(
        math.fsum(f.volume * f.price for f in result.fills) / 1000.0
    )
    assert isinstance(result.fills[0], Fill)
    assert result.finalized_at == T0 + ms(100)


@settings(max_examples=150)
@given(
    st.sampled_from(MECHANISMS),
    st.sampled_from(["floor", "reserve"]),
    st.floats(1e-6, 1e9),
    st.floats(10.0, 50.0),
    st.lists(
        st.tuples(st.integers(0, 6), st.sampled_from([300.0, 500.0, 1000.0])),
        min_size=2,
        max_size=5,
    ),
    st.sampled_from([0, 15]),
)
@example("uniform", "floor", 25.0, 50.0, [(5, 1000.0), (5, 1000.0), (0, 500.0), (0, 300.0)], 0)
def test_no_winner_pays_above_its_own_price_to_the_last_bit(
    mechanism: str,
    policy: str,
    baseline: float,
    bps: float,
    bids: list[tuple[int, float]],
    phantoms: int,
) -> None:
    """The fuzzing audit: with prices a few ulps apart, a payment just under a winner's
    own improvement was turned back into a price one ulp above its own (uniform, VCG)."""
    cfg = config(
        mechanism=mechanism, phantom_policy=policy, min_participants=1,
        max_phantom_bidders=phantoms,
    )  # fmt: skip
    auction = open_auction(cfg, baseline=baseline)
    top = baseline * (1 + bps / 10_000)
    full = []
    for i, (ulps, volume) in enumerate(bids):
        price = top
        for _ in range(ulps):
            price = math.nextafter(price, 0.0)
        full.append(offer(auction, f"b{i}", price, volume))
    result = clear_bids(auction, full)
    by_id = {b.bidder_id: b for b in full}
    for fill in result.fills:
        if fill.bidder_id is not None:
            assert baseline <= fill.price <= by_id[fill.bidder_id].improved_price, fill


# -- phantom policy "floor": phantoms never take volume, the best one floors every fill --


def _floor_auction(mechanism: str, policy: str = "floor") -> tuple[object, float]:
    cfg = config(
        max_phantom_bidders=1, bid_probability=1.0, mechanism=mechanism, phantom_policy=policy
    )
    auction = open_auction(cfg)
    (phantom,) = auction.phantom_bids
    return auction, phantom.improved_price


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_floor_a_phantom_above_every_real_bid_fills_the_best_real_bid_at_its_own_price(
    mechanism: str,
) -> None:
    auction, phantom_price = _floor_auction(mechanism)
    assert phantom_price > 100.1
    result = clear_bids(auction, [offer(auction, "A", 100.1, 1000.0)])  # type: ignore[arg-type]
    # Under "reserve" the phantom would take its volume to the CFMM at 100.0; under
    # "floor" A fills everything, and max(rule's price, floor) capped at 100.1 is 100.1.
    assert _fills(result) == [("A", 1000.0, 100.1)]
    assert result.outcome is Outcome.FILLED and result.phantom_policy == "floor"
    top = result.ranking[0]
    assert top.is_phantom and top.allocated == 0.0
    reserve, _ = _floor_auction(mechanism, "reserve")
    before = clear_bids(reserve, [offer(reserve, "A", 100.1, 1000.0)])  # type: ignore[arg-type]
    assert before.phantom_policy == "reserve" and before.price < result.price


@pytest.mark.parametrize("mechanism", ["vickrey", "uniform", "vcg"])
def test_floor_raises_the_rules_price_to_the_best_phantom(mechanism: str) -> None:
    # A alone (nothing to set a second price): the rule prices at the baseline, the
    # floor lifts it to the phantom's price.
    auction, phantom_price = _floor_auction(mechanism)
    result = clear_bids(auction, [offer(auction, "A", 100.5, 1000.0)])  # type: ignore[arg-type]
    assert _fills(result) == [("A", 1000.0, round(phantom_price, 9))]


def test_floor_never_lowers_a_rule_price_above_it() -> None:
    # A 100.5 x 1000 and B 100.48 x 1000, vickrey: A pays B's 100.48 (above the phantom).
    auction, phantom_price = _floor_auction("vickrey")
    assert phantom_price < 100.48
    result = clear_bids(
        auction,
        [offer(auction, "A", 100.5, 1000.0), offer(auction, "B", 100.48, 1000.0)],  # type: ignore[arg-type]
    )
    assert _fills(result) == [("A", 1000.0, 100.48)]


def test_floor_pay_as_bid_pays_own_price() -> None:
    auction, _ = _floor_auction("discriminatory")
    result = clear_bids(
        auction,
        [offer(auction, "A", 100.12, 600.0), offer(auction, "B", 100.11, 600.0)],  # type: ignore[arg-type]
    )
    assert _fills(result) == [("A", 600.0, 100.12), ("B", 400.0, 100.11)]


def test_floor_without_a_real_bid_is_no_bids_not_a_phantom_win() -> None:
    # Under "floor" phantoms take no volume, so they cannot win: with no real bid the
    # outcome is no_bids (the user gets the baseline); under "reserve" it is phantom_won.
    def lone_phantom(policy: str) -> AuctionResult:
        cfg = config(
            max_phantom_bidders=1, bid_probability=1.0, min_participants=1, phantom_policy=policy
        )
        return clear_bids(open_auction(cfg), [])

    result = lone_phantom("floor")
    assert result.outcome is Outcome.NO_BIDS and not result.phantom_won
    assert result.price == 100.0 and [f.bidder_id for f in result.fills] == [None]  # CFMM
    before = lone_phantom("reserve")
    assert before.outcome is Outcome.PHANTOM_WON and before.phantom_won


# -- the ranking's columns, some read only when asked for (engine/settlement.py) --


@pytest.mark.parametrize("weights", [{}, {"price_weight": 2.0, "fee_weight": 0.5}])
def test_ranking_entries_are_the_rule_books_numbers_bit_for_bit(weights: dict[str, float]) -> None:
    from phantom_auction.mechanisms.rules import AuctionRules, fee_bps, improvement_bps, score

    cfg = config(max_phantom_bidders=20, bid_probability=0.5, **weights)
    rules = AuctionRules.from_config(cfg)
    auction = open_auction(cfg)
    bids = [
        offer(auction, f"b{i}", 100.1 + 0.05 * i + 0.0013 * i, 100.0 + 37.0 * i, fee=0.07 * i)
        for i in range(6)
    ]
    result = clear_bids(auction, bids)
    assert any(entry.is_phantom for entry in result.ranking)
    for entry in result.ranking:
        improvement = improvement_bps(entry.improved_price, 100.0)
        fee = fee_bps(entry.priority_fee, 1000.0)
        assert math.copysign(1.0, entry.improvement_bps) == math.copysign(1.0, improvement)
        assert entry.improvement_bps == improvement
        assert entry.fee_bps == fee
        assert entry.score == score(rules, improvement, fee)
    columns = result.ranking.columns  # type: ignore[attr-defined]
    ids = [b.bidder_id for b in bids] + [f"phantom-{s}" for s in result.phantom_bids.columns[0]]  # type: ignore[attr-defined]
    assert list(columns.bidder_ids) == ids
    assert columns.bidder_ids == ids and len(columns.bidder_ids) == len(ids)
    assert columns.bidder_ids[-1] == ids[-1] and columns.bidder_ids[2:5] == ids[2:5]
    with pytest.raises(IndexError):
        columns.bidder_ids[len(ids)]
    fees = [b.priority_fee for b in bids] + list(result.phantom_bids.columns[3])  # type: ignore[attr-defined]
    assert list(columns.fees_bps) == [fee_bps(f, 1000.0) for f in fees]
    assert columns.fees_bps[1:3] == [fee_bps(f, 1000.0) for f in fees[1:3]]
