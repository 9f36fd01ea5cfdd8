"""The service audit's findings (removed bidders' sockets, field names, bad JSON over HTTP,
strict ``ref``), each checked where it was found: over the wire, on an in-process server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from phantom_auction.client import signed_headers
from phantom_auction.config import load_config
from phantom_auction.engine.clock import SystemClock
from phantom_auction.service.auth import (
    generate_keypair,
    hash_token,
    load_private_key,
    login_signing_bytes,
    new_token,
    sign,
)
from phantom_auction.service.house import BidderSession
from phantom_auction.service.house.sessions import Identities
from phantom_auction.service.metrics import ServiceMetrics
from phantom_auction.service.store import BidderRecord, MemoryStore, SqlStore, Store

from .service_harness import OnLoopback, RawBidder, free_port, order, reason

pytestmark = pytest.mark.anyio

#: Seconds between the registration re-reads in these tests (30 s would be a slow test).
RECHECK_S = 0.2
MAX_SAFE = 2**53 - 1


class Server(OnLoopback):
    """The service app under uvicorn in this process (so that the test can shorten the
    registration re-read period), on a free port of 127.0.0.1."""

    def __init__(self, app: Any, port: int, token: str) -> None:
        self.app = app
        self.port = port
        self.token = token

    def http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30.0)


@contextlib.asynccontextmanager
async def serving(
    store: Store, ws: str = "direct", env: dict[str, str] | None = None
) -> AsyncIterator[Server]:
    """Serve ``store`` with ``ws`` = ``direct`` (what ``serve`` runs: the fast path) or
    ``sansio`` (uvicorn's own protocol: the plain ASGI receive / send path), configured
    by the defaults and ``env`` (``AUCTION_*`` variables)."""
    import uvicorn

    from phantom_auction.service.app import create_app
    from phantom_auction.service.ws_fastpath import DirectWebSocketProtocol

    token = new_token()
    app = create_app(load_config(env=env or {}), store=store)
    app.state.house.identities.recheck_s = RECHECK_S
    protocol: Any = DirectWebSocketProtocol if ws == "direct" else "websockets-sansio"
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws=protocol,
            ws_per_message_deflate=False,
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
    )
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        assert server.started, "the in-process server did not start"
        await store.add_client("audit", hash_token(token))
        yield Server(app, port, token)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def add_bidder(store: Store, bidder_id: str) -> str:
    private, public = generate_keypair()
    await store.add_bidder(bidder_id, bytes.fromhex(public))
    return private


async def login(ws_url: str, bidder_id: str, private: str) -> ClientConnection:
    """A raw logged-in WebSocket (the test reads every frame and the close itself)."""
    ws = await connect(ws_url)
    challenge = json.loads(await ws.recv())
    signed = login_signing_bytes(bidder_id, challenge["challenge"])
    signature = sign(load_private_key(private), signed)
    await ws.send(json.dumps({"type": "login", "bidder_id": bidder_id, "signature": signature}))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws


async def until_closed(ws: ClientConnection, timeout: float) -> list[dict[str, Any]]:
    """Every message until the server closes ``ws`` (TimeoutError if it does not)."""
    received: list[dict[str, Any]] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                received.append(json.loads(text))

    await asyncio.wait_for(read(), timeout)
    return received


# ---------------------------------------------------------------- 1. removed bidders


@pytest.mark.parametrize("ws", ["direct", "sansio"])
async def test_a_removed_bidders_websocket_is_closed_within_the_period(
    tmp_path: Path, ws: str
) -> None:
    """``bidders remove`` closes the bidder's open WebSocket (1008 ``bidder_removed``)
    within the re-read period; its commit before then was taken as usual, the other
    bidders keep their sockets, and its signed HTTP requests are refused."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    store = SqlStore(url)
    async with serving(store, ws) as server:
        gone_key = await add_bidder(store, "mm-gone")
        keep_key = await add_bidder(store, "mm-keep")
        gone = await login(server.ws_url, "mm-gone", gone_key)
        async with server.http() as http, RawBidder(server.ws_url, "mm-keep", keep_key) as keep:
            made = await http.post(
                "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=60_000)
            )
            aid = made.json()["auction_id"]
            # Before the removal the bidder bids like any other: its commit is taken.
            signer = RawBidder(server.ws_url, "mm-gone", gone_key)
            opened = await keep.opened(aid)
            while json.loads(await gone.recv())["type"] != "auction_opened":
                pass
            commit = {**signer.commit_message(aid, signer.bid(opened)), "ref": 1}
            await gone.send(json.dumps(commit))
            assert json.loads(await gone.recv())["status"] == "accepted"
            # `bidders remove`, from another process: a second connection to the database.
            other = SqlStore(url)
            await other.start()
            try:
                assert await other.remove_bidder("mm-gone")
            finally:
                await other.close()
            received = await until_closed(gone, timeout=10 * RECHECK_S + 5)
            assert gone.close_code == 1008 and gone.close_reason == "bidder_removed"
            error = received[-1]
            assert (error["type"], error["reason"]) == ("error", "bidder_removed")
            assert "mm-gone" in error["detail"]
            # The other bidder is still connected and still gets the auctions.
            second = await http.post(
                "/v1/auctions", params={"wait": "false"}, json=order(duration_ms=60_000)
            )
            await keep.opened(second.json()["auction_id"])
            # The server detaches the session as the socket ends (10 s for a loaded machine).
            for _ in range(500):
                health = (await http.get("/healthz")).json()
                if health["connected_bidders"] == 1:
                    break
                await asyncio.sleep(0.02)
            assert health["connected_bidders"] == 1
            # Its signed HTTP requests are refused too, and its stored commit stays.
            headers = signed_headers("mm-gone", gone_key, "GET", "/v1/bidders/me")
            assert (await http.get("/v1/bidders/me", headers=headers)).status_code == 401
        events = await store.events(aid)
        assert [(e.bidder_id, e.kind, e.accepted) for e in events] == [("mm-gone", "commit", True)]


async def test_a_bidder_whose_key_was_replaced_is_closed_and_logs_in_with_the_new_one() -> None:
    """Removed then added again with another key: the socket logged in with the old
    key is closed (1008 ``bidder_key_changed``); the new key logs in."""
    store = MemoryStore()
    async with serving(store) as server:
        old_key = await add_bidder(store, "mm-rot")
        ws = await login(server.ws_url, "mm-rot", old_key)
        await store.remove_bidder("mm-rot")
        new_key = await add_bidder(store, "mm-rot")
        received = await until_closed(ws, timeout=10 * RECHECK_S + 5)
        assert ws.close_code == 1008 and ws.close_reason == "bidder_key_changed"
        assert (received[-1]["type"], received[-1]["reason"]) == ("error", "bidder_key_changed")
        again = await login(server.ws_url, "mm-rot", new_key)
        await asyncio.sleep(3 * RECHECK_S)  # a few re-reads: the new session stays
        await again.send(json.dumps({"type": "status", "ref": "s"}))
        assert json.loads(await again.recv())["ref"] == "s"
        await again.close()


class CountingStore(MemoryStore):
    """Counts registration reads; ``hold`` (when set) holds :meth:`bidders` until released."""

    def __init__(self) -> None:
        super().__init__()
        self.list_reads = 0
        self.single_reads = 0
        self.hold: asyncio.Event | None = None

    async def bidder(self, bidder_id: str) -> BidderRecord | None:
        self.single_reads += 1
        return await super().bidder(bidder_id)

    async def bidders(self) -> list[BidderRecord]:
        self.list_reads += 1
        listed = await super().bidders()
        if self.hold is not None:
            await self.hold.wait()
        return listed


async def test_registrations_are_read_once_per_period_and_only_while_bidders_are_connected() -> (
    None
):
    store = CountingStore()
    identities = Identities(load_config(env={}), store, ServiceMetrics(), SystemClock())
    identities.recheck_s = 0.05
    sessions = []
    for name in ("a", "b", "c"):
        await store.add_bidder(name, bytes(32))
        state = await identities.bidder_state(name)
        assert state is not None
        session = BidderSession(name)
        identities.attach(state, session)
        sessions.append((state, session))
    singles = store.single_reads
    for _ in range(200):  # messages need no store read
        assert identities.cached_bidder_state("a") is not None
    await asyncio.sleep(0.5)
    # One read of every registration per period (not one per bidder or per message).
    assert 3 <= store.list_reads <= 12 and store.single_reads == singles
    assert not any(session.closed for _, session in sessions)
    for state, session in sessions:
        identities.detach(state, session)
    await asyncio.sleep(0.1)
    reads = store.list_reads
    await asyncio.sleep(0.3)
    assert store.list_reads == reads  # nobody connected: no re-reads, the task has ended
    assert identities.sweeping is False


async def test_a_bidder_loaded_during_a_reread_is_not_taken_for_removed() -> None:
    store = CountingStore()
    identities = Identities(load_config(env={}), store, ServiceMetrics(), SystemClock())
    await store.add_bidder("old", bytes(32))
    old = await identities.bidder_state("old")
    assert old is not None
    store.hold = asyncio.Event()
    reread = asyncio.get_running_loop().create_task(identities.recheck())
    await asyncio.sleep(0.05)  # the read has listed the registrations, without "new"
    await store.add_bidder("new", bytes(32))
    new = await identities.bidder_state("new")
    assert new is not None
    session = BidderSession("new")
    identities.attach(new, session)
    store.hold.set()
    await reread
    assert identities.bidders.get("new") is new and not session.closed
    identities.detach(new, session)


# ---------------------------------------------------------------- 2. 3. 4. field names


async def test_a_too_short_duration_names_duration_ms_and_a_close_deadline_names_deadline() -> None:
    async with serving(MemoryStore()) as server, server.http() as http:
        r = await http.post("/v1/auctions", json=order(duration_ms=4))
        body = r.json()
        assert (r.status_code, body["reason"], body["field"]) == (
            422,
            "deadline_too_close",
            "duration_ms",
        )
        assert "duration_ms=4" in body["detail"], body
        soon = (datetime.now(UTC) + timedelta(milliseconds=1)).isoformat()
        r = await http.post("/v1/auctions", json=order(deadline=soon))
        body = r.json()
        assert (r.status_code, body["reason"], body["field"]) == (
            422,
            "deadline_too_close",
            "deadline",
        )
        assert "deadline=" in body["detail"], body


BAD_JSON = b'{"token_in": 1, "token_out": 2, "amount": 10,, "baseline_price": 2000}'


async def test_bad_json_over_http_is_answered_as_over_the_websocket() -> None:
    store = MemoryStore()
    async with serving(store) as server, server.http() as http:
        key = await add_bidder(store, "mm-json")
        r = await http.post(
            "/v1/auctions", content=BAD_JSON, headers={"Content-Type": "application/json"}
        )
        body = r.json()
        assert (r.status_code, body["reason"], body["field"]) == (422, "malformed", "body")
        assert body["detail"].startswith("body: Invalid JSON: "), body
        assert "line 1 column 46" in body["detail"], body
        assert '(got \'{"token_in": 1' in body["detail"], body
        # The same text over the WebSocket gets the same detail.
        async with RawBidder(server.ws_url, "mm-json", key) as bidder:
            ack = await bidder.send_text(BAD_JSON.decode())
        assert (ack["reason"], ack["detail"]) == ("malformed", body["detail"])
        # Several lines, and a long body: the position and a short excerpt.
        long = b'{\n  "token_in": 1,\n  "pad": "' + b"x" * 2000 + b'"\n  oops}'
        r = await http.post(
            "/v1/auctions", content=long, headers={"Content-Type": "application/json"}
        )
        body = r.json()
        assert (r.status_code, body["field"]) == (422, "body")
        assert "at line 4 column 3" in body["detail"] and len(body["detail"]) < 250, body
        # A bidder's endpoint too (the body is read before the signature is checked).
        r = await http.post(
            "/v1/auctions/" + "0" * 32 + "/commit",
            content=b"{nope",
            headers={"Content-Type": "application/json"},
        )
        assert (r.status_code, r.json()["field"]) == (422, "body")
        assert "Invalid JSON" in r.json()["detail"]


@pytest.mark.parametrize(
    ("ref", "shown"),
    [
        ("true", "True"),
        ("false", "False"),
        ("18446744073709551617", "18446744073709551617"),
        (str(MAX_SAFE + 1), str(MAX_SAFE + 1)),
        (str(-MAX_SAFE - 1), str(-MAX_SAFE - 1)),
        ("1.0", "1.0"),
        ('"' + "r" * 129 + '"', "'rrrr"),
        ("[1]", "[1]"),
        ("{}", "{}"),
    ],
)
async def test_a_bad_ref_is_malformed_and_never_echoed(ref: str, shown: str) -> None:
    """``ref`` is a string of at most 128 characters or an integer within ±(2^53 - 1):
    ``true`` is not coerced to 1, and nothing beyond the safe range is echoed."""
    store = MemoryStore()
    async with serving(store) as server:
        key = await add_bidder(store, "mm-ref")
        async with RawBidder(server.ws_url, "mm-ref", key) as bidder:
            reveal = (
                f'{{"type": "reveal", "ref": {ref}, "auction_id": "{"0" * 32}", '
                '"token_pair": [1, 2], "improved_price": 2001.0, "volume": 1.0, '
                f'"priority_fee": 0.0, "nonce": 1, "salt": "{"00" * 32}"}}'
            )
            for text in (f'{{"type": "status", "ref": {ref}}}', reveal):
                ack = await bidder.send_text(text)
                assert (ack["type"], ack["status"], ack["reason"]) == (
                    "ack",
                    "rejected",
                    "malformed",
                ), ack
                assert ack["field"] == "ref" and ack["ref"] is None, ack
                assert ack["detail"].startswith("ref: "), ack
                assert f"(got {shown}" in ack["detail"], ack


async def test_good_refs_are_echoed_exactly() -> None:
    store = MemoryStore()
    async with serving(store) as server:
        key = await add_bidder(store, "mm-ref2")
        async with RawBidder(server.ws_url, "mm-ref2", key) as bidder:
            assert bidder.ws is not None
            for ref in (MAX_SAFE, -MAX_SAFE, 0, "r" * 128, "", "c-7"):
                await bidder.ws.send(json.dumps({"type": "status", "ref": ref}))
                for _ in range(1000):  # up to 10 s: a loaded machine's answer can take 1 s
                    if bidder.pushes and bidder.pushes[-1].get("type") == "status":
                        break
                    await asyncio.sleep(0.01)
                status = bidder.pushes.pop()
                assert (status["type"], status["ref"]) == ("status", ref)
            # A malformed message whose ref is good still echoes it (and the ack stays
            # within the safe range).
            ack = await bidder.send({"type": "reveal", "auction_id": "0" * 32})
            assert (ack["reason"], ack["field"]) != ("malformed", "ref")
            assert reason(ack) == "malformed"


def test_ref_is_strict_in_the_schema() -> None:
    from pydantic import ValidationError

    from phantom_auction.wire import bidder_message_adapter

    assert bidder_message_adapter.validate_json('{"type": "status", "ref": 7}').ref == 7
    assert bidder_message_adapter.validate_json('{"type": "status", "ref": "7"}').ref == "7"
    assert bidder_message_adapter.validate_json('{"type": "status"}').ref is None
    assert bidder_message_adapter.validate_json('{"type": "status", "ref": null}').ref is None
    for bad in ("true", "1.5", "7.0", str(MAX_SAFE + 1), '"' + "x" * 129 + '"'):
        with pytest.raises(ValidationError) as caught:
            bidder_message_adapter.validate_json(f'{{"type": "status", "ref": {bad}}}')
        assert [tuple(e["loc"]) for e in caught.value.errors()] == [("status", "ref")]
    with pytest.raises(ValidationError):
        bidder_message_adapter.validate_python({"type": "status", "ref": True})


def test_json_that_only_json_loads_refuses_is_still_named_with_its_position() -> None:
    """Should ``json.loads`` refuse a body pydantic reads, its own error is given, with
    the line and column of its character offset (never the offset as a field)."""
    from phantom_auction.service.bidder_socket import invalid_json_errors, malformed

    field, detail = malformed(invalid_json_errors('{"a": 1,\n  "b": 2}', "Odd thing", 12))
    assert field == "body"
    assert detail.startswith('body: Invalid JSON: Odd thing at line 2 column 4 (got \'{"a"')


async def test_stopping_the_identities_cancels_the_reread() -> None:
    store = MemoryStore()
    identities = Identities(load_config(env={}), store, ServiceMetrics(), SystemClock())
    await store.add_bidder("x", bytes(32))
    state = await identities.bidder_state("x")
    assert state is not None
    identities.attach(state, BidderSession("x"))
    assert identities.sweeping
    await identities.close()
    assert not identities.sweeping
