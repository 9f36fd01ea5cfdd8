"""The fault audit's findings, in-process: the venue's failures never count as a bidder's.

A reveal the store lost, or one that waited unread while this process stood still, is
not a no-reveal; an auction whose opening was never stored ends at once and frees its
idempotency key; a server that lost its lease on the store (a VM pause past it) does
not tell anyone an end another server may have stored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from phantom_auction.config import load_config
from phantom_auction.engine import make_bid
from phantom_auction.service.auth import (
    generate_keypair,
)
from phantom_auction.service.house import AuctionHouse, Rejected
from phantom_auction.service.schemas import OpenAuctionBody
from phantom_auction.service.store import AuctionRecord, MemoryStore, Write

from .service_harness import FailsOneReveal, commit_body, reveal_body

pytestmark = pytest.mark.anyio

#: A reveal window long enough to count for penalties (security.min_penalized_reveal_ms).
PENALIZING = load_config(
    env={
        "AUCTION_SERVICE_FINISH_EARLY": "false",
        "AUCTION_PHANTOM_AUCTION_MECHANISM": "uniform",
        "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
        "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "400",
    }
)
ORDER = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}


class Bidders:
    """Registered bidders that commit and reveal straight into a house."""

    def __init__(self, house: AuctionHouse, keys: dict[str, str]) -> None:
        self.house, self.keys = house, keys
        self.bids: dict[str, Any] = {}

    async def commit(self, aid: str, name: str, nonce: int) -> None:
        bid = make_bid(aid, name, (1, 2), 2000.0 * 1.003, 5.0, 0.0, nonce)
        body = commit_body(aid, bid, self.keys[name])
        state = await self.house.bidder_state(name)
        assert state is not None
        assert (await self.house.commit(state, body, aid, "test")).accepted
        self.bids[name] = bid

    async def reveal(self, aid: str, name: str) -> Any:
        state = await self.house.bidder_state(name)
        assert state is not None
        return await self.house.reveal(state, reveal_body(self.bids[name]), aid, "test")


async def _house(store: MemoryStore, names: Sequence[str]) -> tuple[AuctionHouse, Bidders]:
    keys = {}
    for name in names:
        private, public = generate_keypair()
        await store.add_bidder(name, bytes.fromhex(public))
        keys[name] = private
    house = AuctionHouse(PENALIZING, store)
    await house.start()
    return house, Bidders(house, keys)


async def _open(house: AuctionHouse, client: Any, **body: Any) -> Any:
    handle = await house.open_auction(client, OpenAuctionBody(**ORDER, **body))
    assert handle.stored is not None
    await handle.stored
    return handle


async def _sleep_until(when: datetime) -> None:
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()) + 0.02)


async def _rate(store: MemoryStore, name: str) -> float:
    bidder = await store.bidder(name)
    assert bidder is not None
    return bidder.penalty.no_reveal_rate


async def test_a_reveal_the_store_lost_is_not_charged_as_a_no_reveal() -> None:
    """The fault audit: a few seconds of store failure answered every reveal
    store_unavailable and then charged each bidder a no-reveal, blocking all of them.
    A bidder who simply does not reveal is still charged."""
    store = FailsOneReveal()  # the first reveal, lost's (silent never reveals)
    client = await store.add_client("settlement", "a" * 64)
    house, bidders = await _house(store, ["lost", "silent"])
    try:
        handle = await _open(house, client)
        aid = handle.record.auction_id
        await bidders.commit(aid, "lost", 1)
        await bidders.commit(aid, "silent", 1)
        await _sleep_until(house.live[aid].auction.commit_deadline)
        verdict = await bidders.reveal(aid, "lost")
        assert (verdict.accepted, verdict.reason) == (False, "store_unavailable")
        record = await asyncio.wait_for(handle.done, 5)
        assert record.status == "finalized"
        assert record.result is not None
        assert sorted(record.result["unrevealed"]) == ["lost", "silent"]
        assert await _rate(store, "lost") == 0.0
        assert await _rate(store, "silent") > 0.0
    finally:
        await house.close()


@pytest.mark.parametrize("stalled", [True, False])
async def test_no_reveals_through_the_servers_own_stall_are_not_charged(stalled: bool) -> None:
    """The fault audit: a worker stopped (SIGSTOP) through the reveal window read its
    bidders' reveals after it and charged them as no-reveals. An auction finished well
    after its reveal deadline (the process stood still) charges no one."""
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house, bidders = await _house(store, ["mm-0"])
    try:
        handle = await _open(house, client)
        aid = handle.record.auction_id
        await bidders.commit(aid, "mm-0", 1)
        live = house.live[aid]
        await _sleep_until(live.auction.commit_deadline)
        if stalled:  # the loop stands still from inside the window to past its end
            wait = (live.auction.reveal_deadline - datetime.now(UTC)).total_seconds()
            time.sleep(wait + 0.4)
        record = await asyncio.wait_for(handle.done, 5)
        assert record.status == "finalized"
        assert record.result is not None and record.result["unrevealed"] == ["mm-0"]
        assert (await _rate(store, "mm-0") == 0.0) is stalled
    finally:
        await house.close()


class OpensFail(MemoryStore):
    """Refuses the first auction row it is given (a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    async def apply(self, writes: Sequence[Write]) -> None:
        if not self.refused and any(isinstance(w, AuctionRecord) for w in writes):
            self.refused = True
            raise OSError("database or disk is full")
        await super().apply(writes)


async def test_an_auction_whose_opening_was_not_stored_ends_and_frees_its_key() -> None:
    """The fault audit: the client was answered 503, but its retry under the same
    idempotency key got the unstored auction back (aborted, and 404 on every read), and
    bidders went on sending commits the store could never keep. It now ends at once,
    unlisted, and the retry opens a new auction."""
    store = OpensFail()
    client = await store.add_client("settlement", "a" * 64)
    house = AuctionHouse(PENALIZING, store)
    await house.start()
    try:
        body = OpenAuctionBody(**ORDER, duration_ms=60_000, idempotency_key="k-1")
        first = await house.open_auction(client, body)
        assert first.stored is not None
        with pytest.raises(OSError):
            await first.stored
        aid = first.record.auction_id
        record = await asyncio.wait_for(first.done, 5)  # not the 60 s of its window
        assert (record.status, record.outcome) == ("aborted", "aborted")
        assert aid not in house.live and house.closed[aid] == "aborted"
        again = await house.open_auction(client, body)
        assert again.created and again.record.auction_id != aid
        assert again.stored is not None
        await again.stored
        assert await store.auction(aid) is None
        stored = await store.auction(again.record.auction_id)
        assert stored is not None and stored.idempotency_key == "k-1"
    finally:
        await house.close()


class Lease:
    """A lock on the store that another server took over while this one was paused."""

    def __init__(self) -> None:
        self.held = True

    async def holds(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False


async def test_a_server_that_lost_its_lease_tells_no_one_its_own_end() -> None:
    """The fault audit's VM pause: another worker recovered (aborted) the auctions of a
    paused one, which then finalized them in memory and told its clients and bidders
    that outcome while the store kept the other. With its lease gone it now neither
    writes nor tells an end; the waiting client is told to ask again."""
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    house, bidders = await _house(store, ["mm-0"])
    lease = Lease()
    house.claim = lease  # type: ignore[assignment]
    try:
        handle = await _open(house, client)
        aid = handle.record.auction_id
        await bidders.commit(aid, "mm-0", 1)
        lease.held = False
        with pytest.raises(Rejected) as told:
            await asyncio.wait_for(handle.done, 5)
        assert told.value.reason == "store_unavailable"
        assert "lost its lock" in str(told.value.detail)
        stored = await store.auction(aid)
        assert stored is not None and stored.status == "open"  # left to the other server
        assert aid not in house.live and aid not in house.closed
    finally:
        house.claim = None
        await house.close()


class Connection:
    """An asyncpg connection's part a heartbeat uses; ``alive`` False: PostgreSQL
    dropped it (as it does a paused holder's after ``locks.FREED_WITHIN_S``)."""

    def __init__(self) -> None:
        self.alive = True

    def add_termination_listener(self, listener: Any) -> None:
        pass

    async def fetchval(self, query: str) -> int:
        if not self.alive:
            raise ConnectionResetError("terminating connection due to administrator command")
        return 1


@pytest.mark.parametrize("dropped", [False, True])
async def test_a_lease_unconfirmed_since_a_pause_is_checked_before_it_is_relied_on(
    dropped: bool,
) -> None:
    """A process resumed after a pause (its timers all due at once) asks again whether
    it holds its lock before it acts on it: True at once while fresh; after the pause,
    the next check's answer."""
    from phantom_auction.service import locks

    connection = Connection()
    lost: list[str] = []
    heartbeat = locks.Heartbeat(connection, "the test's lock", lost.append)
    try:
        assert await asyncio.wait_for(heartbeat.holds(), 0.1)
        heartbeat.answered_at -= 30.0  # the loop's clock ran on while the process stood
        connection.alive = not dropped
        started = time.monotonic()
        assert await asyncio.wait_for(heartbeat.holds(), 5) is not dropped
        # The next check's answer (due within HEARTBEAT_S), not the one after it: the
        # bound leaves a loaded machine the rest of the second.
        assert time.monotonic() - started < 2 * locks.HEARTBEAT_S
        assert lost == (["the test's lock"] if dropped else [])
    finally:
        await heartbeat.stop()


async def test_a_bidder_logging_in_mid_auction_is_told_the_auctions_still_collecting(
    server_factory: Any,
) -> None:
    """The fault audit: after a restart, auctions opened before the bidders reconnected
    ended ``no_bids``: a login was sent only ``welcome``. It is now also sent the
    auctions still taking commits, and can bid in them."""
    import httpx

    from .service_harness import RawBidder, open_auction, reason

    server = server_factory({})
    token = await server.add_client("settlement")
    name = f"late-{time.time_ns()}"
    key = await server.add_bidder(name)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        aid = await open_auction(http, 3000)
        async with RawBidder(server.ws_url, name, key) as late:
            pushed = await late.push("auction_opened", aid)
            assert pushed["phantom_model"] is not None  # the whole announcement
            opened = await late.opened(aid)
            assert reason(await late.commit(aid, late.bid(opened, 30))) == "accepted"


def test_the_sdk_takes_an_auction_announced_twice_once() -> None:
    """A reconnecting SDK bidder is announced again the auctions it already bids in: its
    round (the commit to resend, the reveal) is kept, the strategy not asked again."""
    import orjson

    from phantom_auction.client import BidderClient
    from phantom_auction.service.house.documents import announcement_document
    from phantom_auction.simulation.live import StrategyBidder

    from ..engine.engine_support import config, open_auction

    asked: list[Any] = []

    class Abstains:
        def generate_bid(self, *args: Any) -> None:
            asked.append(args)

    client = BidderClient("http://127.0.0.1:1", "mm-0", generate_keypair()[0])
    bidder = StrategyBidder(Abstains(), "mm-0")
    pushed = orjson.loads(orjson.dumps(announcement_document(open_auction(config()))))
    client._dispatch(bidder, pushed)
    client._dispatch(bidder, pushed)
    assert len(asked) == 1 and client.report().auctions_seen == 1
