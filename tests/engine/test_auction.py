"""Scenario tests of the Auction state machine: every reason code, every outcome, the
transition table, idempotence, nonces across auctions, windows and timeouts."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import (
    AuctionTimeout,
    InsufficientParticipants,
    InvalidBidParameters,
    NonceRegistry,
    Outcome,
    Phase,
    RejectReason,
    SettlementRequest,
    finalize_auction,
    make_bid,
    reveal_bid,
    submit_bid,
)
from phantom_auction.engine import (
    TRANSITIONS,
    Auction,
    AuctionOpened,
    AuctionPhaseError,
    Command,
    CommitAccepted,
    CommitRejected,
    PhaseChanged,
    RevealAccepted,
    RevealRejected,
    abort_auction,
    close_collection,
)

from .engine_support import (
    PAIR,
    SEED,
    T0,
    clear_bids,
    config,
    ms,
    no_phantoms,
    offer,
    open_auction,
)

CFG = no_phantoms(min_participants=1)


def _rejected(auction: Auction, reason: RejectReason, *values: object) -> None:
    event = auction.last_event
    assert isinstance(event, CommitRejected | RevealRejected)
    assert event.reason is reason
    for value in values:
        assert str(value) in event.detail, (value, event.detail)


# -- windows --


def test_default_windows_follow_config() -> None:
    auction = open_auction(CFG)
    assert auction.phase is Phase.COLLECTING
    assert auction.commit_deadline == T0 + ms(80)
    assert auction.reveal_deadline == T0 + ms(100)
    opened = auction.audit[0]
    assert isinstance(opened, AuctionOpened)
    assert opened.phantom_commitment == auction.phantom_commitment


def test_close_deadline_shrinks_windows_in_proportion() -> None:
    auction = open_auction(CFG, deadline_ms=50)
    assert auction.commit_deadline == T0 + ms(40)
    assert auction.reveal_deadline == T0 + ms(50)


def test_reserve_is_kept_before_the_deadline() -> None:
    request = SettlementRequest(*PAIR, 1000.0)
    auction = Auction(request, 100.0, 1000.0, T0 + ms(100), config=CFG, now=T0, reserve_ms=10.0)
    assert auction.reveal_deadline == T0 + ms(90)
    assert auction.commit_deadline == T0 + ms(72)
    # The reserve never takes more than a quarter of what is left.
    short = Auction(request, 100.0, 1000.0, T0 + ms(8), config=CFG, now=T0, reserve_ms=10.0)
    assert short.reveal_deadline == T0 + ms(6)


def test_far_deadline_keeps_configured_windows() -> None:
    auction = open_auction(CFG, deadline_ms=10_000)
    assert auction.reveal_deadline == T0 + ms(100)


@pytest.mark.parametrize("available", [0.0, 4.999, -10.0])
def test_deadline_too_close_raises_auction_timeout(available: float) -> None:
    with pytest.raises(AuctionTimeout, match="min_window_ms") as info:
        open_auction(CFG, deadline_ms=available)
    assert info.value.available_ms == pytest.approx(available)
    assert info.value.required_ms == 5.0


def test_min_window_is_configurable() -> None:
    open_auction(config(max_phantom_bidders=0, min_window_ms=1.0), deadline_ms=2)
    with pytest.raises(AuctionTimeout):
        open_auction(config(min_window_ms=20.0), deadline_ms=19)


# -- commit rejections --


def test_commit_accepted_keeps_only_the_commitment() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0)
    assert submit_bid(auction, bid, now=T0 + ms(5))  # a full bid is accepted too
    stored = auction.commitments["alice"]
    assert stored == bid.sealed()
    assert not hasattr(stored, "improved_price")
    assert isinstance(auction.last_event, CommitAccepted)
    assert auction.nonces.last("alice") == 1


def test_late_commit() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0)
    assert not submit_bid(auction, bid.sealed(), now=T0 + ms(80))
    _rejected(auction, RejectReason.LATE, auction.commit_deadline.isoformat())
    assert auction.phase is Phase.REVEALING
    assert "alice" not in auction.commitments
    assert auction.nonces.last("alice") is None  # a refused commit uses no nonce


def test_commit_after_finalize_is_late() -> None:
    auction = open_auction(CFG)
    finalize_auction(auction, now=T0 + ms(100))
    assert not submit_bid(auction, offer(auction, "bob", 100.2, 1.0).sealed(), now=T0 + ms(200))
    _rejected(auction, RejectReason.LATE, "FINALIZED")


def test_token_pair_mismatch_at_commit() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0, pair=(2, 1))
    assert not submit_bid(auction, bid.sealed(), now=T0)
    _rejected(auction, RejectReason.TOKEN_PAIR_MISMATCH, "(2, 1)", "(1, 2)")


def test_replayed_nonce_in_same_auction() -> None:
    auction = open_auction(CFG)
    sealed = offer(auction, "alice", 100.2, 500.0, nonce=7).sealed()
    assert submit_bid(auction, sealed, now=T0)
    assert not submit_bid(auction, sealed, now=T0 + ms(1))
    _rejected(auction, RejectReason.REPLAYED_NONCE, "nonce=7", "7")


def test_replayed_nonce_in_a_later_auction() -> None:
    registry = NonceRegistry()
    first = open_auction(CFG, nonces=registry)
    sealed = offer(first, "alice", 100.2, 500.0, nonce=5).sealed()
    assert submit_bid(first, sealed, now=T0)
    second = open_auction(CFG, auction_id="auction-2", nonces=registry)
    assert not submit_bid(second, sealed, now=T0)
    _rejected(second, RejectReason.REPLAYED_NONCE, "nonce=5")
    lower = offer(second, "alice", 100.2, 500.0, nonce=4).sealed()
    assert not submit_bid(second, lower, now=T0)
    _rejected(second, RejectReason.REPLAYED_NONCE, "nonce=4")
    higher = offer(second, "alice", 100.2, 500.0, nonce=6).sealed()
    assert submit_bid(second, higher, now=T0)
    # Another bidder's nonces are its own.
    assert submit_bid(second, offer(second, "bob", 100.2, 500.0, nonce=1).sealed(), now=T0)


def test_each_auction_has_its_own_registry_by_default() -> None:
    first, second = open_auction(CFG), open_auction(CFG, auction_id="auction-2")
    assert first.nonces is not second.nonces


def test_duplicate_commit() -> None:
    auction = open_auction(CFG)
    assert submit_bid(auction, offer(auction, "alice", 100.2, 500.0, nonce=1).sealed(), now=T0)
    second = offer(auction, "alice", 100.3, 500.0, nonce=2)
    assert not submit_bid(auction, second.sealed(), now=T0 + ms(1))
    _rejected(auction, RejectReason.DUPLICATE_COMMIT, "'alice'")
    assert auction.nonces.last("alice") == 1


# -- reveal rejections --


def _committed(cfg: object = CFG, **bid: object) -> tuple[Auction, object]:
    auction = open_auction(CFG)
    fields = {"bidder": "alice", "price": 100.2, "volume": 500.0} | bid
    full = offer(auction, **fields)  # type: ignore[arg-type]
    assert submit_bid(auction, full.sealed(), now=T0)
    return auction, full


def test_reveal_during_collection_is_outside_window() -> None:
    auction, bid = _committed()
    assert not reveal_bid(auction, bid, now=T0 + ms(79))  # type: ignore[arg-type]
    _rejected(auction, RejectReason.OUTSIDE_REVEAL_WINDOW, "COLLECTING")
    assert reveal_bid(auction, bid, now=T0 + ms(80))  # type: ignore[arg-type]


def test_reveal_after_reveal_window_is_outside_window() -> None:
    auction, bid = _committed()
    assert not reveal_bid(auction, bid, now=T0 + ms(100))  # type: ignore[arg-type]
    _rejected(auction, RejectReason.OUTSIDE_REVEAL_WINDOW, auction.reveal_deadline.isoformat())


def test_reveal_after_finalize_is_outside_window() -> None:
    auction, bid = _committed()
    finalize_auction(auction, now=T0 + ms(100))
    assert not reveal_bid(auction, bid, now=T0 + ms(100))  # type: ignore[arg-type]
    _rejected(auction, RejectReason.OUTSIDE_REVEAL_WINDOW, "FINALIZED")


def test_not_committed() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "mallory", 100.2, 500.0)
    assert not reveal_bid(auction, bid, now=T0 + ms(85))
    _rejected(auction, RejectReason.NOT_COMMITTED, "'mallory'")


def test_duplicate_reveal() -> None:
    auction, bid = _committed()
    assert reveal_bid(auction, bid, now=T0 + ms(85))  # type: ignore[arg-type]
    assert not reveal_bid(auction, bid, now=T0 + ms(86))  # type: ignore[arg-type]
    _rejected(auction, RejectReason.DUPLICATE_REVEAL, "'alice'")


@pytest.mark.parametrize(
    "change",
    [
        {"improved_price": 100.3},
        {"volume": 400.0},
        {"priority_fee": 0.1},
        {"salt": bytes(32)},
        {"token_pair": (1, 3)},
    ],
)
def test_tampered_reveal_is_commitment_mismatch(change: dict[str, object]) -> None:
    auction, bid = _committed()
    tampered = replace(bid, **change)  # type: ignore[type-var]
    assert not reveal_bid(auction, tampered, now=T0 + ms(85))
    _rejected(auction, RejectReason.COMMITMENT_MISMATCH, bid.commitment_hash.hex())  # type: ignore[attr-defined]
    assert "alice" not in auction.reveals
    assert reveal_bid(auction, bid, now=T0 + ms(86))  # type: ignore[arg-type]  # the true bid still can


@pytest.mark.parametrize("tamper", ["improved_price", "volume", "priority_fee", None])
def test_v1_and_v2_commitments_open_in_one_auction(tamper: str | None) -> None:
    # docs/commitment.md: the engine checks both versions, whatever a bidder used before.
    auction = open_auction(CFG)
    bids = [
        make_bid(auction.auction_id, name, PAIR, price, 500.0, 0.5, 7, version=version)
        for name, price, version in (("v1", 100.2, 1), ("v2", 100.3, 2), ("v2b", 100.1, 2))
    ]
    for bid in bids:
        assert submit_bid(auction, bid.sealed(), now=T0)
    for bid in bids:
        if tamper is not None:
            value = getattr(bid, tamper)
            tampered = replace(bid, **{tamper: math.nextafter(value, math.inf)})
            assert not reveal_bid(auction, tampered, now=T0 + ms(85))
            _rejected(auction, RejectReason.COMMITMENT_MISMATCH, "(v1)", "(v2)")
        assert reveal_bid(auction, bid, now=T0 + ms(85)), auction.last_event
    assert list(auction.reveals) == ["v1", "v2", "v2b"]
    # A bidder switching version between auctions is still checked in the new one.
    later = open_auction(CFG, auction_id="auction-2")
    switched = [
        make_bid("auction-2", "v1", PAIR, 100.2, 500.0, 0.5, 8, version=2),
        make_bid("auction-2", "v2", PAIR, 100.3, 500.0, 0.5, 8, version=1),
    ]
    for bid in switched:
        assert submit_bid(later, bid.sealed(), now=T0)
    for bid in switched:
        assert reveal_bid(later, bid, now=T0 + ms(85)), later.last_event


def test_negative_zero_fee_matches_its_v2_commitment() -> None:
    # v2 writes -0.0 as +0.0; the reveal's inlined v2 check hashes the field as it is,
    # misses, and must still accept the bid through commitment_version(), in a first
    # auction (bidder id not yet cached) and in a later one (cached).
    for k, auction_id in enumerate(("auction-z1", "auction-z2")):
        auction = open_auction(CFG, auction_id=auction_id)
        salt = bytes(32)
        bid = make_bid(auction_id, "zero-fee", PAIR, 100.2, 500.0, -0.0, k + 1, salt=salt)
        plus = make_bid(auction_id, "zero-fee", PAIR, 100.2, 500.0, 0.0, k + 1, salt=salt)
        assert math.copysign(1.0, bid.priority_fee) == -1.0
        assert bid.commitment_hash == plus.commitment_hash
        assert submit_bid(auction, bid.sealed(), now=T0)
        assert reveal_bid(auction, bid, now=T0 + ms(85)), auction.last_event
        assert list(auction.reveals) == ["zero-fee"]


def test_cached_bidder_with_tampered_reveal_is_mismatch_in_a_later_auction() -> None:
    # The second auction takes the inlined v2 path (bidder id cached): a tampered
    # field must still be refused there, with both versions' digests in the detail.
    nonces = NonceRegistry()
    for k, auction_id in enumerate(("auction-t1", "auction-t2")):
        auction = open_auction(CFG, auction_id=auction_id, nonces=nonces)
        bid = offer(auction, "tamper", 100.2, 500.0, fee=0.5, nonce=k + 1)
        assert submit_bid(auction, bid.sealed(), now=T0)
        tampered = replace(bid, volume=math.nextafter(bid.volume, 0.0))
        assert not reveal_bid(auction, tampered, now=T0 + ms(85))
        _rejected(auction, RejectReason.COMMITMENT_MISMATCH, "(v1)", "(v2)")
        assert reveal_bid(auction, bid, now=T0 + ms(85)), auction.last_event


def test_reveal_with_another_nonce_is_commitment_mismatch() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0, nonce=3)
    # Commit under nonce 4 while the hash covers nonce 3.
    assert submit_bid(auction, replace(bid.sealed(), nonce=4), now=T0)
    assert not reveal_bid(auction, bid, now=T0 + ms(85))
    _rejected(auction, RejectReason.COMMITMENT_MISMATCH, "nonce=3", "nonce=4")


def test_token_pair_mismatch_at_reveal() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0, pair=(1, 3))  # hash covers the wrong pair
    assert submit_bid(auction, replace(bid.sealed(), token_pair=PAIR), now=T0)
    assert not reveal_bid(auction, bid, now=T0 + ms(85))
    _rejected(auction, RejectReason.TOKEN_PAIR_MISMATCH, "(1, 3)")


@pytest.mark.parametrize(
    ("price", "accepted"),
    [
        (100.0 * (1 + 10 / 10_000), True),  # min, with the rounding of this formula
        (100.0 * (1 + 50 / 10_000), True),  # max
        (100.09, False),  # 9 bps
        (100.51, False),  # 51 bps
        (100.0, False),  # 0 bps
        (99.0, False),  # below baseline
    ],
)
def test_improvement_bounds(price: float, accepted: bool) -> None:
    auction, bid = _committed(price=price)
    assert reveal_bid(auction, bid, now=T0 + ms(85)) is accepted  # type: ignore[arg-type]
    if not accepted:
        _rejected(auction, RejectReason.IMPROVEMENT_OUT_OF_BOUNDS, f"improved_price={price}")


@pytest.mark.parametrize(
    ("volume", "accepted"),
    [(1000.0, True), (0.001, True), (0.0, False), (1000.5, False), (-1.0, False)],
)
def test_volume_bounds(volume: float, accepted: bool) -> None:
    auction, bid = _committed(volume=volume)
    assert reveal_bid(auction, bid, now=T0 + ms(85)) is accepted  # type: ignore[arg-type]
    if not accepted:
        _rejected(auction, RejectReason.VOLUME_OUT_OF_BOUNDS, f"volume={volume}", "1000.0")


@pytest.mark.parametrize(
    ("fee", "accepted"), [(5.0, True), (0.0, True), (5.01, False), (-0.1, False)]
)
def test_fee_bounds(fee: float, accepted: bool) -> None:
    # volume 500 x priority_fee_max_ratio 0.01 = 5 token units at most
    auction, bid = _committed(fee=fee)
    assert reveal_bid(auction, bid, now=T0 + ms(85)) is accepted  # type: ignore[arg-type]
    if not accepted:
        _rejected(auction, RejectReason.FEE_OUT_OF_BOUNDS, f"priority_fee={fee}", "5.0")


def test_every_reason_code_is_exercised() -> None:
    # The tests above cover each code; this pins the list so a new code needs a test.
    assert {r.value for r in RejectReason} == {
        "late",
        "replayed_nonce",
        "duplicate_commit",
        "token_pair_mismatch",
        "outside_reveal_window",
        "not_committed",
        "duplicate_reveal",
        "commitment_mismatch",
        "improvement_out_of_bounds",
        "volume_out_of_bounds",
        "fee_out_of_bounds",
        "withdrawn",  # test_withdraw.py
    }


# -- outcomes --


def test_outcome_filled() -> None:
    auction = open_auction(no_phantoms())
    a, b = offer(auction, "alice", 100.3, 1000.0), offer(auction, "bob", 100.2, 1000.0)
    result = clear_bids(auction, [a, b])
    assert result.outcome is Outcome.FILLED
    assert result.winning_bid == a
    assert result.price == pytest.approx(100.2)
    assert result.num_participants == 2
    assert not result.phantom_won
    assert auction.phase is Phase.FINALIZED


def test_outcome_no_bids() -> None:
    auction = open_auction(no_phantoms())
    result = finalize_auction(auction, now=T0 + ms(100))
    assert result.outcome is Outcome.NO_BIDS
    assert (result.price, result.improvement_bps, result.num_participants) == (100.0, 0.0, 0)
    assert [(f.bidder_id, f.volume, f.price) for f in result.fills] == [(None, 1000.0, 100.0)]
    assert result.winning_bid is None and result.ranking == ()


def test_outcome_insufficient_participants_gives_baseline() -> None:
    auction = open_auction(no_phantoms(min_participants=3))
    a, b = offer(auction, "alice", 100.3, 1000.0), offer(auction, "bob", 100.2, 1000.0)
    result = clear_bids(auction, [a, b])
    assert result.outcome is Outcome.INSUFFICIENT_PARTICIPANTS
    assert result.price == 100.0 and result.winning_bid is None
    assert [r.bidder_id for r in result.ranking] == ["alice", "bob"]
    assert all(r.allocated == 0.0 for r in result.ranking)
    with pytest.raises(InsufficientParticipants, match="num_participants=2"):
        finalize_auction(auction, strict=True)


def test_strict_raises_on_first_finalize_too() -> None:
    auction = open_auction(no_phantoms(min_participants=3))
    with pytest.raises(InsufficientParticipants) as info:
        finalize_auction(auction, now=T0 + ms(100), strict=True)
    assert (info.value.participants, info.value.required) == (0, 3)
    # The auction is finalized all the same: later calls see the same result.
    assert finalize_auction(auction).outcome is Outcome.NO_BIDS


def test_strict_passes_with_enough_participants() -> None:
    auction = open_auction(no_phantoms())
    result = clear_bids(
        auction, [offer(auction, "a", 100.3, 10.0), offer(auction, "b", 100.2, 10.0)]
    )
    assert finalize_auction(auction, strict=True) is result


def test_outcome_phantom_won() -> None:
    # One phantom, always present; a real bid at the minimum improvement below it. Under
    # the `reserve` policy (the default `floor` never lets a phantom take volume).
    cfg = config(
        max_phantom_bidders=1, bid_probability=1.0, min_participants=2, phantom_policy="reserve"
    )
    auction = open_auction(cfg)
    (phantom,) = auction.phantom_bids
    assert phantom.improved_price > 100.1
    result = clear_bids(auction, [offer(auction, "alice", 100.1, 1000.0)])
    assert result.outcome is Outcome.PHANTOM_WON and result.phantom_won
    assert result.winning_bid is None
    assert result.price == 100.0
    assert result.ranking[0].is_phantom and result.ranking[0].filled == 0.0
    assert result.ranking[0].allocated > 0.0


def test_outcome_aborted() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.3, 1000.0)
    assert submit_bid(auction, bid.sealed(), now=T0)
    result = abort_auction(auction, "server restarted", now=T0 + ms(50))
    assert result.outcome is Outcome.ABORTED
    assert auction.phase is Phase.ABORTED
    assert result.price == 100.0 and result.unrevealed == ("alice",)
    assert auction.audit[-1].reason == "server restarted"  # type: ignore[union-attr]
    assert abort_auction(auction, "again") is result
    assert finalize_auction(auction, strict=True) is result
    assert not reveal_bid(auction, bid, now=T0 + ms(85))
    _rejected(auction, RejectReason.OUTSIDE_REVEAL_WINDOW, "ABORTED")


def test_an_abort_ends_the_auction_when_its_bids_cannot_be_ranked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What makes clearing raise may be in the bid table, which the abort ranked too: the
    abort raised in turn and the auction stayed open (the final review). It now ends
    with no ranking: the user gets the baseline from the CFMM."""
    from phantom_auction.engine import auction as engine_auction

    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.3, 1000.0)
    assert submit_bid(auction, bid.sealed(), now=T0)
    assert reveal_bid(auction, bid, now=T0 + ms(85))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("valuation[0]=-1e-12: must be finite and >= 0")

    monkeypatch.setattr(engine_auction, "bid_table", broken)
    result = abort_auction(auction, "the auction could not be cleared", now=T0 + ms(99))
    assert (result.outcome, auction.phase) == (Outcome.ABORTED, Phase.ABORTED)
    assert result.ranking == () and result.price == 100.0
    assert [(f.bidder_id, f.volume) for f in result.fills] == [(None, 1000.0)]


