"""What one client must not do to the service (the nineteenth session's security audit).

- A signed request stamped ahead of the server's clock stays fresh up to ``ttl`` past
  its stamp: it is remembered that long, not ``ttl`` past its receipt (it was taken
  again 32 s later).
- A failed signature costs a known bidder id the store read an unknown id costs, so
  timing does not tell which ids exist.
- Every WebSocket message takes a token of the bidder's rate limit (status requests and
  malformed ones too); a socket flooding far past it is closed.
- A deadline whose UTC form overflows, and an HTTP body json.loads cannot take for a
  reason other than a decode error, are ``malformed`` naming the field (not a 500, nor
  a detail without the place).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from phantom_auction.client import signed_headers
from phantom_auction.config import load_config
from phantom_auction.service.auth import (
    generate_keypair,
    load_private_key,
    request_signing_bytes,
    sign,
)
from phantom_auction.service.house import Rejected
from phantom_auction.service.house.rate_limit import FLOOD_CLOSE_AFTER
from phantom_auction.service.house.sessions import Identities
from phantom_auction.service.metrics import ServiceMetrics
from phantom_auction.service.store import MemoryStore

from .service_harness import order
from .test_audit_fixes import add_bidder, login, serving

pytestmark = pytest.mark.anyio


class SteppedClock:
    """Wall and monotonic time that move only when told (``advance``)."""

    def __init__(self) -> None:
        self.wall = datetime.now(UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def loop_time(self, when: datetime) -> float:
        return asyncio.get_running_loop().time() + (when - self.wall).total_seconds()

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


class CountingStore(MemoryStore):
    """A memory store that counts its registration reads."""

    def __init__(self) -> None:
        super().__init__()
        self.bidder_reads = 0

    async def bidder(self, bidder_id: str) -> Any:
        self.bidder_reads += 1
        return await super().bidder(bidder_id)


async def _identities() -> tuple[Identities, CountingStore, SteppedClock, str]:
    store, clock = CountingStore(), SteppedClock()
    private, public = generate_keypair()
    await store.add_bidder("mm-1", bytes.fromhex(public))
    identities = Identities(load_config(env={}), store, ServiceMetrics(), clock)
    return identities, store, clock, private


def _signed(private: str, stamp_ms: int, bidder_id: str = "mm-1") -> tuple[str, str, str]:
    message = request_signing_bytes(bidder_id, "GET", "/v1/bidders/me", stamp_ms, b"")
    return bidder_id, str(stamp_ms), sign(load_private_key(private), message)


async def test_a_request_stamped_ahead_is_remembered_until_its_stamp_goes_stale() -> None:
    identities, _store, clock, private = await _identities()
    ttl_s = load_config(env={}).security.challenge_ttl_s
    now_ms = int(clock.now().timestamp() * 1000)
    ahead = _signed(private, now_ms + int((ttl_s - 5) * 1000))  # within the skew allowed
    assert await identities.authenticate_request(*ahead, "GET", "/v1/bidders/me", b"")
    # Past ttl from its receipt, still fresh by its stamp: refused as a replay.
    clock.advance(ttl_s + 2)
    with pytest.raises(Rejected) as again:
        await identities.authenticate_request(*ahead, "GET", "/v1/bidders/me", b"")
    assert again.value.reason == "replayed_request"
    # Once its stamp is stale it is refused as stale (and may be forgotten).
    clock.advance(ttl_s)
    with pytest.raises(Rejected) as stale:
        await identities.authenticate_request(*ahead, "GET", "/v1/bidders/me", b"")
    assert stale.value.reason == "stale_request"


async def test_a_failed_signature_reads_the_store_for_a_known_id_as_for_an_unknown_one() -> None:
    identities, store, clock, _private = await _identities()
    other, _ = generate_keypair()
    now_ms = int(clock.now().timestamp() * 1000)
    assert await identities.bidder_state("mm-1") is not None  # known and cached
    reads: dict[str, int] = {}
    for bidder_id in ("mm-1", "nobody-1"):
        before = store.bidder_reads
        with pytest.raises(Rejected) as refused:
            await identities.authenticate_request(
                *_signed(other, now_ms, bidder_id), "GET", "/v1/bidders/me", b""
            )
        assert refused.value.reason == "bad_signature"
        reads[bidder_id] = store.bidder_reads - before
    assert reads == {"mm-1": 1, "nobody-1": 1}


async def test_status_and_malformed_messages_are_rate_limited_and_a_flood_is_closed() -> None:
    store = MemoryStore()
    private = await add_bidder(store, "flooder")
    # A low rate, so that a loaded machine's slower burst still outruns the bucket's refill
    # and the flood gauge's drain (at 200/s, a burst slower than ~0.3 s refills enough).
    env = {"AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "20"}
    async with serving(store, env=env) as server:
        ws = await login(server.ws_url, "flooder", private)  # welcomed
        limit = load_config(env=env).resources.max_messages_per_second
        burst = int(limit) + 50
        for i in range(burst):
            await ws.send(json.dumps({"type": "status", "ref": i}))
        for _ in range(burst):
            await ws.send("{not json")
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2 * burst)]
        refused = [a for a in answers if a.get("reason") == "rate_limited"]
        assert len(refused) >= burst - 10, len(refused)  # the bucket holds ~1 s of messages
        assert any(a.get("ref") is not None for a in refused)  # a status keeps its ref
        assert "max_messages_per_second" in refused[0]["detail"]
        # Far past the limit, the socket is closed.
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(FLOOD_CLOSE_AFTER + 10):
                await ws.send("{not json")
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "rate_limited")


async def test_an_overflowing_deadline_and_unparsable_bodies_name_the_field() -> None:
    store = MemoryStore()
    private = await add_bidder(store, "mm-1")
    # A low rate, so that the burst below outruns the bucket's refill on a loaded machine
    # too (at 200/s, 600 requests slower than 2 s all passed).
    env = {"AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "20"}
    async with serving(store, env=env) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for deadline in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"):
                r = await http.post("/v1/auctions", json=order(deadline=deadline), headers=headers)
                assert r.status_code == 422, r.text
                assert (r.json()["reason"], r.json()["field"]) == ("malformed", "deadline")
            for body, where in (
                (b'{"token_in": ' + b"9" * 5000 + b"}", "line 1 column"),
                (b"[" * 4000 + b"]" * 4000, "line 1 column"),
            ):
                r = await http.post(
                    "/v1/auctions",
                    content=body,
                    headers={**headers, "Content-Type": "application/json"},
                )
                assert (r.status_code, r.json()["reason"]) == (422, "malformed"), r.text
                assert where in r.json()["detail"] and r.json()["field"] == "body", r.text
            # GET /v1/bidders/me counts in the bidder's rate limit too (at once, twice
            # its rate of requests: the bucket holds one second's worth).
            limit = int(load_config(env=env).resources.max_messages_per_second)
            stamp = int(time.time() * 1000)
            answers = await asyncio.gather(
                *(
                    http.get(
                        "/v1/bidders/me",
                        headers=signed_headers(
                            "mm-1", private, "GET", "/v1/bidders/me", timestamp_ms=stamp + i
                        ),
                    )
                    for i in range(3 * limit)
                )
            )
            statuses = [r.status_code for r in answers]
            assert statuses.count(200) >= limit and 429 in statuses, statuses.count(429)
            refused = next(r for r in answers if r.status_code == 429).json()
            assert refused["reason"] == "rate_limited"


async def test_an_auction_stores_at_most_max_stored_refusals_of_one_bidder() -> None:
    """The audit: 2,380 bad signatures in 12 s of one auction were all kept in memory,
    stored and published (a 2.1 MB competition document; an hour at the rate limit,
    ~650 MB). Past MAX_STORED_REFUSALS, a bidder's messages for that auction are refused
    ``too_many_rejections`` and not stored; other bidders are not affected."""
    from phantom_auction.service.house import AuctionHouse
    from phantom_auction.service.house.bids import MAX_STORED_REFUSALS
    from phantom_auction.service.schemas import CommitBody, OpenAuctionBody

    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    await add_bidder(store, "noisy")
    await add_bidder(store, "quiet")
    house = AuctionHouse(load_config(env={}), store)
    await house.start()
    try:
        handle = await house.open_auction(
            client,
            OpenAuctionBody(
                token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=60_000
            ),
        )
        aid = handle.record.auction_id
        noisy, quiet = await house.bidder_state("noisy"), await house.bidder_state("quiet")
        assert noisy is not None and quiet is not None
        noisy.bucket.rate = noisy.bucket.capacity = 1e9  # the cap, not the rate limit
        forged = CommitBody(token_pair=[1, 2], commitment="ab" * 32, nonce=1, signature="00" * 64)
        reasons = [
            (await house.commit(noisy, forged, aid, "test")).reason
            for _ in range(MAX_STORED_REFUSALS + 20)
        ]
        assert reasons[:MAX_STORED_REFUSALS] == ["bad_signature"] * MAX_STORED_REFUSALS
        assert set(reasons[MAX_STORED_REFUSALS:]) == {"too_many_rejections"}
        assert (await house.commit(quiet, forged, aid, "test")).reason == "bad_signature"
        stored = [e for e in await store.events(aid) if e.bidder_id == "noisy"]
        assert len(stored) == MAX_STORED_REFUSALS
    finally:
        await house.close()


async def test_one_client_cannot_keep_the_others_out_of_new_auctions() -> None:
    """The audit: one client's long auctions filled max_concurrent_auctions and every
    other client got 503 until they ended. A client now has a share of its own."""
    from phantom_auction.service.house import AuctionHouse
    from phantom_auction.service.schemas import OpenAuctionBody

    config = load_config(env={"AUCTION_RESOURCES_MAX_AUCTIONS_PER_CLIENT": "2"})
    store = MemoryStore()
    greedy = await store.add_client("greedy", "a" * 64)
    other = await store.add_client("other", "b" * 64)
    house = AuctionHouse(config, store)
    await house.start()
    long = OpenAuctionBody(
        token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=3_600_000
    )
    try:
        for _ in range(2):
            await house.open_auction(greedy, long)
        with pytest.raises(Rejected) as busy:
            await house.open_auction(greedy, long)
        assert (busy.value.status_code, busy.value.reason) == (503, "too_many_auctions")
        assert "max_auctions_per_client=2" in str(busy.value.detail)
        assert busy.value.headers is not None and "Retry-After" in busy.value.headers
        await house.open_auction(other, long)  # the other client is not shut out
    finally:
        await house.close()


class Unreachable(MemoryStore):
    """A store whose database has gone away for reads (an outage)."""

    down = False

    async def auction_by_key(self, client_id: int, key: str) -> Any:
        if self.down:
            from sqlalchemy.exc import OperationalError

            raise OperationalError(
                "SELECT auctions.auction_id FROM auctions", {}, ConnectionRefusedError("refused")
            )
        return await super().auction_by_key(client_id, key)


async def test_an_unreachable_store_is_a_503_not_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """The operator audit: with PostgreSQL down, POST /v1/auctions answered a plain-text
    500 and logged a traceback per request (7,755 log lines in 10 s)."""
    store = Unreachable()
    async with serving(store) as server:
        store.down = True
        async with server.http() as http:
            r = await http.post("/v1/auctions", json=order(idempotency_key="k-1"))
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["reason"] == "store_unavailable" and "refused" in body["detail"]
        assert "SELECT" not in body["detail"]  # the fault audit: the SQL was in the reply
        assert r.headers["Retry-After"] == "1"
    assert not any(record.exc_info for record in caplog.records)
