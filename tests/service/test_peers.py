"""Two auction houses on one PostgreSQL schema, in-process (what ``serve --workers 2``
runs in two processes): the nonce rule across them, and a process that stops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from phantom_auction.config import load_config
from phantom_auction.engine import make_bid
from phantom_auction.service.auth import (
    generate_keypair,
)
from phantom_auction.service.explorer import Feed
from phantom_auction.service.house import AuctionHouse, BidderSession
from phantom_auction.service.house.peers import HousePeers
from phantom_auction.service.notify import OWNER_GONE_DETAIL
from phantom_auction.service.schemas import CommitBody, OpenAuctionBody
from phantom_auction.service.store import ClientRecord

from .conftest import make_pg_store
from .service_harness import commit_body, order

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

CONFIG = load_config(env={"AUCTION_SERVICE_FINISH_EARLY": "false"})


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait for ``condition`` (a notification's effect): fails with ``what`` if it never holds."""
    end = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > end:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def houses(pg_schema: tuple[str, str]) -> AsyncIterator[tuple[Any, ...]]:
    """Two started houses with peers, a client and a bidder ``mm`` (its private key)."""
    url, schema = pg_schema
    made: list[AuctionHouse] = []
    for _ in range(2):
        house = AuctionHouse(CONFIG, make_pg_store(url, schema))
        house.peers = HousePeers(house, f"{url}?search_path={schema}")
        await house.start()
        made.append(house)
    client = await made[0].store.add_client("settlement", "c" * 64)
    private, public = generate_keypair()
    await made[0].store.add_bidder("mm", bytes.fromhex(public))
    try:
        yield made[0], made[1], client, private
    finally:
        for house in made:
            await house.close()


def _commit(auction_id: str, private: str, nonce: int) -> CommitBody:
    return commit_body(
        auction_id, make_bid(auction_id, "mm", (1, 2), 2001.0, 3.0, 0.0, nonce), private
    )


async def _open(house: AuctionHouse, client: ClientRecord, **fields: Any) -> str:
    handle = await house.open_auction(client, OpenAuctionBody(**order(**fields)))
    assert handle.stored is not None
    await handle.stored
    return handle.record.auction_id


async def _third_house(pg_schema: tuple[str, str]) -> AuctionHouse:
    """Another started house on the same schema (a worker started later, or restarted)."""
    url, schema = pg_schema
    house = AuctionHouse(CONFIG, make_pg_store(url, schema))
    house.peers = HousePeers(house, f"{url}?search_path={schema}")
    await house.start()
    return house


def _stop_without_a_word(house: AuctionHouse) -> None:
    """Its connections (and its liveness lock) go, as when its process is killed."""
    assert house.peers is not None
    link = house.peers.link
    link._closed = True
    for connection in (link._listener, link._publisher):
        connection.terminate()


async def test_the_nonce_rule_holds_across_processes_in_the_order_sent(houses: Any) -> None:
    here, owner, client, private = houses  # the bidder is connected to `here`
    local = await _open(here, client, duration_ms=60_000)
    remote, later, last = [await _open(owner, client, duration_ms=60_000) for _ in range(3)]
    await _until(lambda: last in here.peers.remote, "the openings were heard")
    state = await here.bidder_state("mm")
    # Sent in order, 5 (forwarded to the owner) then 6 (taken here at once): both are
    # fresh, though 6 is accepted before 5 reaches its owner.
    forwarded = here.commit(state, _commit(remote, private, 5), remote, "ws")
    taken = here.commit(state, _commit(local, private, 6), local, "ws")
    verdicts = await asyncio.gather(forwarded, taken)
    assert all(v.accepted for v in verdicts), verdicts
    # Nonce 6 is used: refused by the other process too (48 s before any reveal window
    # could have published it), and 7 taken there raises the nonce here.
    reused = await here.commit(state, _commit(later, private, 6), later, "ws")
    assert not reused.accepted and reused.reason == "replayed_nonce", reused
    fresh = await here.commit(state, _commit(last, private, 7), last, "ws")
    assert fresh.accepted, fresh
    assert here.nonces.last("mm") == 7 and owner.nonces.last("mm") == 7


