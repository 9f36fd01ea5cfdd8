"""The bidder SDK counts the reveals it sent late by its own clock (issue 16: at 100
auctions/s the reveals refused as ``outside_reveal_window`` had left the bidders' process
10-20 ms after the 20 ms window opened; the server's part was the smaller one)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from phantom_auction.client import BidderClient
from phantom_auction.simulation.strategies import create_strategy

from .service_harness import ServerProcess

pytestmark = pytest.mark.anyio

AUCTIONS = 2
DURATION_MS = 3000  # a 600 ms reveal window: wide enough that only the held reveals are late
#: How long each bidder's reveal is held after the window opens (s): 0.65 and 1.3 windows.
#: A loaded machine only delays a reveal: the on-time one has 300 ms to the window's half,
#: the late one 210 ms to its end.
HOLD_S = {"mm-on-time": 0.0, "mm-late": 0.39, "mm-after": 0.78}


async def test_reveals_sent_late_by_the_bidders_clock_are_counted(
    server_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: ServerProcess = server_factory({})
    token = await server.add_client("settlement")
    keys = {name: await server.add_bidder(name) for name in HOLD_S}
    real_reveal = BidderClient._reveal

    def held_reveal(self: BidderClient, round_: Any) -> None:
        hold = HOLD_S[self.bidder_id]
        asyncio.get_running_loop().call_later(hold, real_reveal, self, round_)

    monkeypatch.setattr(BidderClient, "_reveal", held_reveal)
    clients = {
        name: BidderClient(server.url, name, key, honour_timing=False) for name, key in keys.items()
    }
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(c.arun(create_strategy("truthful"), stop=stop, private_value=2100.0))
        for c in clients.values()
    ]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients.values())), 30)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
    ) as http:
        order = {
            "token_in": 1,
            "token_out": 2,
            "amount": 10.0,
            "baseline_price": 2000.0,
            "duration_ms": DURATION_MS,
        }
        results = []
        for _ in range(AUCTIONS):
            r = await http.post("/v1/auctions", json=order)
            assert r.status_code == 200, r.text
            results.append(r.json()["result"])
    # The last auction's held reveal leaves after its end: wait for it, and for the
    # server's answer to it (on a busy machine it came after a stop right on the send).
    for _ in range(200):
        report = clients["mm-after"].report()
        if report.reveals_sent == AUCTIONS and sum(report.rejected.values()) >= AUCTIONS:
            break
        await asyncio.sleep(0.05)
    stop.set()
    reports = {r.bidder_id: r for r in await asyncio.wait_for(asyncio.gather(*runs), 30)}

    on_time, late, after = reports["mm-on-time"], reports["mm-late"], reports["mm-after"]
    assert (on_time.reveals_late, on_time.reveals_after_window) == (0, 0)
    # Over half the window late, still taken.
    assert (late.reveals_late, late.reveals_after_window) == (AUCTIONS, 0)
    assert late.accepted == 2 * AUCTIONS and late.rejected == {}
    # After the window closed: the server refused each one.
    assert (after.reveals_late, after.reveals_after_window) == (AUCTIONS, AUCTIONS)
    assert after.reveals_sent >= AUCTIONS
    assert sum(after.rejected.values()) >= AUCTIONS
    assert set(after.rejected) <= {"outside_reveal_window", "auction_closed"}
    for result in results:
        assert result["unrevealed"] == ["mm-after"]
