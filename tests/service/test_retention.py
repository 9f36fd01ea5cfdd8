"""``service.retention_days``: the server prunes its own store (the loop, and a real
server doing it while it serves)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from phantom_auction.service.metrics import ServiceMetrics
from phantom_auction.service.retention import Retention, check_every_s
from phantom_auction.service.store import AuctionFinished, MemoryStore, Store

from .service_harness import (
    RawBidder,
    ServerProcess,
    auction_record,
    commit_event,
    running_and_ended,
)

pytestmark = pytest.mark.anyio

DAY_US = 86_400 * 1_000_000


class FixedClock:
    """A clock that reads ``now_us`` (unix microseconds)."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_us / 1e6, UTC)


def test_it_checks_every_minute_or_a_quarter_of_a_short_retention() -> None:
    assert check_every_s(30.0) == 60.0
    assert check_every_s(2 / 1440) == 30.0  # two minutes
    assert check_every_s(1 / 86_400) == 1.0  # one second: never more often than 1 s


async def _ended(store: Store, ends_us: dict[str, int | None]) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.add_bidder("mm-1", bytes(32))
    await store.apply([auction_record(a, client.client_id) for a in ends_us])
    await store.apply([commit_event(a, "mm-1", n) for n, a in enumerate(ends_us)])
    await store.apply(
        [AuctionFinished(a, "aborted", "aborted", None, None, t) for a, t in ends_us.items() if t]
    )


async def test_a_prune_takes_what_passed_the_retention_and_counts_it() -> None:
    store = MemoryStore()
    now = 100 * DAY_US
    # Ended 31 and 29 days ago, and one still open (ended: never).
    await _ended(store, {"old": now - 31 * DAY_US, "recent": now - 29 * DAY_US, "open": None})
    metrics = ServiceMetrics()
    retention = Retention(store, 30.0, FixedClock(now), metrics)
    assert await retention.prune_once() == 1
    assert sorted(await store.auction_ids()) == ["open", "recent"]
    assert await store.last_nonces() == {"mm-1": 2}
    assert metrics.registry.get_sample_value("phantom_auction_pruned_auctions_total") == 1.0
    assert await retention.prune_once() == 0


async def test_a_failed_prune_is_tried_again_and_stop_ends_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    now = 100 * DAY_US
    await _ended(store, {"old": now - 2 * DAY_US})
    retention = Retention(store, 1.0, FixedClock(now), ServiceMetrics())
    retention.every_s = 0.01
    calls = 0
    prune = store.prune

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database away")
        return await prune(*args, **kwargs)

    monkeypatch.setattr(store, "prune", flaky)
    retention.start()
    deadline = time.monotonic() + 5
    while await store.auction_ids() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await retention.stop()
    assert await store.auction_ids() == [] and calls >= 2
    assert "retention: the prune failed" in caplog.text


async def _feed_ids(http: httpx.AsyncClient) -> set[str]:
    feed = await http.get("/explorer/api/feed")
    return {entry["auction_id"] for entry in feed.json()["auctions"]}


async def test_a_server_prunes_ended_auctions_while_it_serves(server_factory: Any) -> None:
    server: ServerProcess = server_factory(
        {
            "AUCTION_SERVICE_RETENTION_DAYS": str(1 / 86_400),  # one second
            "AUCTION_SERVICE_PUBLIC_METRICS": "true",
            "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
            "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "500",
        },
        args=["--log-level", "info"],
    )
    key = await server.add_bidder("mm-1")
    async with server.settlement() as http:
        async with RawBidder(server.ws_url, "mm-1", key) as bidder:
            running, ended, _ = await running_and_ended(http, bidder)
            # The explorer lists it (a second before the prune can take it).
            first = (await http.get("/explorer/api/feed")).json()
            assert {running, ended} <= {entry["auction_id"] for entry in first["auctions"]}
            # Gone once a second has passed since its end, at the next check (1 s apart).
            deadline = time.monotonic() + 15
            while (await http.get(f"/v1/auctions/{ended}")).status_code != 404:
                assert time.monotonic() < deadline, "the ended auction was not pruned"
                await asyncio.sleep(0.2)
            assert (await http.get(f"/v1/auctions/{running}")).json()["status"] == "open"
            # ... and the explorer no longer links to it (it checks every 5 s), and tells a
            # page polling what changed since its first answer to remove it.
            deadline = time.monotonic() + 15
            while ended in (listed := await _feed_ids(http)):
                assert time.monotonic() < deadline, "the explorer still lists a pruned auction"
                await asyncio.sleep(0.3)
            assert running in listed
            asked = {"since": first["seq"], "epoch": first["epoch"]}
            changes = (await http.get("/explorer/api/feed", params=asked)).json()
            assert ended in changes["removed"] and not changes["reset"]
            assert (await http.get(f"/explorer/api/auctions/{ended}")).status_code == 404
        metrics = (await http.get("/metrics")).text
        assert "phantom_auction_pruned_auctions_total 1.0" in metrics
    # The service's own log lines go where uvicorn's go, at ``--log-level``.
    assert server.log is not None
    assert "INFO:     retention: pruned 1 auction(s) and 2 bid event(s)" in server.log.read_text()