@pytest.mark.parametrize("known", [False, True], ids=["bidder-read-from-store", "bidder-known"])
async def test_a_forward_heard_before_published_nonces_is_judged_before_them(
    houses: Any, known: bool
) -> None:
    here, owner, client, private = houses  # the bidder is connected to `here`
    remote = await _open(owner, client, duration_ms=60_000)
    if known:
        await owner.bidder_state("mm")
    answers: list[Any] = []
    owner.peers.link.answer = lambda request, verdict: answers.append((request["id"], verdict))
    body = _commit(remote, private, 5)
    forward = {
        "kind": "commit",
        "b": "mm",
        "a": remote,
        "tr": "ws",
        "body": body.model_dump(mode="json", include=set(CommitBody.model_fields)),
        "ln": None,
        "id": 1,
        "w": here.peers.me,
    }
    # What the owner hears in one NOTIFY batch after a delay: the commit with nonce 5
    # forwarded by `here`, then another auction's reveal window publishing nonce 6,
    # which `here` took after 5 was sent. Heard in that order, 5 is judged first.
    owner.peers._heard("forward", forward)
    owner.peers._heard(
        "reveal_open", {"a": "f" * 32, "t": "{}", "n": {"mm": 6}, "w": here.peers.me}
    )
    await _until(lambda: bool(answers), "the forwarded commit was answered")
    assert answers[0][1].accepted, answers
    assert owner.nonces.last("mm") == 6
    # Heard after the nonces, the same nonce is refused: the rule still holds.
    owner.peers._heard("forward", {**forward, "id": 2})
    await _until(lambda: len(answers) == 2, "the second forward was answered")
    assert answers[1][1].reason == "replayed_nonce", answers


def _pushed(session: BidderSession, kind: str) -> list[dict[str, Any]]:
    """The pushes of ``kind`` waiting in ``session``'s outbox (taken out)."""
    texts = []
    while not session.outbox.empty():
        texts.append(session.outbox.get_nowait())
    return [m for m in map(json.loads, filter(None, texts)) if m["type"] == kind]


async def test_a_stopped_owner_is_found_and_its_auction_ended(houses: Any) -> None:
    first, second, client, private = houses
    auction_id = await _open(first, client, duration_ms=60_000)
    await _until(lambda: auction_id in second.peers.remote, "the other process heard the opening")
    # A bidder on the other process commits to it (forwarded to its owner).
    state = await second.bidder_state("mm")
    session = BidderSession("mm")
    second.attach(state, session)
    committed = await second.commit(state, _commit(auction_id, private, 1), auction_id, "ws")
    assert committed.accepted, committed
    # An idempotent retry of its opening, landed on the other process, waits for its end.
    retry = asyncio.create_task(second.peers.wait_for_end(auction_id, 60.0, second.store))
    _stop_without_a_word(first)
    verdict = await second.commit(state, _commit(auction_id, private, 2), auction_id, "ws")
    # Answered from the liveness check, not the forward timeout's "did not answer".
    assert verdict.reason == "store_unavailable" and verdict.detail == OWNER_GONE_DETAIL
    await _until(lambda: auction_id in second.closed, "the stopped owner's auction ended")
    assert second.closed[auction_id] == "aborted"
    # Its bidder is told, as if its owner had ended it.
    (closed,) = _pushed(session, "auction_closed")
    assert closed["auction_id"] == auction_id and closed["status"] == "aborted"
    assert closed["filled"] == 0.0 and closed["revealed"] is False
    await asyncio.wait_for(retry, 5.0)  # told at the end it made, not after its 60 s
    record = await second.store.auction(auction_id)
    assert record is not None and record.status == "aborted"
    again = await second.commit(state, _commit(auction_id, private, 3), auction_id, "ws")
    assert again.reason == "auction_closed", again
    # The stopped house's own shutdown must not write over the recovered result.
    first.peers = None
    first.live.clear()


async def test_a_newer_login_on_another_process_closes_the_older_session(houses: Any) -> None:
    first, second, _client, _private = houses
    older, newer = BidderSession("mm"), BidderSession("mm")
    first.attach(await first.bidder_state("mm"), older)
    second.attach(await second.bidder_state("mm"), newer)
    # One session per bidder in the whole server, as in one process (one rate limit).
    await _until(lambda: older.closed, "the older session was closed")
    assert not newer.closed
    # Said, so that a second process with the same key stops rather than log in again.
    assert (older.close_code, older.close_reason) == (1008, "session_replaced")
    (error,) = _pushed(older, "error")
    assert error["reason"] == "session_replaced" and "'mm'" in error["detail"]


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "seq"}


