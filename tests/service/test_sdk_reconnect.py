"""The bidder SDK across a lost connection, a lost write and the end of its registration
(the second SDK audit): a bid committed before a reconnect is revealed on the new
connection; a commit or reveal answered ``store_unavailable`` is sent again; a removed
bidder's run ends with :class:`BidderRemovedError` carrying the report; a refused commit
is not revealed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from phantom_auction.client import (
    BidderClient,
    BidderLoginError,
    BidderRemovedError,
    ServerUnreachableError,
    _Round,
)
from phantom_auction.service.store import BidEvent, MemoryStore
from phantom_auction.simulation.strategies import create_strategy

from ..engine.engine_support import announcement
from .service_harness import free_port, order
from .test_audit_fixes import add_bidder, serving

pytestmark = pytest.mark.anyio


async def _until(condition: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


def _acks(client: BidderClient, kind: str) -> list[tuple[str, str | None]]:
    return [(a.status, a.reason) for a in client.report().acks if a.kind == kind]


async def _one_auction_with_a_drop(drop_after_commit_ack: bool) -> tuple[Any, BidderClient]:
    """One auction with the SDK bidder ``mm-1``, whose connection is aborted after its
    commit was accepted (or right after the commit was written, its ack then lost)."""
    store = MemoryStore()
    async with serving(store) as server:
        key = await add_bidder(store, "mm-1")
        client = BidderClient(server.url, "mm-1", key, honour_timing=False)
        real_send = BidderClient._send
        dropped: list[Any] = []

        def send(self: BidderClient, ws: Any, ref: int, kind: str, aid: str, data: bytes) -> bool:
            sent = real_send(self, ws, ref, kind, aid, data)
            if kind == "commit" and not drop_after_commit_ack and not dropped:
                dropped.append(ws)
                ws.transport.abort()  # the commit is on its way, its ack will not come
            return sent

        client._send = send.__get__(client)  # type: ignore[method-assign]
        stop = asyncio.Event()
        run = asyncio.create_task(
            client.arun(create_strategy("truthful"), stop=stop, private_value=2100.0)
        )
        try:
            await asyncio.wait_for(client.connected.wait(), 30)
            first = client._ws
            async with server.http() as http:
                post = asyncio.create_task(http.post("/v1/auctions", json=order(duration_ms=1500)))
                if drop_after_commit_ack:
                    await _until(lambda: ("accepted", None) in _acks(client, "commit"))
                    assert first is not None
                    first.transport.abort()  # as `ss -K` did: the server stays up
                await _until(lambda: client._ws is not None and client._ws is not first)
                made = await asyncio.wait_for(post, 30)
                assert made.status_code == 200, made.text
                await _until(lambda: bool(_acks(client, "reveal")))
        finally:
            stop.set()
            report = await asyncio.wait_for(run, 30)
    assert report.auctions_seen == 1
    return made.json()["result"], client


@pytest.mark.parametrize("ack_lost", [False, True], ids=["commit-acked", "commit-ack-lost"])
async def test_a_bid_committed_before_a_reconnect_is_revealed_on_the_new_connection(
    ack_lost: bool,
) -> None:
    result, client = await _one_auction_with_a_drop(drop_after_commit_ack=not ack_lost)
    assert result["unrevealed"] == []
    assert result["num_participants"] - result["num_phantom_bids"] == 1
    assert ("accepted", None) in _acks(client, "reveal")
    report = client.report()
    assert report.reveals_sent >= 1
    if ack_lost:  # the commit sent again: refused as already known, the first stands
        assert set(report.rejected) <= {"duplicate_commit", "replayed_nonce"}
    else:
        assert report.rejected == {}


class _LosesOneWriteOfEach(MemoryStore):
    """A store that cannot write the first commit and the first reveal it is given (each
    submission of them, as the group commit retries a failed batch one by one)."""

    def __init__(self) -> None:
        super().__init__()
        self.poisoned: dict[str, int] = {}

    async def apply(self, writes: Sequence[Any]) -> None:
        for write in writes:
            if isinstance(write, BidEvent):
                first = self.poisoned.setdefault(write.kind, write.received_at_us)
                if write.received_at_us == first:
                    raise OSError("disk full")
        await super().apply(writes)


async def test_a_message_answered_store_unavailable_is_sent_again() -> None:
    store = _LosesOneWriteOfEach()
    async with serving(store) as server:
        key = await add_bidder(store, "mm-1")
        client = BidderClient(server.url, "mm-1", key, honour_timing=False)
        stop = asyncio.Event()
        run = asyncio.create_task(
            client.arun(create_strategy("truthful"), stop=stop, private_value=2100.0)
        )
        try:
            await asyncio.wait_for(client.connected.wait(), 30)
            async with server.http() as http:
                made = await http.post("/v1/auctions", json=order(duration_ms=1500))
                assert made.status_code == 200, made.text
            await _until(lambda: ("accepted", None) in _acks(client, "reveal"))
        finally:
            stop.set()
            report = await asyncio.wait_for(run, 30)
    result = made.json()["result"]
    assert result["unrevealed"] == []
    assert result["num_participants"] - result["num_phantom_bids"] == 1
    assert report.rejected == {"store_unavailable": 2}
    assert _acks(client, "commit") == [("rejected", "store_unavailable"), ("accepted", None)]
    assert _acks(client, "reveal") == [("rejected", "store_unavailable"), ("accepted", None)]
    assert report.commits_sent == report.reveals_sent == 2


async def test_a_removed_bidder_ends_its_run_with_the_reason_and_its_report() -> None:
    store = MemoryStore()
    async with serving(store) as server:
        key = await add_bidder(store, "mm-1")
        client = BidderClient(server.url, "mm-1", key, honour_timing=False)
        run = asyncio.create_task(client.arun(create_strategy("truthful"), private_value=2100.0))
        await asyncio.wait_for(client.connected.wait(), 30)
        assert await store.remove_bidder("mm-1")
        with pytest.raises(BidderRemovedError) as raised:
            await asyncio.wait_for(run, 30)
    assert raised.value.reason == "bidder_removed"
    assert raised.value.report is not None and raised.value.report.bidder_id == "mm-1"


class _Taking:
    outbox: Any = ()

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send_now(self, data: bytes) -> bool:
        self.sent.append(data)
        return True


@pytest.mark.parametrize("verdict", ["late", "accepted", None])
async def test_a_reveal_does_not_wait_for_its_commits_ack_and_a_refused_commit_is_not_revealed(
    verdict: str | None,
) -> None:
    """The ack is the server's durable write: in a 20 ms reveal window a slow one must not
    hold the reveal back (waiting for it cost 660 reveals in one benchmark step), but a
    commit already refused is not revealed."""
    client = BidderClient("http://127.0.0.1:1", "mm", "11" * 32)
    ws = client._ws = _Taking()  # type: ignore[assignment]
    past = announcement(datetime.now(UTC), -50, 400, amount=10.0, max_volume=10.0)
    round_ = _Round(past, bid=object(), commit="sent", reveal=(7, b"the reveal"))  # type: ignore[arg-type]
    client._rounds[past.auction_id] = round_
    ack = {"type": "ack", "ref": 6, "kind": "commit", "auction_id": past.auction_id}
    if verdict == "late":
        client._on_ack({**ack, "status": "rejected", "reason": verdict})
    elif verdict == "accepted":
        client._on_ack({**ack, "status": "accepted", "reason": None})
    client._reveal_due(round_)  # due now
    if verdict == "late":
        assert ws.sent == [] and round_.commit == "rejected"
    else:
        assert ws.sent == [b"the reveal"] and round_.reveal_sent


async def test_a_url_the_websocket_can_never_open_at_is_an_error_not_a_retry_forever() -> None:
    """The audit: a wrong path (the service refuses the upgrade) was retried forever,
    logged at INFO only. A 4xx answer other than 408/429 now ends the run with
    BidderLoginError."""
    async with serving(MemoryStore()) as server:
        client = BidderClient(server.url + "/v1/wrong/path", "mm", "11" * 32)
        started = time.monotonic()
        with pytest.raises(BidderLoginError) as refused:
            await client.arun(lambda *args: None, duration_s=10)
        assert refused.value.reason == "handshake_refused", refused.value
        assert time.monotonic() - started < 5


async def test_a_server_that_stays_unreachable_is_warned_about_and_can_end_the_run(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening (connection refused) looks like a server restarting, so it is
    retried; but after UNREACHABLE_WARN_S without a session the client warns, and with
    give_up_after_s the run ends with ServerUnreachableError and its report."""
    import phantom_auction.client as sdk

    monkeypatch.setattr(sdk, "UNREACHABLE_WARN_S", 0.3)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    caplog.set_level("INFO", logger="phantom_auction.client")
    client = BidderClient(url, "mm", "11" * 32, give_up_after_s=1.5)
    started = time.monotonic()
    with pytest.raises(ServerUnreachableError) as gone:
        await client.arun(lambda *args: None, duration_s=30)
    took = time.monotonic() - started
    assert 1.5 <= took < 5, took
    assert gone.value.down_s >= 1.5 and "ConnectionRefused" in gone.value.last_error
    assert gone.value.report is not None and gone.value.report.acks == ()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("still trying" in m and url.replace("http", "ws") in m for m in warned), warned
    # Without give_up_after_s the same run lasts its duration, warning on the way.
    caplog.clear()
    patient = BidderClient(url, "mm", "11" * 32)
    report = await patient.arun(lambda *args: None, duration_s=1.0)
    assert report.acks == ()
    assert any("still trying" in r.getMessage() for r in caplog.records)
    with pytest.raises(ValueError, match="give_up_after_s=0"):
        BidderClient(url, "mm", "11" * 32, give_up_after_s=0)