def test_outcomes_are_all_covered() -> None:
    assert {o.value for o in Outcome} == {
        "filled",
        "phantom_won",
        "no_bids",
        "insufficient_participants",
        "aborted",
    }


def test_unrevealed_bidders_are_listed() -> None:
    auction = open_auction(CFG)
    bids = [offer(auction, name, 100.2, 100.0) for name in ("a", "b", "c")]
    for bid in bids:
        assert submit_bid(auction, bid.sealed(), now=T0)
    assert reveal_bid(auction, bids[1], now=T0 + ms(85))
    result = finalize_auction(auction, now=T0 + ms(100))
    assert result.unrevealed == ("a", "c")
    assert result.num_participants == 1


# -- phases and the transition table --


def test_finalize_during_collection_raises_naming_phase_and_call() -> None:
    auction = open_auction(CFG)
    with pytest.raises(AuctionPhaseError, match=r"finalize_auction\(\).*COLLECTING") as info:
        finalize_auction(auction, now=T0 + ms(79))
    assert info.value.phase is Phase.COLLECTING and info.value.command is Command.FINALIZE


def test_finalize_early_with_unrevealed_commitment_raises() -> None:
    auction, _ = _committed()
    with pytest.raises(AuctionPhaseError, match=r"REVEALING.*1 commitment"):
        finalize_auction(auction, now=T0 + ms(90))