async def test_the_explorer_feed_shows_the_other_processes_auctions(houses: Any) -> None:
    """A page on either process sees every auction: open ones from their announcement,
    with their commits counted from the store, ended ones summarized from it as the
    owner's own feed summarizes them, and a stopped owner's auction as recovered."""
    here, owner, client, private = houses
    feed, theirs = Feed(here), Feed(owner)
    feed.remote_count_s = 0.0  # recount at every sync (a server does it every second)
    await feed.sync()
    remote = await _open(owner, client, duration_ms=1500)
    await _until(lambda: remote in here.peers.remote, "the opening was heard")
    await feed.sync()
    await theirs.sync()
    assert _public(feed.entries[remote]) == _public(theirs.entries[remote])
    assert feed.entries[remote]["status"] == "open" and feed.entries[remote]["commits"] == 0
    state = await here.bidder_state("mm")
    assert (await here.commit(state, _commit(remote, private, 5), remote, "ws")).accepted
    await feed.sync()
    assert feed.entries[remote]["commits"] == 1
    changed = feed.page(feed.seq - 1, feed.epoch)["auctions"]
    assert [a["auction_id"] for a in changed] == [remote]

    await _until(lambda: remote in here.closed, "the end was heard")  # no reveal: aborted
    await feed.sync()
    await theirs.sync()
    assert feed.entries[remote]["status"] != "open"
    assert _public(feed.entries[remote]) == _public(theirs.entries[remote])
    assert feed.tallies[remote] == theirs.tallies[remote] != {}

    # An auction of an owner that stops: ended here, and shown so.
    stranded = await _open(owner, client, duration_ms=60_000)
    await _until(lambda: stranded in here.peers.remote, "the opening was heard")
    await feed.sync()
    _stop_without_a_word(owner)
    here.peers.link.owner_gone(owner.peers.me)
    await _until(lambda: stranded in here.closed, "the stopped owner's auction ended")
    await feed.sync()
    assert feed.entries[stranded]["status"] == "aborted"
    owner.peers = None
    owner.live.clear()


async def test_a_process_started_later_lists_the_auctions_already_running(
    houses: Any, pg_schema: tuple[str, str]
) -> None:
    """A worker (re)started while another runs an auction knows it at once: the same
    announcement its owner pushed, in ``GET /v1/auctions/open`` and the explorer."""
    first, second, client, _private = houses
    running = await _open(first, client, duration_ms=60_000)
    await _until(lambda: running in second.peers.remote, "the opening was heard")
    late = await _third_house(pg_schema)
    try:
        assert late.peers.remote[running] == second.peers.remote[running]
        assert running in {doc["auction_id"] for doc in late.open_announcements()}
        feed = Feed(late)
        await feed.sync()
        assert feed.entries[running]["status"] == "open"
        assert running not in late.recovered  # its owner runs it: not ended here
    finally:
        await late.close()
    assert (await first.store.auction(running)).status == "open"  # type: ignore[union-attr]


async def test_a_forwarded_refusal_is_counted_once_across_the_processes(houses: Any) -> None:
    """The operator audit: 10 bad signatures sent to the auctions of both processes put
    rejections_total{bad_signature} up by 18 (the 8 forwarded ones were counted by their
    owner and again by the process that forwarded them)."""
    here, owner, client, private = houses
    remote = await _open(owner, client, duration_ms=60_000)
    await _until(lambda: remote in here.peers.remote, "the opening was heard")
    state = await here.bidder_state("mm")
    forged = _commit(remote, private, 9).model_copy(update={"signature": "00" * 64})
    verdict = await here.commit(state, forged, remote, "ws")
    assert verdict.reason == "bad_signature"
    assert (here.metrics.tally["rejected"], owner.metrics.tally["rejected"]) == (0, 1)


