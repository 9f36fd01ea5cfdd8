"""Withdrawing a message its driver could not store: the auction forgets it, replay agrees."""

from __future__ import annotations

import pytest

from phantom_auction import InvalidBidParameters
from phantom_auction.engine import (
    CommitRejected,
    NonceRegistry,
    RejectReason,
    RevealRejected,
    finalize_auction,
)

from .engine_support import SEED, T0, ms, no_phantoms, offer, open_auction


def test_a_withdrawn_commit_is_forgotten_and_may_be_sent_again() -> None:
    nonces = NonceRegistry({"bob": 3})
    auction = open_auction(no_phantoms(min_participants=1), nonces=nonces)
    alice = offer(auction, "alice", 100.3, 500.0, nonce=7)
    bob = offer(auction, "bob", 100.2, 500.0, nonce=8)
    for bid in (alice, bob):
        assert auction.commit(bid.sealed(), T0 + ms(1))
    auction.withdraw("bob", "store lost it", T0 + ms(2))
    nonces.release("bob", 8, previous=3)
    assert list(auction.commitments) == ["alice"]
    assert nonces.last("bob") == 3
    event = auction.last_event
    assert isinstance(event, CommitRejected) and event.reason is RejectReason.WITHDRAWN
    # Bob sends the same sealed bid again: fresh nonce, no duplicate.
    assert auction.commit(bob.sealed(), T0 + ms(3)), auction.last_event
    with pytest.raises(InvalidBidParameters, match="bidder_id"):
        auction.withdraw("carol", "never committed", T0 + ms(4))


def test_release_only_undoes_the_newest_nonce() -> None:
    nonces = NonceRegistry()
    nonces.record("bob", 5)
    nonces.release("bob", 5, previous=None)
    assert nonces.last("bob") is None
    nonces.record("bob", 5)
    nonces.record("bob", 9)  # a later commit elsewhere moved on: keep it
    nonces.release("bob", 5, previous=None)
    assert nonces.last("bob") == 9


def test_a_withdrawn_reveal_can_be_revealed_again_and_replay_agrees() -> None:
    auction = open_auction(no_phantoms(min_participants=1))
    alice = offer(auction, "alice", 100.3, 500.0, nonce=7)
    bob = offer(auction, "bob", 100.2, 500.0, nonce=8)
    for bid in (alice, bob):
        assert auction.commit(bid.sealed(), T0 + ms(1))
    auction.withdraw("bob", "lost", T0 + ms(2))
    at = auction.commit_deadline
    assert auction.reveal(alice, at)
    auction.withdraw_reveal("alice", "lost", at)
    assert isinstance(auction.last_event, RevealRejected)
    assert auction.unrevealed == ("alice",)
    assert auction.reveal(alice, at + ms(1)), auction.last_event
    result = finalize_auction(auction, now=auction.reveal_deadline)
    assert result.winning_bid is not None and result.winning_bid.bidder_id == "alice"
    # The audit log, replayed into a twin, gives the same state and clearing.
    twin = open_auction(no_phantoms(min_participants=1), seed=SEED)
    twin.replay(auction.audit[1:])
    assert twin.result is not None
    assert (twin.result.price, twin.result.unrevealed) == (result.price, result.unrevealed)
    assert list(twin.commitments) == ["alice"]
    with pytest.raises(InvalidBidParameters, match="ended"):
        auction.withdraw("alice", "too late", auction.reveal_deadline)
