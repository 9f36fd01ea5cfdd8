"""The bidder SDK's short path (``client._Connection``): whole text messages handed over as
they are parsed and sent without ``send``'s coroutine, against a real server."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from phantom_auction.client import BidderClient, _Connection, _Round
from phantom_auction.simulation.strategies import create_strategy

from ..engine.engine_support import announcement
from .service_harness import ServerProcess

pytestmark = pytest.mark.anyio

AUCTIONS = 4


async def test_sdk_bidders_take_part_in_every_auction_over_the_short_path(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory({})
    token = await server.add_client("settlement")
    names = ["mm-0", "mm-1", "mm-2"]
    keys = {name: await server.add_bidder(name) for name in names}
    # Every ack listed, the default's latest 10,000, and only the latest 3.
    keep: list[int | None] = [None, 10_000, 3]
    clients = [
        BidderClient(server.url, name, keys[name], honour_timing=False, keep_acks=k)
        for name, k in zip(names, keep, strict=True)
    ]
    handed: list[int] = []
    real = _Connection.process_event

    def process_event(self: _Connection, event: Any) -> None:
        before = self.on_text
        if before is not None:

            def counted(data: bytes) -> None:
                handed.append(len(data))
                before(data)

            self.on_text = counted
        try:
            real(self, event)
        finally:
            if before is not None:
                self.on_text = before

    _Connection.process_event = process_event  # type: ignore[method-assign]
    try:
        # A strategy that always bids: each bidder commits and reveals in every auction.
        runs = [
            asyncio.create_task(
                c.arun(create_strategy("truthful"), max_auctions=AUCTIONS, private_value=2100.0)
            )
            for c in clients
        ]
        await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 30)
        assert all(isinstance(c._ws, _Connection) for c in clients)
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        ) as http:
            opened = []
            for _ in range(AUCTIONS):
                order = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}
                # 1 s auctions: every commit and reveal must be accepted, and a loaded
                # machine can miss the default 100 ms auction's 20 ms reveal window.
                order["duration_ms"] = 1000
                r = await http.post("/v1/auctions", json=order)
                assert r.status_code == 200, r.text
                assert r.json()["result"]["num_participants"] >= len(names)
                opened.append(r.json()["auction_id"])
        reports = await asyncio.wait_for(asyncio.gather(*runs), 30)
    finally:
        _Connection.process_event = real  # type: ignore[method-assign]
    for report in reports:
        assert report.auctions_seen == AUCTIONS
        assert report.commits_sent == report.reveals_sent == AUCTIONS
        assert report.accepted == 2 * AUCTIONS and report.rejected == {}
        assert report.unanswered == 0 and report.unsent == 0
    # The counts cover every ack; the list holds the latest keep_acks, in order.
    every = reports[0].acks
    assert [(a.auction_id, a.kind) for a in every] == [
        (auction_id, kind) for auction_id in opened for kind in ("commit", "reveal")
    ]
    assert len(reports[1].acks) == 2 * AUCTIONS
    latest = reports[2].acks
    assert [(a.auction_id, a.kind) for a in latest] == [(a.auction_id, a.kind) for a in every[-3:]]
    # Announcements, acks, reveal_open and auction_closed came by the short path.
    assert len(handed) >= len(names) * AUCTIONS * 4


async def test_request_status_answers_with_the_bidders_own_record(server_factory: Any) -> None:
    """``BidderClient.request_status`` over the open connection: the server's ``status``
    answer (the bidder's penalty record), not the ``welcome`` it held before; ``None``
    before connecting."""
    server: ServerProcess = server_factory({})
    key = await server.add_bidder("mm-0")
    client = BidderClient(server.url, "mm-0", key, honour_timing=False)
    assert await client.request_status(timeout=0.1) is None
    stop = asyncio.Event()
    run = asyncio.create_task(client.arun(create_strategy("truthful"), stop=stop))
    try:
        await asyncio.wait_for(client.connected.wait(), 30)
        welcome = client.status
        status = await client.request_status(timeout=10.0)
        assert status is not None and status is not welcome
        assert status["type"] == "status"
        assert status["bidder_id"] == "mm-0"
        assert status["blocked"] is False and status["block_count"] == 0
        assert status["no_reveal_rate"] == 0.0
    finally:
        stop.set()
        await asyncio.wait_for(run, 30)


def test_keep_acks_must_be_a_count_or_none() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with pytest.raises(ValueError, match="keep_acks=-1"):
        BidderClient("http://127.0.0.1:1", "mm-0", Ed25519PrivateKey.generate(), keep_acks=-1)


class _Refusing:
    """A connection that takes no message at once (``send_now`` refuses) until told to."""

    def __init__(self, closed: bool = False) -> None:
        self.outbox: deque[tuple[int, bytes]] = deque()
        self.sent: list[bytes] = []
        self.take_now = False
        self.closed = closed

    def send_now(self, data: bytes) -> bool:
        if self.take_now:
            self.sent.append(data)
        return self.take_now

    async def send(self, text: str) -> None:
        await asyncio.sleep(0.01)
        if self.closed:
            raise ConnectionClosed(None, None)
        self.sent.append(text.encode())


async def test_a_message_the_connection_cannot_take_at_once_keeps_its_place() -> None:
    """Messages behind one that waits for ``send`` wait too (commits leave in nonce
    order), even once the connection would take them at once; a lost connection counts
    the waiting ones as unsent."""
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)
    ws = _Refusing()
    client._send(ws, 1, "commit", "a1", b"first")  # type: ignore[arg-type]
    ws.take_now = True
    client._send(ws, 2, "commit", "a2", b"second")  # type: ignore[arg-type]
    client._send(ws, 3, "reveal", "a1", b"third")  # type: ignore[arg-type]
    assert ws.sent == []
    await asyncio.wait_for(asyncio.gather(*client._tasks), 5)
    assert ws.sent == [b"first", b"second", b"third"] and not ws.outbox
    assert set(client._pending) == {1, 2, 3}  # waiting for their acks

    gone = _Refusing(closed=True)
    client._send(gone, 4, "commit", "a3", b"lost")  # type: ignore[arg-type]
    client._send(gone, 5, "reveal", "a3", b"lost too")  # type: ignore[arg-type]
    await asyncio.wait_for(asyncio.gather(*client._tasks), 5)
    assert client.report().unsent == 2 and set(client._pending) == {1, 2, 3}


async def test_a_reveal_due_goes_out_with_the_next_message_read_not_after_the_turn() -> None:
    """A loop turn that outlasts the reveal's time (here a blocking sleep, as a burst of
    messages to read): the next message read sends the due reveal first, once; its timer
    then finds nothing to send."""
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)
    ws = _Refusing()
    ws.take_now = True
    # Far enough ahead that a loaded machine still arms the timer below.
    opened = announcement(datetime.now(UTC), 200, 400, amount=10.0, max_volume=10.0)
    client._ws = ws  # type: ignore[assignment]
    round_ = _Round(opened, bid=object(), commit="accepted", reveal=(7, b"the reveal"))  # type: ignore[arg-type]
    client._reveal_due(round_)
    assert ws.sent == [] and round_.timer is not None  # armed, not yet due
    round_.timer.cancel()  # as a timer that woke early, and re-arms: still one entry
    client._reveal_due(round_)
    assert round_.timer is not None and len(client._due) == 1
    time.sleep(0.25)  # the turn goes on past the window's opening: no timer can run
    client._dispatch(None, {"type": "welcome"})  # type: ignore[arg-type]
    assert ws.sent == [b"the reveal"] and round_.timer is None
    await asyncio.sleep(0.01)  # the loop turns: the cancelled timer sends nothing more
    assert ws.sent == [b"the reveal"] and client.report().reveals_sent == 1
    assert not client._due


async def test_a_strategy_that_fails_loses_its_auction_not_the_run(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A strategy raising in one auction: logged, that auction skipped, the next ones bid
    as usual; half the messages go by ``send`` (refused by the short path) and keep their
    order, so that no commit is refused for its nonce."""
    server: ServerProcess = server_factory({})
    token = await server.add_client("settlement")
    key = await server.add_bidder("mm-0")
    truthful = create_strategy("truthful")
    calls = 0

    def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ZeroDivisionError("the strategy's own bug")
        return truthful.generate_bid(*args, **kwargs)

    real_send_now = _Connection.send_now
    turns = iter(range(1_000_000))
    monkeypatch.setattr(
        _Connection,
        "send_now",
        lambda self, data: next(turns) % 2 == 1 and real_send_now(self, data),
    )
    client = BidderClient(server.url, "mm-0", key, honour_timing=False)
    run = asyncio.create_task(client.arun(flaky, max_auctions=AUCTIONS, private_value=2100.0))
    await asyncio.wait_for(client.connected.wait(), 30)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as http:
        # 1 s auctions: what is tested is the order of the sends, not a loaded machine's
        # speed (in 100 ms ones a commit could miss its window when the cores were full).
        order = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}
        order["duration_ms"] = 1000
        # Opened together: the commits of consecutive auctions leave back to back.
        replies = await asyncio.gather(
            *(http.post("/v1/auctions", json=order) for _ in range(AUCTIONS))
        )
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    report = await asyncio.wait_for(run, 30)
    assert report.auctions_seen == AUCTIONS
    assert report.commits_sent == report.reveals_sent == AUCTIONS - 1
    assert report.accepted == 2 * (AUCTIONS - 1) and report.rejected == {}
    assert report.unanswered == 0 and report.unsent == 0
    assert "the strategy's own bug" in caplog.text