def test_finalize_early_once_everything_is_revealed() -> None:
    auction, bid = _committed()
    close_collection(auction, now=T0 + ms(3))
    assert reveal_bid(auction, bid, now=T0 + ms(4))  # type: ignore[arg-type]
    result = finalize_auction(auction, now=T0 + ms(5))
    assert result.auction_duration_ms == pytest.approx(5.0)
    changes = [e for e in auction.audit if isinstance(e, PhaseChanged)]
    assert [(c.previous, c.phase, c.at) for c in changes] == [
        (Phase.COLLECTING, Phase.REVEALING, T0 + ms(3)),
        (Phase.REVEALING, Phase.FINALIZED, T0 + ms(5)),
    ]


def test_close_collection_is_only_legal_while_collecting() -> None:
    auction = open_auction(CFG)
    close_collection(auction, now=T0)
    assert auction.phase is Phase.REVEALING
    with pytest.raises(AuctionPhaseError, match=r"close_collection\(\).*REVEALING"):
        close_collection(auction, now=T0)
    late = open_auction(CFG)
    with pytest.raises(AuctionPhaseError, match="REVEALING"):
        close_collection(late, now=T0 + ms(80))  # the clock already closed it


def test_abort_after_finalize_raises() -> None:
    auction = open_auction(CFG)
    finalize_auction(auction, now=T0 + ms(100))
    with pytest.raises(AuctionPhaseError, match=r"abort_auction\(\).*FINALIZED"):
        abort_auction(auction, "too late", now=T0 + ms(101))


