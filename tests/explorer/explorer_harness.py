"""A live market for the explorer's browser tests: a real server on loopback, a settlement
client, SDK bidders running simulator strategies, and a hand-driven bidder that makes
the rejections and no-reveals a competition page must show. Also used by
scripts/explorer_screenshots.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from phantom_auction.client import BidderClient
from phantom_auction.simulation.strategies import create_strategy
from phantom_auction.verification import reclear_competition

from ..service.service_harness import RawBidder, ServerProcess, reason

T = TypeVar("T")

STRATEGIES = {"mm-truthful": "truthful", "mm-aggressive": "aggressive", "mm-adaptive": "adaptive"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """The Chromium binary (scripts/ensure-chromium.sh installs Debian's), or None."""
    for candidate in (os.environ.get("PHANTOM_AUCTION_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found


def _private_value(announcement: Any, rng: Any) -> float:
    """What a unit of token A is worth to the SDK bidders: 20 to 45 bps over the
    baseline, so that real bids compete with the phantoms (mean 25 bps)."""
    return float(announcement.baseline_price) * (1.0 + float(rng.uniform(20.0, 45.0)) / 1e4)


class ConsoleLog:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console.{message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))


class Market:
    """A server with SDK bidders bidding on every auction, on a background event loop."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop = asyncio.Event()
        self.token = self.call(server.add_client("explorer-tests"))
        self.keys = {name: self.call(server.add_bidder(name)) for name in [*STRATEGIES, "mm-raw"]}
        self.clients = [BidderClient(server.url, name, self.keys[name]) for name in STRATEGIES]
        self.runs = [
            asyncio.run_coroutine_threadsafe(
                client.arun(
                    create_strategy(STRATEGIES[client.bidder_id]),
                    stop=self.stop,
                    private_value=_private_value,
                ),
                self.loop,
            )
            for client in self.clients
        ]
        for client in self.clients:
            self.call(asyncio.wait_for(client.connected.wait(), 30))
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0
        )

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run ``coro`` on the market's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def order(self, duration_ms: int = 400, amount: float = 10.0, **extra: Any) -> dict[str, Any]:
        return {
            "token_in": 1,
            "token_out": 2,
            "amount": amount,
            "baseline_price": 2000.0,
            "duration_ms": duration_ms,
            **extra,
        }

    def run_auction(self, duration_ms: int = 400, **extra: Any) -> dict[str, Any]:
        """Open an auction and wait for its result (the auction view)."""
        response = self.http.post("/v1/auctions", json=self.order(duration_ms, **extra))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def open_auction(self, duration_ms: int, **extra: Any) -> dict[str, Any]:
        """Open an auction and return at once (202)."""
        response = self.http.post(
            "/v1/auctions", params={"wait": "false"}, json=self.order(duration_ms, **extra)
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    def competition(self, auction_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/auctions/{auction_id}/competition")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def run_contested_auction(self, duration_ms: int = 1500) -> dict[str, Any]:
        """An auction where, beside the SDK bidders, ``mm-raw`` commits and sends a reveal
        that does not match (``commitment_mismatch``, then unrevealed), and commits a
        second time (``duplicate_commit``). 1.5 s: a 300 ms reveal window, which a loaded
        machine's reveals still reach (no other rejection may appear)."""

        async def contest() -> dict[str, Any]:
            async with RawBidder(self.server.ws_url, "mm-raw", self.keys["mm-raw"]) as raw:
                view = await asyncio.to_thread(self.open_auction, duration_ms)
                opened = await raw.opened(view["auction_id"])
                bid = raw.bid(opened, 5.0)
                assert reason(await raw.commit(opened.auction_id, bid)) == "accepted"
                again = raw.bid(opened, 6.0)
                assert reason(await raw.commit(opened.auction_id, again)) == "duplicate_commit"
                await raw.push("reveal_open", opened.auction_id, timeout=30)
                ack = await raw.reveal(opened.auction_id, bid, volume=bid.volume / 2)
                assert reason(ack) == "commitment_mismatch"
                await raw.push("auction_closed", opened.auction_id, timeout=30)
                return view

        view = self.call(contest())
        return self.competition(view["auction_id"])

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        for run in self.runs:
            run.result(30)
        self.http.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def settle_document(doc: dict[str, Any]) -> None:
    """Clear a competition document's bids again with the engine, as the server did
    (:func:`phantom_auction.verification.reclear_competition`), and write its
    ``ranking``, ``fills``, ``price``, ``improvement_bps`` and ``outcome``: what a server
    publishing other bids must also publish for the explorer's re-clearing to agree."""
    doc.update(reclear_competition(doc))


#: The re-clearing items, in the order verify.js's reclearChecks adds them.
RECLEAR_CHECKS = [
    "ranking order and scores re-cleared",
    "allocations re-cleared",
    "fill prices re-cleared",
    "CFMM remainder re-cleared",
    "user's price and improvement re-cleared",
    "outcome re-cleared",
]
