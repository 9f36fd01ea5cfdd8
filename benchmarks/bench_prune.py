"""Retention: how fast ``auctions prune`` removes ended auctions, and how long one of
its transactions holds the store's writer (SQLite has one: the server's acks wait
behind it).

Fills a fresh SQLite store (WAL, ``synchronous=full`` as the service runs it) with
``--auctions`` ended auctions shaped as the service stores them at 20 bidders: 20
commits and 20 reveals each (the payloads the service keeps), a result, and a
competition document of ~11 KB (what ``docs/service.md`` measured per auction). Then
prunes them ``--batch`` auctions a transaction (the command's default, 25): the first
half one transaction at a time, to time each (p50 / max: how long the writer is held),
the second half in one ``Store.prune`` call as the command makes it, pauses included
(auctions and bid events removed per second). Prints the store's size too. Also
checks that the nonce registry read back after the prune (``last_nonces``) is the one
before it.

Usage: ``python benchmarks/bench_prune.py [--auctions N] [--batch N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

BIDDERS = 20


def _records(client_id: int, first: int, count: int) -> tuple[list[object], list[object]]:
    """``count`` auctions from number ``first``: their opening and events, then their ends."""
    from phantom_auction.service.store import AuctionFinished, AuctionRecord, BidEvent

    opened: list[object] = []
    finished: list[object] = []
    ranking = [
        {"bidder_id": f"mm-{b}", "score": 12.5 + b, "improvement_bps": 20.0 + b} for b in range(35)
    ]
    for n in range(first, first + count):
        auction_id = f"auction-{n:09d}"
        opened.append(
            AuctionRecord(
                auction_id=auction_id,
                client_id=client_id,
                idempotency_key=f"order-{n}",
                request_digest="d" * 64,
                token_in=1,
                token_out=2,
                amount=10.0,
                baseline_price=2000.0,
                opened_at_us=n,
                commit_deadline_us=n + 80_000,
                reveal_deadline_us=n + 100_000,
                phantom_commitment="c" * 64,
                phantom_seed="5" * 64,
                engine_params={"config": {"phantom_auction": {"mechanism": "vickrey"}}},
            )
        )
        for b in range(BIDDERS):
            nonce = n * BIDDERS + b
            common = {"token_pair": [1, 2], "nonce": nonce}
            opened.append(
                BidEvent(
                    auction_id,
                    f"mm-{b}",
                    "commit",
                    True,
                    None,
                    nonce,
                    {**common, "commitment": "ab" * 32, "signature": "00" * 64},
                    n + 1_000,
                )
            )
        for b in range(BIDDERS):
            nonce = n * BIDDERS + b
            reveal = {"improved_price": 2004.0, "volume": 10.0, "priority_fee": 0.0}
            opened.append(
                BidEvent(
                    auction_id,
                    f"mm-{b}",
                    "reveal",
                    True,
                    None,
                    nonce,
                    {"token_pair": [1, 2], "nonce": nonce, "salt": "ef" * 32, **reveal},
                    n + 90_000,
                )
            )
        document = {"ranking": ranking, "phantoms": ["f" * 120] * 15, "digest": "e" * 64}
        result = {"outcome": "filled", "price": 2004.0, "fills": [{"bidder_id": "mm-0"}]}
        # Ended at time n: the auctions end in order, one microsecond apart.
        finished.append(AuctionFinished(auction_id, "finalized", "filled", result, document, n))
    return opened, finished


async def _run(auctions: int, batch: int, synchronous: str) -> dict[str, float]:
    from phantom_auction.service.store import SqlStore

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prune.db"
        store = SqlStore(f"sqlite+aiosqlite:///{path}", sqlite_synchronous=synchronous)
        await store.start()
        try:
            client = await store.add_client("settlement", "a" * 64)
            for first in range(0, auctions, 500):
                opened, finished = _records(client.client_id, first, min(500, auctions - first))
                await store.apply(opened)  # type: ignore[arg-type]
                await store.apply(finished)  # type: ignore[arg-type]
            nonces = await store.last_nonces()
            size = sum(p.stat().st_size for p in Path(folder).iterdir())
            # The first half batch by batch: each call one transaction of ``batch``
            # auctions (a limit one above, so no pause follows), timed alone.
            half = auctions // 2 - auctions // 2 % batch
            each: list[float] = []
            removed = events = 0
            cpu = time.process_time()
            for end in range(batch, half + 1, batch):
                t0 = time.perf_counter()
                done = await store.prune(end, batch_auctions=batch + 1)
                each.append(time.perf_counter() - t0)
                removed += done.auctions
                events += done.events
            cpu_per_auction = (time.process_time() - cpu) / max(1, removed)
            # The rest as the command prunes: one call, pausing between its batches.
            started = time.perf_counter()
            done = await store.prune(auctions, batch_auctions=batch)
            seconds = time.perf_counter() - started
            removed += done.auctions
            events += done.events
            if removed != auctions or await store.auction_ids():
                raise SystemExit(f"pruned {removed} of {auctions} auctions")
            if await store.last_nonces() != nonces:
                raise SystemExit("the nonce registry changed")
        finally:
            await store.close()
    return {
        "auctions": auctions,
        "events": events,
        "store_mb": size / 1e6,
        "seconds": seconds,
        "auctions_per_s": done.auctions / seconds,
        "events_per_s": done.events / seconds,
        "cpu_ms_per_auction": cpu_per_auction * 1e3,
        "batch_p50_ms": statistics.median(each) * 1e3,
        "batch_max_ms": max(each) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auctions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--sqlite-synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    figures = asyncio.run(_run(args.auctions, args.batch, args.sqlite_synchronous))
    for name, value in figures.items():
        print(f"  {name:<20} {value:,.2f}")
    print(
        f"pruned {figures['auctions']:,.0f} auctions ({figures['events']:,.0f} bid events, "
        f"a {figures['store_mb']:,.0f} MB store); the second half in one call: "
        f"{figures['auctions_per_s']:,.0f} auctions/s; one batch of {args.batch} alone: "
        f"p50 {figures['batch_p50_ms']:.1f} ms, max {figures['batch_max_ms']:.1f} ms"
    )
    print(f"BENCH name=prune.auctions_per_s value={figures['auctions_per_s']:.0f} unit=1/s")
    print(f"BENCH name=prune.batch_p50 value={figures['batch_p50_ms']:.2f} unit=ms")
    print(f"BENCH name=prune.batch_max value={figures['batch_max_ms']:.2f} unit=ms")


if __name__ == "__main__":
    main()