def test_transition_table_shape() -> None:
    # Commits and reveals are legal everywhere (refused by window, never raised).
    for phase in Phase:
        assert TRANSITIONS[(phase, Command.COMMIT)] is phase
        assert TRANSITIONS[(phase, Command.REVEAL)] is phase
    assert TRANSITIONS[(Phase.COLLECTING, Command.CLOCK)] is Phase.REVEALING
    assert TRANSITIONS[(Phase.REVEALING, Command.FINALIZE)] is Phase.FINALIZED
    assert (Phase.COLLECTING, Command.FINALIZE) not in TRANSITIONS
    assert (Phase.FINALIZED, Command.ABORT) not in TRANSITIONS
    assert {nxt for nxt in TRANSITIONS.values()} == set(Phase)


def test_finalize_is_idempotent() -> None:
    auction = open_auction(config())  # with phantoms
    result = clear_bids(auction, [offer(auction, "a", 100.45, 700.0)])
    events = len(auction.audit)
    assert finalize_auction(auction, now=T0 + ms(500)) is result
    assert finalize_auction(auction) is result
    assert len(auction.audit) == events


def test_clock_never_runs_backwards() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0)
    assert not reveal_bid(auction, bid, now=T0 + ms(90))  # moves the clock into REVEALING
    # A commit stamped earlier is judged at the auction's latest time: late.
    assert not submit_bid(auction, bid.sealed(), now=T0 + ms(10))
    _rejected(auction, RejectReason.LATE)
    assert auction.clock == T0 + ms(90)
    times = [e.at for e in auction.audit]
    assert times == sorted(times)


