"""The explorer's feed: what a page polling it costs the server.

In one process, over an auction house on a memory store holding ``--ended`` finished
auctions (no bidders) and ``--open`` open ones (10 minutes long), a page's poll as the
server makes it: ``Feed.sync``, ``Feed.page`` and the JSON answer, ``--polls`` times,
each asking what changed since the last answer (nothing: the steady state of a page
left open). Prints the CPU per poll (ms) and the answer's size (KB), and those of the
whole feed (a page's first poll, or one sent ``reset``). The HTTP stack adds ~0.35-0.5
ms a request on top (``docs/service.md``, "Performance").

Usage: ``python benchmarks/bench_explorer.py [--open N] [--ended N] [--polls N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def measure(open_: int, ended: int, polls: int) -> dict[str, float]:
    from starlette.responses import JSONResponse

    from phantom_auction.config import load_config
    from phantom_auction.service.explorer import Feed
    from phantom_auction.service.house import AuctionHouse
    from phantom_auction.service.schemas import OpenAuctionBody
    from phantom_auction.service.store import MemoryStore

    store = MemoryStore()
    client = await store.add_client("bench", "a" * 64)
    house = AuctionHouse(load_config(env={"AUCTION_SERVICE_FINISH_EARLY": "false"}), store)
    await house.start()
    try:
        feed = Feed(house)
        await feed.sync()  # a page is open: the auctions below are heard as they end

        def order(duration_ms: int) -> OpenAuctionBody:
            return OpenAuctionBody(
                token_in=1, token_out=2, amount=10.0, baseline_price=2000.0,
                duration_ms=duration_ms,
            )  # fmt: skip

        for _ in range(ended):
            handle = await house.open_auction(client, order(5))
            assert handle.done is not None
            await handle.done
        for _ in range(open_):
            await house.open_auction(client, order(600_000))
        await feed.sync()
        start = time.process_time()
        whole = JSONResponse(feed.page(0)).body
        whole_ms = (time.process_time() - start) * 1e3
        answer = feed.page(0)
        start = time.process_time()
        for _ in range(polls):
            await feed.sync()
            answer = feed.page(answer["seq"], answer["epoch"])
            body = JSONResponse(answer).body
        poll_ms = (time.process_time() - start) / polls * 1e3
        return {
            "poll_ms": poll_ms,
            "poll_kb": len(body) / 1e3,
            "whole_ms": whole_ms,
            "whole_kb": len(whole) / 1e3,
        }
    finally:
        await house.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=100, help="open auctions (default 100)")
    parser.add_argument("--ended", type=int, default=500, help="ended auctions (default 500)")
    parser.add_argument("--polls", type=int, default=2000, help="polls timed (default 2000)")
    args = parser.parse_args()
    for name in ("open", "ended", "polls"):
        if getattr(args, name) < (1 if name == "polls" else 0):
            parser.error(f"--{name}: must be at least {1 if name == 'polls' else 0}")
    f = asyncio.run(measure(args.open, args.ended, args.polls))
    print(
        f"feed with {args.open} open and {args.ended} ended auctions: a poll with nothing new "
        f"{f['poll_ms']:.3f} ms CPU, {f['poll_kb']:.1f} KB; the whole feed "
        f"{f['whole_ms']:.2f} ms, {f['whole_kb']:.1f} KB"
    )
    print(f"BENCH name=explorer.poll value={f['poll_ms']:.3f} unit=ms")
    print(f"BENCH name=explorer.poll_size value={f['poll_kb']:.1f} unit=KB")
    print(f"BENCH name=explorer.whole_feed value={f['whole_ms']:.2f} unit=ms")


if __name__ == "__main__":
    main()
