"""``auctions prune`` against a running server: what it removes, and what it must not
(open auctions, the nonces that keep old signed commits refused, answers to stragglers)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from .service_harness import RawBidder, ServerProcess, open_auction, reason, running_and_ended

pytestmark = pytest.mark.anyio

ENV = {
    "AUCTION_PHANTOM_AUCTION_DURATION_MS": "1000",
    "AUCTION_PHANTOM_AUCTION_REVEAL_DELAY_MS": "500",
}


def prune(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "phantom_auction.service", "auctions", "prune"]
    return subprocess.run(
        [*command, *args, "--db", server.db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_prune_while_serving_keeps_open_auctions_and_used_nonces(
    server_factory: Any,
) -> None:
    server: ServerProcess = server_factory(ENV)
    key = await server.add_bidder("mm-1")
    async with server.settlement() as http:
        async with RawBidder(server.ws_url, "mm-1", key) as bidder:
            running, ended, high = await running_and_ended(http, bidder)

            counted = prune(server, "--older-than", "0s", "--dry-run")
            assert counted.returncode == 0, counted.stderr
            assert "would prune 1 auction(s) and their 2 bid event(s)" in counted.stdout
            assert (await http.get(f"/v1/auctions/{ended}")).status_code == 200

            done = prune(server, "--older-than", "0s")
            assert done.returncode == 0, done.stderr
            assert "pruned 1 auction(s) and their 2 bid event(s)" in done.stdout
            assert (await http.get(f"/v1/auctions/{ended}")).status_code == 404
            assert (await http.get(f"/v1/auctions/{running}")).json()["status"] == "open"
            # A straggler for the pruned auction: refused as ever, though no row is left
            # to store its refusal with.
            assert reason(await bidder.reveal(ended, high)) == "auction_closed"

        store = await server.connect_store()
        try:
            assert [e.kind for e in await store.events(running)] == ["commit"]
            assert await store.events(ended) == []
        finally:
            await store.close()

        # A restart rebuilds the nonce registry from the store: the pruned commit's
        # nonce, the highest, still counts.
        port = server.port
        server.stop()
        server.start(port=port)
        async with RawBidder(server.ws_url, "mm-1", key) as bidder:
            later = await open_auction(http, 60_000)
            opened = await bidder.opened(later)
            replayed = await bidder.commit(later, bidder.bid(opened, nonce=high.nonce))
            assert reason(replayed) == "replayed_nonce"
            fresh = await bidder.commit(later, bidder.bid(opened, nonce=high.nonce + 1))
            assert reason(fresh) == "accepted"
            assert reason(await bidder.reveal(ended, high)) == "unknown_auction"


def test_prune_refuses_a_bad_age(server_factory: Any) -> None:
    server: ServerProcess = server_factory(start=False)
    for bad in ("30", "3w", "-1d", "soon"):
        done = prune(server, "--older-than", bad)
        assert done.returncode == 2, (bad, done.stdout)
        assert "--older-than" in done.stderr and repr(bad) in done.stderr, done.stderr
    for option, bad in (("--batch", "0"), ("--pause-ratio", "-1")):
        done = prune(server, "--older-than", "1d", option, bad)
        assert done.returncode == 2 and option in done.stderr, done.stderr