# -- programmer errors --


def test_wrong_types_raise() -> None:
    auction = open_auction(CFG)
    with pytest.raises(InvalidBidParameters, match="submit_bid"):
        submit_bid(auction, "bid", now=T0)  # type: ignore[arg-type]
    bid = offer(auction, "alice", 100.2, 500.0)
    with pytest.raises(InvalidBidParameters, match="reveal_bid"):
        reveal_bid(auction, bid.sealed(), now=T0 + ms(85))  # type: ignore[arg-type]
    with pytest.raises(InvalidBidParameters, match="timezone-aware"):
        submit_bid(auction, bid, now=datetime(2025, 1, 1))
    assert len(auction.audit) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline_price": 0.0}, "baseline_price"),
        ({"baseline_price": float("nan")}, "baseline_price"),
        ({"baseline_amount": 999.0}, "baseline_amount"),
        ({"deadline": datetime(2025, 1, 1)}, "deadline"),
        ({"auction_id": ""}, "auction_id"),
        ({"phantom_seed": b"short"}, "phantom_seed"),
        ({"nonces": {}}, "nonces"),
        ({"reserve_ms": -1.0}, "reserve_ms"),
        ({"request": (1, 2, 1000.0)}, "request"),
    ],
)
def test_bad_auction_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {
        "request": SettlementRequest(*PAIR, 1000.0),
        "baseline_price": 100.0,
        "baseline_amount": 1000.0,
        "deadline": T0 + ms(100),
        "config": CFG,
        "now": T0,
        "phantom_seed": SEED,
    } | kwargs
    with pytest.raises(InvalidBidParameters) as info:
        Auction(**args)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": 0.0}, "amount"),
        ({"amount": float("inf")}, "amount"),
        ({"token_in": 1.5}, "token_pair"),
    ],
)
def test_bad_request_names_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"token_in": 1, "token_out": 2, "amount": 10.0} | kwargs
    with pytest.raises(InvalidBidParameters) as info:
        SettlementRequest(**args)  # type: ignore[arg-type]
    assert info.value.field == field


