"""The auction house in-process: a restart rebuilds an auction exactly from its stored events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from phantom_auction.config import load_config
from phantom_auction.engine import CommitAccepted, RevealAccepted, finalize_auction, make_bid
from phantom_auction.service.auth import (
    generate_keypair,
)
from phantom_auction.service.explorer import _finished_summary
from phantom_auction.service.house import (
    AuctionHouse,
    Rejected,
    accepted_events,
    auction_house,
    competition_document,
    from_us,
    result_document,
)
from phantom_auction.service.house.documents import RECOVERED, is_competition_view
from phantom_auction.service.schemas import OpenAuctionBody, RevealBody
from phantom_auction.service.store import MemoryStore, compact_json

from .service_harness import commit_body, reveal_body

pytestmark = pytest.mark.anyio

CONFIG = load_config(
    env={
        "AUCTION_SERVICE_FINISH_EARLY": "false",
        "AUCTION_PHANTOM_AUCTION_MECHANISM": "uniform",
    }
)
BIDDERS = 4


async def _bid(house: AuctionHouse, aid: str, keys: dict[str, str], reveals: int) -> None:
    """Every bidder commits (the even ones in commitment version 1); the first
    ``reveals`` reveal (after the collection window)."""
    live = house.live[aid]
    bids = {}
    for i, (name, private) in enumerate(keys.items()):
        state = await house.bidder_state(name)
        assert state is not None
        bid = make_bid(aid, name, (1, 2), 2000.0 * (1 + (20 + 5 * i) / 1e4), 3.0 + i, 0.0, 100 + i)
        commitment = bid.commitment_for(aid, version=1 if i % 2 == 0 else 2).hex()
        verdict = await house.commit(state, commit_body(aid, bid, private, commitment), aid, "test")
        assert verdict.accepted, verdict
        bids[name] = (state, bid)
    delay = (live.auction.commit_deadline - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, delay) + 0.01)
    for name in list(bids)[:reveals]:
        state, bid = bids[name]
        assert (await house.reveal(state, reveal_body(bid), aid, "test")).accepted


@pytest.mark.parametrize(
    ("past_reveal_window", "reveals"),
    [(True, BIDDERS), (True, BIDDERS - 1), (False, BIDDERS - 1)],
    ids=["finalized", "aborted-unrevealed", "aborted"],
)
async def test_a_restart_replays_stored_events_to_the_same_clearing(
    past_reveal_window: bool, reveals: int
) -> None:
    """A restart rebuilds an auction from its stored events: past its reveal window with
    every reveal in, to the clearing the live server would have made; otherwise it is
    aborted. An unrevealed bid past the window is aborted too (the fault audit): the
    server may have stopped before the reveal was stored, and clearing on the others
    would give another result, published as the bidder's no-reveal."""
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    keys = {}
    for i in range(BIDDERS):
        private, public = generate_keypair()
        await store.add_bidder(f"mm-{i}", bytes.fromhex(public))
        keys[f"mm-{i}"] = private

    first = AuctionHouse(CONFIG, store)
    await first.start()
    # 1.5 s: a 300 ms reveal window, in which a loaded machine still gets every reveal in.
    handle = await first.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=1500
        ),
    )
    aid = handle.record.auction_id
    await _bid(first, aid, keys, reveals)
    # The crash: the first house stops dead (no finalize, no close) with everything acked.
    live = first.live[aid]
    for timer in live.timers:
        timer.cancel()
    await first.group_commit.close()
    if past_reveal_window:
        delay = (live.auction.reveal_deadline - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, delay) + 0.01)
    # What is stored reads back (through the engine's codec) as the engine's own events.
    engine_events = [
        e for e in live.auction.audit if isinstance(e, CommitAccepted | RevealAccepted)
    ]
    assert list(accepted_events(await store.events(aid))) == engine_events
    assert len(engine_events) == BIDDERS + reveals
    expected = finalize_auction(live.auction, now=live.auction.reveal_deadline)

    second = AuctionHouse(CONFIG, store)
    await second.start()
    record = await store.auction(aid)
    assert record is not None and record.result is not None
    assert second.recovered == {aid: record.status}
    if past_reveal_window and reveals == BIDDERS:
        assert record.status == "finalized"
        rebuilt = record.result
        wanted = result_document(expected)
        for field in ("price", "fills", "outcome", "winning_bid", "unrevealed", "phantom_seed"):
            assert rebuilt[field] == wanted[field], field
        assert rebuilt["unrevealed"] == [] and rebuilt[RECOVERED] is True
    else:
        assert (record.status, record.outcome) == ("aborted", "aborted")
        assert record.result["price"] == 2000.0
        assert record.result["unrevealed"] == [f"mm-{BIDDERS - 1}"]
        # A restart never penalizes: the lost reveals may be the server's fault. The
        # result says it was recovered, and the explorer's /bidders counts no no-reveal.
        bidder = await store.bidder(f"mm-{BIDDERS - 1}")
        assert bidder is not None and bidder.penalty.no_reveal_rate == 0.0
        assert record.result[RECOVERED] is True
        assert record.competition is not None
        _summary, tally = _finished_summary(record, record.competition)
        assert tally["unrevealed"] == [] and len(tally["entered"]) == BIDDERS
    assert record.competition is not None
    assert sum(c["accepted"] for c in record.competition["commitments"]) == BIDDERS
    # The nonces of the replayed commits stay used.
    assert second.nonces.last("mm-0") == 100
    await second.close()


