"""The explorer's feed in-process, over a house on a memory store: where a new server's
feed starts from (the store's latest ended auctions, not every id it holds) and what a
prune takes away."""

from __future__ import annotations

import pytest

from phantom_auction.config import load_config
from phantom_auction.service.explorer import Feed
from phantom_auction.service.house import AuctionHouse
from phantom_auction.service.schemas import OpenAuctionBody
from phantom_auction.service.store import MemoryStore

pytestmark = pytest.mark.anyio

CONFIG = load_config(env={"AUCTION_SERVICE_FINISH_EARLY": "false"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _ended_auctions(store: MemoryStore, count: int) -> list[str]:
    """``count`` auctions of 200 ms run to their end one after another (no bidders: each
    ends with the phantoms' price or aborted), by a house that then stops."""
    client = await store.add_client("settlement", "a" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    ids = []
    try:
        for _ in range(count):
            order = OpenAuctionBody(
                token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=200
            )
            handle = await house.open_auction(client, order)
            assert handle.done is not None
            await handle.done
            ids.append(handle.record.auction_id)
    finally:
        await house.close()
    return ids


async def test_a_new_servers_feed_starts_from_the_latest_ended_and_drops_the_pruned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    ended = await _ended_auctions(store, 3)
    house = AuctionHouse(CONFIG, store)  # a restart: nothing of those in memory
    await house.start()
    try:

        async def every_id(*_: object) -> list[str]:
            raise AssertionError("the feed read every auction id in the store")

        monkeypatch.setattr(store, "auction_ids", every_id)
        feed = Feed(house)
        await feed.sync()
        assert list(feed.entries) == ended  # in the order they ended
        assert all(e["status"] != "open" for e in feed.entries.values())
        assert set(feed.tallies) == set(ended)
        # A prune (here, of the first two) empties their entries at the next sync.
        last_end = (await store.auction(ended[1])).finished_at_us  # type: ignore[union-attr]
        pruned = await store.prune(last_end + 1)
        assert pruned.auctions == 2
        await feed.sync()
        assert list(feed.entries) == ended[2:] and set(feed.tallies) == {ended[2]}
    finally:
        await house.close()