def test_bad_bids_name_the_field() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0)
    for change, field in [
        ({"improved_price": float("nan")}, "improved_price"),
        ({"volume": "1"}, "volume"),
        ({"commitment_hash": b"x"}, "commitment_hash"),
        ({"timestamp": datetime(2025, 1, 1)}, "timestamp"),
        ({"salt": b""}, "salt"),
        ({"bidder_id": ""}, "bidder_id"),
    ]:
        with pytest.raises(InvalidBidParameters) as info:
            replace(bid, **change)  # type: ignore[arg-type]
        assert info.value.field == field


# -- nonce registry --


def test_nonce_registry() -> None:
    registry = NonceRegistry({"alice": 3})
    assert registry.last("alice") == 3 and registry.last("bob") is None
    assert not registry.is_fresh("alice", 3) and registry.is_fresh("alice", 4)
    registry.record("alice", 10)
    with pytest.raises(InvalidBidParameters, match="nonce=10"):
        registry.record("alice", 10)
    registry.restore("alice", 2)  # restoring never lowers
    assert registry.last("alice") == 10
    assert dict(registry.items()) == {"alice": 10}
    assert "alice" in registry and len(registry) == 1
    assert NonceRegistry(dict(registry.items())).last("alice") == 10


def test_audit_event_times_and_order() -> None:
    auction = open_auction(CFG)
    bid = offer(auction, "alice", 100.2, 500.0)
    submit_bid(auction, bid.sealed(), now=T0 + ms(1))
    reveal_bid(auction, bid, now=T0 + ms(81))
    finalize_auction(auction, now=T0 + ms(100))
    kinds = [type(e).__name__ for e in auction.audit]
    assert kinds == [
        "AuctionOpened",
        "CommitAccepted",
        "PhaseChanged",
        "RevealAccepted",
        "PhaseChanged",
        "AuctionFinalized",
    ]
    assert isinstance(auction.audit[3], RevealAccepted) and auction.audit[3].bid == bid
    assert auction.events_since(4) == auction.audit[4:]
    assert auction.audit[2].at == auction.commit_deadline


