"""SIGKILL mid-load, restart: nothing acknowledged is lost, every auction ends exactly once,
and its bidders are told how."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from typing import Any

import httpx
import pytest

from phantom_auction.client import BidderClient
from phantom_auction.service.auth import hash_token
from phantom_auction.simulation.strategies import create_strategy

from .service_harness import RawBidder, ServerProcess, open_auction, order, reason

pytestmark = pytest.mark.anyio

STRATEGIES = ["truthful", "aggressive", "conservative", "equilibrium", "random_walk"]
LOAD_SECONDS = 1.5
OPENERS = 4


@pytest.mark.slow
async def test_sigkill_mid_load_loses_no_acknowledged_message(server_factory: Any) -> None:
    server: ServerProcess = server_factory({"AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "10000"})
    token = await server.add_client("settlement")
    names = [f"mm-{i}" for i in range(len(STRATEGIES))]
    keys = {name: await server.add_bidder(name) for name in names}
    late_key = await server.add_bidder("latecomer")

    clients = [
        BidderClient(server.url, name, keys[name], reconnect=False, keep_acks=None)
        for name in names
    ]
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(client.arun(create_strategy(strategy), stop=stop))
        for client, strategy in zip(clients, STRATEGIES, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 30)

    answered: dict[str, dict[str, Any]] = {}  # idempotency key -> the response body seen
    in_flight: set[str] = set()
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as http:
        long = await http.post(
            "/v1/auctions",
            params={"wait": "false"},
            json=order(duration_ms=60_000, idempotency_key="long"),
        )
        assert long.status_code == 202
        answered["long"] = long.json()

        async def opener(worker: int) -> None:
            for n in itertools.count():
                key = f"order-{worker}-{n}"
                in_flight.add(key)
                try:
                    r = await http.post("/v1/auctions", json=order(idempotency_key=key))
                except httpx.TransportError:
                    return  # the server died under this request
                in_flight.discard(key)
                assert r.status_code == 200, r.text
                answered[key] = r.json()

        openers = [asyncio.create_task(opener(w)) for w in range(OPENERS)]
        await asyncio.sleep(LOAD_SECONDS)
        server.kill()
        await asyncio.wait_for(asyncio.gather(*openers), 30)
    stop.set()
    reports = await asyncio.gather(*runs)
    acks = [(r.bidder_id, a) for r in reports for a in r.acks]
    assert len(answered) > 5 and len(acks) > 20, "too little load before the kill"

    server.start()
    store = await server.connect_store()
    try:
        # Every auction has exactly one outcome: none is left open.
        assert await store.auction_ids("open") == []
        every = await store.auction_ids()
        assert set(every) >= {body["auction_id"] for body in answered.values()}
        stored_events: Counter[tuple[Any, ...]] = Counter()
        for auction_id in every:
            record = await store.auction(auction_id)
            assert record is not None
            assert record.status in ("finalized", "aborted") and record.outcome is not None
            assert record.result is not None and record.competition is not None
            for event in await store.events(auction_id):
                stored_events[
                    (event.auction_id, event.bidder_id, event.kind, event.accepted, event.reason)
                ] += 1
        # Every message a bidder saw acknowledged is in the store, with the same verdict.
        acked: Counter[tuple[Any, ...]] = Counter(
            (a.auction_id, bidder, a.kind, a.status == "accepted", a.reason) for bidder, a in acks
        )
        missing = acked - stored_events
        assert not missing, f"acknowledged but not stored: {missing}"
        # Every result a client saw is the stored one; the long auction was aborted.
        client = await store.client_by_token_hash(hash_token(token))
        assert client is not None
        for key, body in answered.items():
            record = await store.auction_by_key(client.client_id, key)
            assert record is not None and record.auction_id == body["auction_id"]
            if key != "long":
                assert record.result == body["result"]
        long_record = await store.auction_by_key(client.client_id, "long")
        assert long_record is not None and long_record.status == "aborted"
    finally:
        await store.close()

    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as http:
        # Retries after the restart get the same auction and result.
        for key in list(itertools.islice(answered, 5)) + sorted(in_flight):
            retry = await http.post(
                "/v1/auctions",
                json=order(idempotency_key=key)
                if key != "long"
                else order(duration_ms=60_000, idempotency_key=key),
            )
            assert retry.status_code == 200, retry.text
            if key in answered:
                assert retry.json()["auction_id"] == answered[key]["auction_id"]
                if key != "long":
                    assert retry.json()["result"] == answered[key]["result"]
            assert retry.json()["status"] in ("finalized", "aborted")
        assert (await http.get(f"/v1/auctions/{answered['long']['auction_id']}")).json()[
            "status"
        ] == "aborted"
        # A message for an auction that ended before the restart: its own verdict.
        async with RawBidder(server.ws_url, "latecomer", late_key) as late:
            old = answered["long"]["auction_id"]
            message = {
                "type": "commit",
                "auction_id": old,
                "token_pair": [1, 2],
                "commitment": "ab" * 32,
                "nonce": late.next_nonce(),
                "signature": "00" * 64,
            }
            assert reason(await late.send(message)) == "auction_closed"
    with contextlib.suppress(Exception):
        server.stop()


async def test_a_bidder_is_told_at_its_next_login_how_a_restart_ended_its_auction(
    server_factory: Any,
) -> None:
    """A commit acknowledged, the server killed, started again: the bidder's login gets
    the auction's ``auction_closed`` (aborted by recovery, nothing filled, its reveal
    not counted), once."""
    server: ServerProcess = server_factory({})
    key = await server.add_bidder("mm-0")
    async with server.settlement() as http, RawBidder(server.ws_url, "mm-0", key) as bidder:
        running = await open_auction(http, 60_000)
        bid = bidder.bid(await bidder.opened(running))
        assert reason(await bidder.commit(running, bid)) == "accepted"
        port = server.port
        server.kill()
    await asyncio.to_thread(server.start, 30.0, port)
    async with RawBidder(server.ws_url, "mm-0", key) as bidder:
        closed = await bidder.push("auction_closed", running)
    assert closed["status"] == "aborted" and closed["outcome"] == "aborted"
    assert closed["filled"] == 0.0 and closed["revealed"] is False
    async with RawBidder(server.ws_url, "mm-0", key) as again:
        await asyncio.sleep(0.5)  # what a second login is sent comes at once
        assert [p for p in again.pushes if p["type"] == "auction_closed"] == []


async def test_a_bidder_whose_connection_dropped_is_told_its_fill_at_its_next_login(
    server_factory: Any,
) -> None:
    """The SDK audit: a bidder whose connection dropped between its accepted reveal and
    the auction's end never learnt that it was filled (only recovered auctions' ends
    were kept). Its next login gets the ``auction_closed`` with the fill, once."""
    server: ServerProcess = server_factory({})
    key = await server.add_bidder("mm-0")
    async with server.settlement() as http:
        async with RawBidder(server.ws_url, "mm-0", key) as bidder:
            auction_id = await open_auction(http, 2_000)
            opened = await bidder.opened(auction_id)
            bid = bidder.bid(opened)
            assert reason(await bidder.commit(auction_id, bid)) == "accepted"
            await bidder.push("reveal_open", auction_id)
            assert reason(await bidder.reveal(auction_id, bid)) == "accepted"
        # Gone before the end (the reveal window runs on after its reveal).
        for _ in range(100):
            view = (await http.get(f"/v1/auctions/{auction_id}")).json()
            if view["status"] != "open":
                break
            await asyncio.sleep(0.1)
        assert view["status"] == "finalized" and view["outcome"] == "filled", view
    async with RawBidder(server.ws_url, "mm-0", key) as back:
        closed = await back.push("auction_closed", auction_id)
    assert closed["outcome"] == "filled" and closed["revealed"] is True
    assert closed["filled"] == pytest.approx(opened.amount)
    async with RawBidder(server.ws_url, "mm-0", key) as again:
        await asyncio.sleep(0.5)  # what a login is sent comes at once
        assert [p for p in again.pushes if p["type"] == "auction_closed"] == []
