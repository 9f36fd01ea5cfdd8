"""``serve`` stopping and starting beside a running server (the service audit's findings).

- SIGTERM ends the running auctions first, while bidders are connected: aborted, no one
  penalized, every waiting settlement request answered. Before, uvicorn closed every
  WebSocket, then waited for those requests while their auctions ran to the end with no
  one able to reveal, and every commit was charged as a missed reveal.
- A second ``serve`` on the same port or SQLite file refuses before it reads the store;
  before, it ran crash recovery on the running server's auctions (ending them) and only
  then failed to bind, having printed that it was listening.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from .service_harness import RawBidder, ServerProcess, free_port, open_auction, order, reason

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_sigterm_aborts_the_running_auctions_and_penalizes_no_one(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory(
        {
            "AUCTION_PHANTOM_AUCTION_DURATION_MS": "4000",
            "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "1000",
        }
    )
    token = await server.add_client("settlement")
    names = ["term-a", "term-b"]
    keys = {name: await server.add_bidder(name) for name in names}
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http,
        RawBidder(server.ws_url, names[0], keys[names[0]]) as a,
        RawBidder(server.ws_url, names[1], keys[names[1]]) as b,
    ):
        # Settlement requests that wait for their result (the default), 4 s auctions.
        waiting = [
            asyncio.create_task(http.post("/v1/auctions", json=order(duration_ms=4000)))
            for _ in range(3)
        ]
        ids: set[str] = set()
        while len(ids) < 3:
            await asyncio.sleep(0.02)
            ids = {m["auction_id"] for m in a.pushes if m["type"] == "auction_opened"}
        for bidder in (a, b):
            for aid in ids:
                bid = bidder.bid(await bidder.opened(aid))
                assert reason(await bidder.commit(aid, bid)) == "accepted"
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # Waits with a loaded machine's margin: auctions run to their 4 s end are not "aborted".
        answers = await asyncio.wait_for(asyncio.gather(*waiting), 10.0)
        assert [r.json()["status"] for r in answers] == ["aborted"] * 3, answers[0].text
        for bidder in (a, b):
            for aid in ids:
                closed = await bidder.push("auction_closed", aid, timeout=10.0)
                assert closed["status"] == "aborted"
        server.proc.wait(15)
    store = await server.connect_store()
    try:
        for name in names:
            bidder_record = await store.bidder(name)
            assert bidder_record is not None
            penalty = bidder_record.penalty
            assert (penalty.no_reveal_rate, penalty.block_count) == (0.0, 0), penalty
        for aid in ids:
            record = await store.auction(aid)
            assert record is not None and record.status == "aborted"
    finally:
        await store.close()


def _second_server(port: int, db_url: str) -> subprocess.CompletedProcess[str]:
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--db", db_url]
    return subprocess.run(
        [sys.executable, "-m", "phantom_auction.service", *serve],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_second_server_on_the_same_port_or_file_refuses_before_reading_the_store(
    server_factory: Any,
) -> None:
    first: ServerProcess = server_factory()
    elsewhere: ServerProcess = server_factory(start=False)
    async with first.settlement() as http:
        aid = await open_auction(http, 60_000)
        same_file = _second_server(free_port(), first.db_url)
        same_port = _second_server(first.port, elsewhere.db_url)
        for run, option in ((same_file, "--db"), (same_port, "--port")):
            assert run.returncode == 2, run.stderr
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(f"Error: {option}: "), run.stderr
            assert "listening" not in run.stderr and "recovered" not in run.stderr
        assert "another running server" in same_file.stderr
        assert f"127.0.0.1:{first.port}" in same_port.stderr
        # Refused for its port, it made no database (the check of the store came first,
        # and would have migrated a running server's with a newer version).
        assert not Path(elsewhere.db_url.split("///", 1)[1]).exists()
        # The running server's auction was not touched.
        running = await http.get(f"/v1/auctions/{aid}")
        assert running.json()["status"] == "open", running.text
