"""The explorer's feed in-process, over a house on a memory store: where a new server's
feed starts from (the store's latest ended auctions, not every id it holds), the
summaries of the auctions it sees end (made from memory, equal to the store's), what a
prune takes away, and what a page polling it is sent (the changes and the removals)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phantom_auction.config import load_config
from phantom_auction.service import explorer
from phantom_auction.service.auth import generate_keypair
from phantom_auction.service.explorer import Feed, _finished_summary
from phantom_auction.service.house import AuctionHouse, Rejected
from phantom_auction.service.schemas import OpenAuctionBody
from phantom_auction.service.store import MemoryStore

from ..service import test_house

pytestmark = pytest.mark.anyio

CONFIG = load_config(env={"AUCTION_SERVICE_FINISH_EARLY": "false"})
#: Answered by what woke it, not after its 10 s wait (generous: a loaded CI machine).
AT_ONCE_S = 3.0


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
        monkeypatch.setattr(explorer, "LOAD_CHUNK", 2)  # read back two at a time
        feed = Feed(house)
        feed.prune_check_s = 0.0  # at every sync (a server checks every 5 s)
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


async def test_an_ended_auction_is_summarized_from_its_marks_as_from_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    client = await store.add_client("settlement", "a" * 64)
    keys = {}
    for i in range(test_house.BIDDERS):
        private, public = generate_keypair()
        await store.add_bidder(f"mm-{i}", bytes.fromhex(public))
        keys[f"mm-{i}"] = private
    house = AuctionHouse(test_house.CONFIG, store)
    await house.start()
    try:
        feed = Feed(house)
        await feed.sync()  # a page is open before the auction
        order = OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=300
        )
        handle = await house.open_auction(client, order)
        aid = handle.record.auction_id
        await test_house._bid(house, aid, keys, test_house.BIDDERS - 1)  # 4 commits, 3 reveals
        assert handle.done is not None
        await handle.done
        events = store.events

        async def no_read(*_: object) -> None:
            raise AssertionError("the feed read an auction's events back from the store")

        monkeypatch.setattr(store, "events", no_read)
        await feed.sync()
        # A new process's feed reads it back from the store: its marks, not its events.
        fresh = Feed(house)
        await fresh.sync()
        monkeypatch.setattr(store, "events", events)
        record = await store.auction(aid)
        assert record is not None
        summary, tally = _finished_summary(record, await house.competition(record))
        for made in (feed, fresh):
            assert {k: v for k, v in made.entries[aid].items() if k != "seq"} == summary
            assert made.tallies[aid] == tally
        assert len(tally["entered"]) == 4 and tally["unrevealed"] == ["mm-3"]
        assert summary["real_bids"] == 3 and summary["commits"] == 4
    finally:
        await house.close()


async def test_a_page_is_sent_what_changed_and_what_was_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    ended = await _ended_auctions(store, 3)
    client = await store.add_client("another", "b" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    try:
        monkeypatch.setattr(explorer, "REMOVALS_KEPT", 2)
        feed = Feed(house)
        feed.prune_check_s = 0.0
        await feed.sync()
        first = feed.page(0)
        assert first["reset"] and first["removed"] == []
        assert [a["auction_id"] for a in first["auctions"]] == ended[::-1]  # latest first
        epoch, since = first["epoch"], first["seq"]

        order = OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=60_000
        )
        opened = (await house.open_auction(client, order)).record.auction_id
        await feed.sync()
        page = feed.page(since, epoch)
        assert not page["reset"] and [a["auction_id"] for a in page["auctions"]] == [opened]
        # Nothing changed: nothing sent, the open auction included.
        await feed.sync()
        quiet = feed.page(page["seq"], epoch)
        assert quiet["auctions"] == [] and quiet["removed"] == [] and not quiet["reset"]

        last_end = (await store.auction(ended[1])).finished_at_us  # type: ignore[union-attr]
        await store.prune(last_end + 1)
        await feed.sync()
        page = feed.page(quiet["seq"], epoch)
        assert not page["reset"] and page["auctions"] == []
        assert sorted(page["removed"]) == sorted(ended[:2])
        # Another epoch (a restart, another worker) or a page ahead of this feed: the
        # whole feed again.
        for behind, asked in ((page["seq"], "another"), (page["seq"] + 1, None)):
            again = feed.page(behind, asked)
            assert again["reset"] and again["removed"] == []
            assert {a["auction_id"] for a in again["auctions"]} == {opened, ended[2]}
        assert not feed.page(quiet["seq"], None)["reset"]  # no epoch: since is trusted
        # A third removal: the first is forgotten (2 kept), so a page from before it is
        # sent the whole feed; one from after the first two, the third's removal.
        await store.prune((await store.auction(ended[2])).finished_at_us + 1)  # type: ignore[union-attr]
        await feed.sync()
        assert feed.page(quiet["seq"], epoch)["reset"]
        assert feed.page(page["seq"], epoch)["removed"] == [ended[2]]
        # An auction whose result the store refused (the store away) is answered
        # store_unavailable, written again once the store is back, and then shown ended.
        short = order.model_copy(update={"duration_ms": 200})
        failing = await house.open_auction(client, short)
        await feed.sync()
        seen = feed.seq

        async def store_away(*_: object) -> None:
            raise OSError("database away")

        write = house.group_commit.write
        monkeypatch.setattr(house.group_commit, "write", store_away)
        with pytest.raises(Rejected, match="could not be stored"):
            await failing.done  # type: ignore[misc]
        monkeypatch.setattr(house.group_commit, "write", write)
        for _ in range(200):  # tried again 0.5 s after the failure, then 1 s
            if failing.record.auction_id not in house.live:
                break
            await asyncio.sleep(0.05)
        await feed.sync()
        changed = feed.page(seen, epoch)
        assert [a["auction_id"] for a in changed["auctions"]] == [failing.record.auction_id]
        assert changed["auctions"][0]["status"] != "open" and changed["removed"] == []
        # More changes than a page holds: the whole feed (its newest PAGE) again.
        before = feed.seq
        newer = [(await house.open_auction(client, order)).record.auction_id for _ in "ab"]
        await feed.sync()
        assert [a["auction_id"] for a in feed.page(before, epoch)["auctions"]] == newer[::-1]
        monkeypatch.setattr(explorer, "PAGE", 1)
        page = feed.page(before, epoch)
        assert page["reset"] and [a["auction_id"] for a in page["auctions"]] == newer[1:]
    finally:
        await house.close()


def test_the_explorer_benchmark_measures_a_poll_that_finds_nothing_new() -> None:
    """``benchmarks/bench_explorer.py`` runs (small) and its quiet poll is the small answer."""
    script = Path(__file__).parents[2] / "benchmarks" / "bench_explorer.py"
    run = subprocess.run(
        [sys.executable, str(script), "--open", "5", "--ended", "3", "--polls", "5"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    figures = dict(re.findall(r"BENCH name=(\S+) value=(\S+)", run.stdout))
    assert set(figures) == {"explorer.poll", "explorer.poll_size", "explorer.whole_feed"}
    assert float(figures["explorer.poll_size"]) < 0.2  # an empty change list, not 8 auctions
    assert "the whole feed" in run.stdout


async def test_a_waiting_page_is_answered_when_an_auction_opens_or_ends_or_the_house_stops() -> (
    None
):
    """The long poll (``wait``): a page with nothing new waits, and is answered as soon as
    an auction opens (it sees it open, however short) or ends, or after ``wait``; one
    behind is answered at once; a graceful stop answers every waiting page."""
    store = MemoryStore()
    await _ended_auctions(store, 1)  # something in the feed: seq 1
    client = await store.add_client("another", "b" * 64)
    house = AuctionHouse(CONFIG, store)
    await house.start()
    try:
        feed = Feed(house)
        await feed.sync()
        epoch, since = feed.epoch, feed.seq
        loop = asyncio.get_running_loop()

        async def answer(since: int, seconds: float) -> tuple[float, dict[str, object]]:
            started = loop.time()
            await feed.wait(since, epoch, seconds)
            return loop.time() - started, feed.page(since, epoch)

        took, page = await answer(since, 0.3)  # nothing happens: after `wait`
        assert 0.25 < took < AT_ONCE_S and page["auctions"] == []
        order = OpenAuctionBody(
            token_in=1, token_out=2, amount=10.0, baseline_price=2000.0, duration_ms=200
        )
        waiting = asyncio.ensure_future(answer(since, 10.0))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        handle = await house.open_auction(client, order)
        _took, page = await asyncio.wait_for(waiting, AT_ONCE_S)
        assert [(a["auction_id"], a["status"]) for a in page["auctions"]] == [  # type: ignore[index]
            (handle.record.auction_id, "open")
        ]
        since = int(page["seq"])  # type: ignore[arg-type]
        took, page = await answer(since, 10.0)  # the end wakes it (200 ms auction)
        assert took < AT_ONCE_S and page["auctions"][0]["status"] != "open"  # type: ignore[index]
        took, page = await answer(since, 10.0)  # behind: answered at once
        assert took < AT_ONCE_S and page["auctions"]
        for behind in (0, feed.seq + 5):  # the whole feed: at once
            took, page = await answer(behind, 10.0)
            assert took < AT_ONCE_S and page["reset"]
        waiting = asyncio.ensure_future(answer(feed.seq, 10.0))
        await asyncio.sleep(0.05)
        await house.end_auctions()  # what `serve` does first when asked to stop
        await asyncio.wait_for(waiting, AT_ONCE_S)
        took, _ = await answer(feed.seq, 10.0)  # stopping: no page waits any more
        assert took < AT_ONCE_S
    finally:
        await house.close()