async def test_a_graceful_stop_ends_every_running_auction() -> None:
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    collecting = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=60_000
        ),
    )
    assert collecting.stored is not None
    await collecting.stored
    await house.close()
    record = await store.auction(collecting.record.auction_id)
    assert record is not None and (record.status, record.outcome) == ("aborted", "aborted")
    assert collecting.done is not None and collecting.done.result().status == "aborted"


async def test_the_competition_is_stored_without_the_events_and_published_whole() -> None:
    """The store keeps the competition document without its commitments, reveals and
    rejections (they repeat the bid events); the published document is the same as one
    built from the live auction, and a message refused after the end is not in it."""
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    keys, publics = {}, {}
    for i in range(BIDDERS):
        private, public = generate_keypair()
        await store.add_bidder(f"mm-{i}", bytes.fromhex(public))
        keys[f"mm-{i}"], publics[f"mm-{i}"] = private, public
    house = AuctionHouse(CONFIG, store)
    await house.start()
    # 1.5 s: a 300 ms reveal window (at 300 ms, 60 ms), in which a loaded machine still
    # gets every reveal in.
    handle = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=1500
        ),
    )
    aid = handle.record.auction_id
    live = house.live[aid]
    await _bid(house, aid, keys, BIDDERS - 1)
    assert handle.done is not None
    finished = await handle.done
    events = list(live.events)
    assert len(events) == 2 * BIDDERS - 1
    # After the end: refused and stored, but not part of the published competition.
    state = await house.bidder_state("mm-0")
    assert state is not None
    late = RevealBody(
        token_pair=[1, 2],
        improved_price=2004.0,
        volume=3.0,
        priority_fee=0.0,
        nonce=100,
        salt="00" * 32,
    )
    assert (await house.reveal(state, late, aid, "test")).reason == "auction_closed"
    assert len(await store.events(aid)) == 2 * BIDDERS

    stored = (await store.auction(aid)).competition  # type: ignore[union-attr]
    assert stored is not None and is_competition_view(stored)
    assert not {"commitments", "reveals", "rejections"} & set(stored)
    published = await house.competition(finished)
    assert published is not None
    result = live.auction.result
    assert result is not None
    whole = competition_document(
        finished, events, result, finished.status, publics, live.auction.rule_book
    )
    assert published == whole
    assert list(published) == list(whole)  # same keys, same order
    assert len(published["commitments"]) == BIDDERS
    assert len(published["reveals"]) == BIDDERS - 1
    assert "events" not in published
    # Announced at open as published after the end: a verifier keeps them from the open.
    opened = json.loads(live.announcement)
    for key in ("mechanism", "phantom_policy", "rules", "phantom_model"):
        assert opened[key] == published[key], key
    # The rules it cleared by, for a verifier clearing it again (the JS bidder's audit:
    # the weights and min_participants were nowhere in the document).
    assert published["rules"] == {
        "min_improvement_bps": 10.0, "max_improvement_bps": 50.0, "price_weight": 1.0,
        "fee_weight": 0.0, "min_participants": CONFIG.phantom_auction.min_participants,
        "max_bid_value_multiplier": CONFIG.auction_mechanics.max_bid_value_multiplier,
        "priority_fee_max_ratio": CONFIG.auction_mechanics.priority_fee_max_ratio,
    }  # fmt: skip
    # Each accepted reveal shows the hash its fields give in its commit's version: the
    # commit's own (the JS bidder's audit: version 1 reveals showed their v2 hash).
    committed = {c["bidder_id"]: c["commitment"] for c in published["commitments"]}
    for reveal in published["reveals"]:
        assert reveal["accepted"] and reveal["commitment"] == committed[reveal["bidder_id"]]
    # Left out is the bulk (the events repeat it): at least the commitments and reveals,
    # less the count of events covered. (A fixed share would depend on the auction's
    # random number of phantom bids, which both documents hold.)
    left_out = len(compact_json(published["commitments"])) + len(compact_json(published["reveals"]))
    covers = len(compact_json({"events": len(events)}))
    assert len(compact_json(stored)) <= len(compact_json(published)) - left_out + covers
    # Pruned after its record was read (``auctions prune`` beside the server): gone, not
    # published without its bids.
    assert (await store.prune(2**62)).auctions == 1
    with pytest.raises(Rejected) as gone:
        await house.competition(finished)
    assert (gone.value.status_code, gone.value.reason) == (404, "unknown_auction")
    await house.close()