def test_time_in_other_timezones_compares_correctly() -> None:
    from datetime import timezone

    auction = open_auction(CFG)
    plus_two = timezone(timedelta(hours=2))
    bid = offer(auction, "alice", 100.2, 500.0)
    assert submit_bid(auction, bid.sealed(), now=(T0 + ms(10)).astimezone(plus_two))
    assert not submit_bid(
        auction, offer(auction, "bob", 100.2, 1.0).sealed(), now=(T0 + ms(80)).astimezone(plus_two)
    )


@settings(max_examples=200, deadline=None)
@given(
    available_us=st.integers(5_000, 300_000),
    reserve_ms=st.sampled_from([0.0, 2.5, 10.0, 40.0]),
    amount=st.sampled_from([1000.0, 7.25, 1e6]),
)
def test_windows_and_limits_are_the_rule_books_in_any_order_of_openings(
    available_us: int, reserve_ms: float, amount: float
) -> None:
    # Openings work their windows and limits out once per (time left, reserve, amount)
    # and keep them: every auction still gets the rule book's own, whichever came first.
    from phantom_auction.mechanisms.rules import AuctionRules, to_us

    book = AuctionRules.from_config(CFG)
    request = SettlementRequest(*PAIR, amount)
    deadline = T0 + timedelta(microseconds=available_us)
    for _ in range(2):  # the second opening reads what the first worked out
        auction = Auction(
            request, 100.0, amount, deadline, config=CFG, now=T0, reserve_ms=reserve_ms
        )
        commit_ms, run_ms = book.windows_ms(available_us / 1000, reserve_ms)
        assert auction.commit_deadline == T0 + timedelta(microseconds=to_us(commit_ms))
        assert auction.reveal_deadline == T0 + timedelta(microseconds=to_us(run_ms))
        limits = book.limits(amount)
        assert auction.announcement.max_volume == amount * book.volume_multiplier
        assert auction._limits == limits


def test_an_order_whose_fills_would_overflow_is_refused_at_open() -> None:
    """The fuzzing audit: amount 1.797e308 at baseline 1 opened, then finalize raised
    OverflowError summing the fills, and the auction stayed in REVEALING for good."""
    from datetime import UTC, datetime, timedelta

    from phantom_auction import InvalidBidParameters
    from phantom_auction.engine import Auction, SettlementRequest

    now = datetime.now(UTC)
    with pytest.raises(InvalidBidParameters, match="amount") as info:
        Auction(
            SettlementRequest(0, 1, 1.797e308), 1.0, 1.797e308, now + timedelta(seconds=1), now=now
        )
    assert "overflow" in str(info.value)
    assert Auction(SettlementRequest(0, 1, 1e18), 1e15, 1e18, now + timedelta(seconds=1), now=now)