async def test_a_bidder_reconnects_after_a_server_restart_and_bids_on(
    server_factory: Any,
) -> None:
    """The server killed between two auctions and started again on the same port and
    data: the SDK reconnects by itself and commits and reveals in the next auction, with
    nothing unsent and no nonce refused."""
    server: ServerProcess = server_factory({})
    token = await server.add_client("settlement")
    key = await server.add_bidder("mm-0")
    client = BidderClient(server.url, "mm-0", key, honour_timing=False)
    stop = asyncio.Event()
    run = asyncio.create_task(client.arun(create_strategy("truthful"), stop=stop))

    async def one_auction() -> dict[str, Any]:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        ) as http:
            order = {"token_in": 1, "token_out": 2, "amount": 10.0, "baseline_price": 2000.0}
            # 1 s auctions: the bid must be taken in each (a loaded machine can miss the
            # default 100 ms auction's 20 ms reveal window).
            order["duration_ms"] = 1000
            r = await http.post("/v1/auctions", json=order)
            assert r.status_code == 200, r.text
            result: dict[str, Any] = r.json()["result"]
            return result

    try:
        await asyncio.wait_for(client.connected.wait(), 30)
        first = await one_auction()
        port = server.port
        server.kill()
        for _ in range(200):  # the client notices the dropped connection
            if not client.connected.is_set():
                break
            await asyncio.sleep(0.05)
        assert not client.connected.is_set()
        await asyncio.to_thread(server.start, 30.0, port)
        await asyncio.wait_for(client.connected.wait(), 30)
        second = await one_auction()
    finally:
        stop.set()
        report = await asyncio.wait_for(run, 30)
    for result in (first, second):  # the bidder's revealed bid counted in each
        assert result["num_participants"] - result["num_phantom_bids"] == 1
        assert result["unrevealed"] == []
    assert report.auctions_seen == 2
    assert report.commits_sent == report.reveals_sent == 2
    assert report.accepted == 4 and report.rejected == {}
    assert report.unanswered == 0 and report.unsent == 0