class ShiftedClock:
    """The system's clocks, five years ahead: a house that reads any other clock shows it."""

    offset = timedelta(days=5 * 365)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def loop_time(self, when: datetime) -> float:
        return asyncio.get_running_loop().time() + (when - self.now()).total_seconds()


async def test_the_house_reads_the_time_from_its_injected_clock() -> None:
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    private, public = generate_keypair()
    await store.add_bidder("mm-0", bytes.fromhex(public))
    clock = ShiftedClock()
    house = AuctionHouse(CONFIG, store, clock=clock)
    await house.start()
    handle = await house.open_auction(
        client,
        OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=300
        ),
    )
    aid = handle.record.auction_id
    state = await house.bidder_state("mm-0")
    assert state is not None
    bid = make_bid(aid, "mm-0", (1, 2), 2001.0, 1.0, 0.0, 7)
    assert (await house.commit(state, commit_body(aid, bid, private), aid, "test")).accepted
    assert handle.done is not None
    record = await asyncio.wait_for(handle.done, 10.0)  # the timers follow the same clock
    await house.close()

    def years_ahead(us: int | None) -> float:
        assert us is not None
        return (from_us(us) - datetime.now(UTC)) / timedelta(days=365)

    assert 4.99 < years_ahead(record.opened_at_us) < 5.01
    assert 4.99 < years_ahead(record.finished_at_us) < 5.01
    events = await store.events(aid)
    assert [e.kind for e in events] == ["commit"]
    assert 4.99 < years_ahead(events[0].received_at_us) < 5.01
    assert record.result is not None
    finalized = datetime.fromisoformat(record.result["finalized_at"])
    assert 4.99 < (finalized - datetime.now(UTC)) / timedelta(days=365) < 5.01


async def test_the_ended_auctions_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """`closed` (ended auction id -> status, to answer a straggler without a store read)
    keeps only the newest CLOSED_REMEMBERED: a long-running server's memory levels off."""
    monkeypatch.setattr(auction_house, "CLOSED_REMEMBERED", 2)
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    ended = []
    try:
        for _ in range(3):
            opened = await house.open_auction(
                client,
                OpenAuctionBody(
                    token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=20
                ),
            )
            assert opened.done is not None
            ended.append((await opened.done).auction_id)
    finally:
        await house.close()
    assert list(house.closed) == ended[1:]
    assert await store.auction(ended[0]) is not None  # forgotten by the house, not the store
