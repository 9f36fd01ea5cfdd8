"""A hypothesis RuleBasedStateMachine over the auction: commit, tampered reveal, replay,
reveal, advance the clock, close early, finalize. A model predicts every acceptance, and
the invariants are checked after every step."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from phantom_auction import (
    AuctionResult,
    ImprovementBid,
    NonceRegistry,
    Phase,
    RejectReason,
    SealedBid,
    finalize_auction,
    make_bid,
    make_commitment,
    reveal_bid,
    submit_bid,
)
from phantom_auction.engine import (
    Auction,
    AuctionPhaseError,
    CommitAccepted,
    PhaseChanged,
    RevealAccepted,
    close_collection,
)

from .engine_support import T0, config, ms, open_auction

BIDDERS = ("alice", "bob", "carol", "dave")
BASELINE, AMOUNT = 100.0, 1000.0
MIN_BPS, MAX_BPS, FEE_RATIO = 10.0, 50.0, 0.01


class AuctionMachine(RuleBasedStateMachine):
    auction: Auction
    now: datetime

    @initialize(
        mechanism=st.sampled_from(["vickrey", "uniform", "discriminatory", "vcg"]),
        phantoms=st.sampled_from([0, 3, 20]),
        fee_weight=st.sampled_from([0.0, 0.5]),
        seed=st.binary(min_size=32, max_size=32),
    )
    def open(self, mechanism: str, phantoms: int, fee_weight: float, seed: bytes) -> None:
        cfg = config(
            mechanism=mechanism,
            max_phantom_bidders=phantoms,
            fee_weight=fee_weight,
            min_participants=1,
        )
        self.registry = NonceRegistry()
        self.auction = open_auction(cfg, seed=seed, nonces=self.registry)
        self.now = T0
        self.next_nonce = dict.fromkeys(BIDDERS, 1)
        self.committed: dict[str, ImprovementBid] = {}  # model: accepted commitments
        self.revealed: dict[str, ImprovementBid] = {}  # model: accepted reveals
        self.accepted_sealed: list[SealedBid] = []
        self.closed_at: datetime | None = None
        self.result: AuctionResult | None = None

    # -- the model's view of the windows --

    def _collecting(self) -> bool:
        return (
            self.result is None
            and self.closed_at is None
            and self.now < self.auction.commit_deadline
        )

    def _revealing(self) -> bool:
        return (
            self.result is None
            and not self._collecting()
            and self.now < self.auction.reveal_deadline
        )

    @staticmethod
    def _valid(bid: ImprovementBid) -> bool:
        bps = (bid.improved_price - BASELINE) / BASELINE * 10_000
        return (
            MIN_BPS - 1e-9 <= bps <= MAX_BPS + 1e-9
            and 0 < bid.volume <= AMOUNT
            and 0 <= bid.priority_fee <= bid.volume * FEE_RATIO
        )

    # -- rules --

    @rule(
        bidder=st.sampled_from(BIDDERS),
        bps=st.floats(8, 52),
        volume=st.floats(0, 1050),
        fee_share=st.floats(0, 1.05),
    )
    def commit(self, bidder: str, bps: float, volume: float, fee_share: float) -> None:
        nonce = self.next_nonce[bidder]
        self.next_nonce[bidder] += 1
        bid = make_bid(
            self.auction.auction_id,
            bidder,
            (1, 2),
            BASELINE * (1 + bps / 10_000),
            volume,
            volume * FEE_RATIO * fee_share,
            nonce,
            timestamp=self.now,
        )
        expected = self._collecting() and bidder not in self.committed
        assert submit_bid(self.auction, bid.sealed(), now=self.now) is expected
        if expected:
            self.committed[bidder] = bid
            self.accepted_sealed.append(bid.sealed())
        else:
            reason = self.auction.last_event.reason  # type: ignore[union-attr]
            assert reason in {RejectReason.LATE, RejectReason.DUPLICATE_COMMIT}

    @rule(pick=st.integers(0, 100))
    def replay(self, pick: int) -> None:
        if not self.accepted_sealed:
            return
        sealed = self.accepted_sealed[pick % len(self.accepted_sealed)]
        assert not submit_bid(self.auction, sealed, now=self.now)
        reason = self.auction.last_event.reason  # type: ignore[union-attr]
        assert reason in {RejectReason.REPLAYED_NONCE, RejectReason.LATE}

    @rule(
        bidder=st.sampled_from(BIDDERS),
        field=st.sampled_from(["improved_price", "volume", "priority_fee", "salt", "nonce"]),
    )
    def tampered_reveal(self, bidder: str, field: str) -> None:
        bid = self.committed.get(bidder)
        if bid is None:
            return
        if field == "salt":
            tampered = replace(bid, salt=bytes(a ^ 1 for a in bid.salt))
        elif field == "nonce":
            tampered = replace(bid, nonce=bid.nonce + 1)
        else:
            tampered = replace(bid, **{field: getattr(bid, field) + 0.5})
        assert not reveal_bid(self.auction, tampered, now=self.now)
        reason = self.auction.last_event.reason  # type: ignore[union-attr]
        assert reason in {
            RejectReason.COMMITMENT_MISMATCH,
            RejectReason.OUTSIDE_REVEAL_WINDOW,
            RejectReason.DUPLICATE_REVEAL,
        }

    @rule(bidder=st.sampled_from(BIDDERS))
    def reveal(self, bidder: str) -> None:
        bid = self.committed.get(bidder)
        if bid is None:
            self._reveal_uncommitted(bidder)
            return
        expected = self._revealing() and bidder not in self.revealed and self._valid(bid)
        assert reveal_bid(self.auction, bid, now=self.now) is expected
        if expected:
            self.revealed[bidder] = bid

    def _reveal_uncommitted(self, bidder: str) -> None:
        bid = make_bid(self.auction.auction_id, bidder, (1, 2), 100.2, 10.0, 0.0, 10**6)
        assert not reveal_bid(self.auction, bid, now=self.now)
        reason = self.auction.last_event.reason  # type: ignore[union-attr]
        expected = RejectReason.NOT_COMMITTED if self._revealing() else None
        assert reason in {expected, RejectReason.OUTSIDE_REVEAL_WINDOW}

    @rule(step_ms=st.sampled_from([0.5, 5.0, 19.5, 40.0, 80.0]))
    def advance_clock(self, step_ms: float) -> None:
        self.now += ms(step_ms)

    @rule()
    def close_early(self) -> None:
        if self._collecting():
            close_collection(self.auction, now=self.now)
            self.closed_at = self.now
        else:
            with pytest.raises(AuctionPhaseError):
                close_collection(self.auction, now=self.now)

    @rule()
    def finalize(self) -> None:
        all_revealed = set(self.revealed) == set(self.committed)
        allowed = self.result is not None or (
            not self._collecting() and (self.now >= self.auction.reveal_deadline or all_revealed)
        )
        if not allowed:
            with pytest.raises(AuctionPhaseError):
                finalize_auction(self.auction, now=self.now)
            return
        result = finalize_auction(self.auction, now=self.now)
        if self.result is not None:
            assert result is self.result
        self.result = result
        assert finalize_auction(self.auction, now=self.now + ms(1000)) == result

    # -- invariants --

    @invariant()
    def state_matches_model(self) -> None:
        assert dict(self.auction.commitments) == {
            b: bid.sealed() for b, bid in self.committed.items()
        }
        assert dict(self.auction.reveals) == self.revealed

    @invariant()
    def nothing_accepted_outside_its_window(self) -> None:
        auction = self.auction
        revealing_from: datetime | None = None
        for event in auction.audit:
            if isinstance(event, PhaseChanged) and event.phase is Phase.REVEALING:
                revealing_from = event.at
            elif isinstance(event, CommitAccepted):
                assert revealing_from is None
                assert auction.opened_at <= event.at < auction.commit_deadline
            elif isinstance(event, RevealAccepted):
                assert revealing_from is not None
                assert revealing_from <= event.at < auction.reveal_deadline

    @invariant()
    def every_reveal_matches_a_commitment(self) -> None:
        auction = self.auction
        for bidder, bid in auction.reveals.items():
            sealed = auction.commitments[bidder]
            assert sealed.nonce == bid.nonce
            assert sealed.commitment_hash == make_commitment(
                auction.auction_id,
                bidder,
                bid.token_pair,
                bid.improved_price,
                bid.volume,
                bid.priority_fee,
                bid.nonce,
                bid.salt,
            )

    @invariant()
    def result_is_sound(self) -> None:
        result = self.auction.result
        if result is None:
            return
        best_real = max((b.improved_price for b in self.revealed.values()), default=BASELINE)
        assert BASELINE <= result.price <= max(best_real, BASELINE) + 1e-9
        assert math.fsum(f.volume for f in result.fills) == pytest.approx(AMOUNT, rel=1e-12)
        assert all(f.volume > 0 for f in result.fills)
        assert result.unrevealed == tuple(b for b in self.committed if b not in self.revealed)
        assert finalize_auction(self.auction) is result

    @invariant()
    def clock_and_audit_are_monotone(self) -> None:
        times = [event.at for event in self.auction.audit]
        assert times == sorted(times)
        assert self.auction.phase in {
            Phase.COLLECTING,
            Phase.REVEALING,
            Phase.FINALIZED,
        }


AuctionMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
TestAuctionMachine = AuctionMachine.TestCase
