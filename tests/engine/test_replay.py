"""Persist and rebuild: audit events survive JSON, and replaying them into an auction
opened with the same parameters reproduces the audit and the result exactly."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from phantom_auction import (
    InvalidBidParameters,
    NonceRegistry,
    Outcome,
    SettlementRequest,
    finalize_auction,
    reveal_bid,
    submit_bid,
)
from phantom_auction.engine import (
    Auction,
    AuditEvent,
    abort_auction,
    close_collection,
    event_from_jsonable,
    to_jsonable,
)

from .engine_support import PAIR, SEED, T0, config, ms, offer, open_auction

CFG = config(mechanism="uniform", max_phantom_bidders=5, bid_probability=0.8)


def _busy_auction(registry: NonceRegistry) -> Auction:
    """Accepted and rejected commits and reveals, an early close, a no-show, a finalize."""
    auction = open_auction(CFG, nonces=registry)
    a = offer(auction, "alice", 100.35, 600.0, fee=1.0, nonce=3)
    b = offer(auction, "bob", 100.2, 700.0, nonce=9)
    c = offer(auction, "carol", 100.6, 100.0, nonce=1)  # improvement out of bounds
    d = offer(auction, "dave", 100.3, 100.0, nonce=1)  # never reveals
    for bid in (a, b, c, d):
        assert submit_bid(auction, bid.sealed(), now=T0 + ms(2))
    assert not submit_bid(auction, b.sealed(), now=T0 + ms(3))  # replay
    close_collection(auction, now=T0 + ms(10))
    assert not reveal_bid(auction, replace(a, volume=599.0), now=T0 + ms(11))  # tampered
    for bid in (a, b, c):
        reveal_bid(auction, bid, now=T0 + ms(12))
    finalize_auction(auction, now=T0 + ms(100))
    return auction


def _reopen(registry: NonceRegistry, **kwargs: object) -> Auction:
    return open_auction(CFG, nonces=registry, **kwargs)  # type: ignore[arg-type]


def _through_json(events: tuple[AuditEvent, ...]) -> list[AuditEvent]:
    text = json.dumps([to_jsonable(e) for e in events])
    return [event_from_jsonable(item) for item in json.loads(text)]


def test_events_round_trip_through_json() -> None:
    auction = _busy_auction(NonceRegistry())
    assert _through_json(auction.audit) == list(auction.audit)
    kinds = {type(e).__name__ for e in auction.audit}
    assert kinds == {
        "AuctionOpened",
        "CommitAccepted",
        "CommitRejected",
        "PhaseChanged",
        "RevealAccepted",
        "RevealRejected",
        "AuctionFinalized",
    }


def test_replay_rebuilds_the_same_auction() -> None:
    original = _busy_auction(NonceRegistry())
    registry = NonceRegistry()  # a restarted server: nothing in memory
    rebuilt = _reopen(registry)
    rebuilt.replay(_through_json(original.audit))
    assert rebuilt.audit == original.audit
    assert rebuilt.result == original.result
    # carol revealed out of bounds: her commitment counts as unrevealed.
    assert rebuilt.result is not None and rebuilt.result.unrevealed == ("carol", "dave")
    assert dict(registry.items()) == {"alice": 3, "bob": 9, "carol": 1, "dave": 1}


def test_replay_of_an_unfinished_auction_then_finalize() -> None:
    original = _busy_auction(NonceRegistry())
    cut = next(i for i, e in enumerate(original.audit) if type(e).__name__ == "PhaseChanged")
    rebuilt = _reopen(NonceRegistry())
    rebuilt.replay(original.audit[:cut])
    assert rebuilt.result is None and set(rebuilt.commitments) == set(original.commitments)
    # Restarted after the reveal window: finalize from the stored reveals (none here).
    result = finalize_auction(rebuilt, now=T0 + ms(150))
    assert result.unrevealed == ("alice", "bob", "carol", "dave")


def test_replay_of_an_aborted_auction() -> None:
    original = open_auction(CFG)
    assert submit_bid(original, offer(original, "alice", 100.3, 10.0).sealed(), now=T0)
    abort_auction(original, "restart before the reveal window", now=T0 + ms(30))
    rebuilt = _reopen(NonceRegistry())
    rebuilt.replay(_through_json(original.audit))
    assert rebuilt.result == original.result
    assert rebuilt.result is not None and rebuilt.result.outcome is Outcome.ABORTED


def test_replay_into_another_auction_is_refused() -> None:
    original = _busy_auction(NonceRegistry())
    other = _reopen(NonceRegistry(), seed=bytes(32))
    with pytest.raises(InvalidBidParameters, match="opening"):
        other.replay(original.audit)


def test_replay_refuses_an_accept_the_auction_could_not_have_made() -> None:
    original = _busy_auction(NonceRegistry())
    events = list(original.audit)
    reveal = next(i for i, e in enumerate(events) if type(e).__name__ == "RevealAccepted")
    event = events[reveal]
    events[reveal] = replace(event, bid=replace(event.bid, volume=1.0))  # type: ignore[type-var, arg-type]
    with pytest.raises(InvalidBidParameters, match="rejected on replay"):
        _reopen(NonceRegistry()).replay(events)


def test_result_serializes_to_json() -> None:
    result = finalize_auction(_busy_auction(NonceRegistry()))
    data = json.loads(json.dumps(to_jsonable(result)))
    assert data["type"] == "AuctionResult"
    assert data["outcome"] == "filled"
    assert data["phantom_seed"] == SEED.hex()
    assert data["token_pair"] == list(PAIR)
    assert {r["bidder_id"] for r in data["ranking"]} >= {"alice", "bob"}
    assert data["fills"][0]["type"] == "Fill"


def test_opening_parameters_fix_the_windows() -> None:
    request = SettlementRequest(*PAIR, 1000.0)
    first = Auction(
        request, 100.0, 1000.0, T0 + ms(70), config=CFG, now=T0, auction_id="x", phantom_seed=SEED
    )
    again = Auction(
        request, 100.0, 1000.0, T0 + ms(70), config=CFG, now=T0, auction_id="x", phantom_seed=SEED
    )
    assert first.audit == again.audit
    assert first.phantom_bids == again.phantom_bids


def test_results_pickle_and_rankings_build_on_demand() -> None:
    import pickle

    from phantom_auction.engine import RankedBid, Ranking

    result = finalize_auction(_busy_auction(NonceRegistry()))
    assert isinstance(result.ranking, Ranking)
    assert len(result.ranking) == 2 + len(result.phantom_bids)  # known before building
    copy = pickle.loads(pickle.dumps(result))
    assert copy == result and hash(copy) == hash(result)
    entries = tuple(result.ranking)
    assert all(isinstance(entry, RankedBid) for entry in entries)
    assert result.ranking == entries and result.ranking == list(entries)
    assert result.ranking[0] is entries[0] and result.ranking[:2] == entries[:2]
    assert [entry.rank for entry in entries] == list(range(1, len(entries) + 1))
    assert Ranking(entries) == result.ranking and Ranking() == ()
    assert result.ranking != "not a ranking"