async def test_a_recovered_end_is_told_at_the_next_login_on_any_process(
    houses: Any, pg_schema: tuple[str, str]
) -> None:
    """A stopped owner's auction, ended by another process while its bidder was connected
    nowhere: the bidder is told how it ended when it logs in again, at a process that did
    not recover it (here the owner's restart), once."""
    owner, recovering, client, private = houses
    auction_id = await _open(owner, client, duration_ms=60_000)
    await _until(lambda: auction_id in recovering.peers.remote, "the opening was heard")
    state = await owner.bidder_state("mm")
    session = BidderSession("mm")
    owner.attach(state, session)
    assert (await owner.commit(state, _commit(auction_id, private, 1), auction_id, "ws")).accepted
    owner.detach(state, session)  # the bidder leaves, then its owner's process stops
    _stop_without_a_word(owner)
    recovering.peers.link.owner_gone(owner.peers.me)
    await _until(lambda: auction_id in recovering.closed, "the stopped owner's auction ended")
    restarted = await _third_house(pg_schema)
    try:
        back = BidderSession("mm")
        restarted.attach(await restarted.bidder_state("mm"), back)
        await _until(lambda: not back.outbox.empty(), "the recovered end was told")
        (closed,) = _pushed(back, "auction_closed")
        assert closed["auction_id"] == auction_id and closed["status"] == "aborted"
        assert closed["filled"] == 0.0 and closed["revealed"] is False
        # Once: the recovering process kept nothing more for it.
        assert recovering.untold("mm") == {}
    finally:
        await restarted.close()
    owner.peers = None
    owner.live.clear()


async def test_a_recovered_end_heard_at_another_process_is_not_told_again(
    houses: Any, pg_schema: tuple[str, str]
) -> None:
    """A bidder connected to a third process while a stopped owner's auction is recovered
    hears its end there; the recovering process, told so, does not send it again when
    the bidder logs in to it later."""
    owner, recovering, client, private = houses
    third = await _third_house(pg_schema)
    try:
        auction_id = await _open(owner, client, duration_ms=60_000)
        await _until(lambda: auction_id in third.peers.remote, "the opening was heard")
        state = await third.bidder_state("mm")
        session = BidderSession("mm")
        third.attach(state, session)
        commit = _commit(auction_id, private, 1)
        assert (await third.commit(state, commit, auction_id, "ws")).accepted  # forwarded
        _stop_without_a_word(owner)
        recovering.peers.link.owner_gone(owner.peers.me)
        await _until(lambda: auction_id in third.closed, "the recovered end was heard")
        (closed,) = _pushed(session, "auction_closed")
        assert closed["auction_id"] == auction_id and closed["status"] == "aborted"
        await _until(lambda: "mm" not in recovering._untold, "the recovering process was told")
        # A later login at the recovering process: welcome and nothing about that auction.
        later = BidderSession("mm")
        recovering.attach(await recovering.bidder_state("mm"), later)
        assert recovering.untold("mm") == {}
    finally:
        await third.close()
    owner.peers = None
    owner.live.clear()


async def test_an_end_is_kept_only_for_a_bidder_connected_to_no_process(houses: Any) -> None:
    """An owner keeps an auction's end for the next login of each committed bidder not
    connected to it, and forgets it for those another process pushed it to (told)."""
    owner, other, client, private = houses
    auction_id = await _open(owner, client, duration_ms=1_500)
    await _until(lambda: auction_id in other.peers.remote, "the opening was heard")
    state = await other.bidder_state("mm")
    session = BidderSession("mm")
    other.attach(state, session)
    assert (await other.commit(state, _commit(auction_id, private, 1), auction_id, "ws")).accepted
    await _until(lambda: auction_id in other.closed, "the end was heard")  # no reveal
    (closed,) = _pushed(session, "auction_closed")
    assert closed["auction_id"] == auction_id
    await _until(lambda: "mm" not in owner._untold, "the owner was told it was pushed")
    # Gone before the next end: the owner keeps it, and a login anywhere is sent it.
    other.detach(state, session)
    second = await _open(owner, client, duration_ms=1_500)
    await _until(lambda: second in other.peers.remote, "the opening was heard")
    assert (await other.commit(state, _commit(second, private, 2), second, "ws")).accepted
    await _until(lambda: second in other.closed, "the end was heard")
    assert list(owner._untold["mm"]) == [second]
    back = BidderSession("mm")
    other.attach(await other.bidder_state("mm"), back)
    await _until(lambda: not back.outbox.empty(), "the kept end was sent")
    assert [p["auction_id"] for p in _pushed(back, "auction_closed")] == [second]
    assert owner.untold("mm") == {}
