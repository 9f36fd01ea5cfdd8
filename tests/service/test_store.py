"""The Store contract, on the in-memory store, SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, inspect, select, update

from phantom_auction.service.penalties import PenaltyState
from phantom_auction.service.store import (
    SCHEMA_VERSION,
    AuctionFinished,
    MemoryStore,
    PenaltyUpdate,
    Pruned,
    SqlStore,
    Store,
    StoreConflict,
    open_store,
    schema_version,
)

from .service_harness import auction_record, commit_event

pytestmark = pytest.mark.anyio


async def test_clients_are_found_by_token_hash_and_names_are_unique(store: Store) -> None:
    alice = await store.add_client("alice", "a" * 64)
    bob = await store.add_client("bob", "b" * 64)
    assert alice.client_id != bob.client_id
    found = await store.client_by_token_hash("b" * 64)
    assert found is not None and found.name == "bob" and found.client_id == bob.client_id
    assert await store.client_by_token_hash("f" * 64) is None
    with pytest.raises(StoreConflict, match="name='alice'"):
        await store.add_client("alice", "e" * 64)


async def test_bidders_keep_their_key_and_penalty(store: Store) -> None:
    key = bytes(range(32))
    added = await store.add_bidder("mm-1", key)
    assert added.penalty == PenaltyState()
    with pytest.raises(StoreConflict, match="bidder_id='mm-1'"):
        await store.add_bidder("mm-1", key)
    blocked = PenaltyState(no_reveal_rate=0.6, blocked_until_us=99, block_count=1, reason="why")
    await store.apply([PenaltyUpdate("mm-1", blocked)])
    found = await store.bidder("mm-1")
    assert found is not None
    assert found.public_key == key
    assert found.penalty == blocked
    assert await store.bidder("nobody") is None


async def test_a_batch_opens_logs_and_finishes_auctions(store: Store) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.add_bidder("mm-1", bytes(32))
    await store.apply(
        [
            auction_record("a1", client.client_id, key="order-1"),
            auction_record("a2", client.client_id),
            commit_event("a1", "mm-1", 5),
            commit_event("a1", "mm-1", 4, accepted=False),
            commit_event("a2", "mm-1", 7),
        ]
    )
    assert sorted(await store.auction_ids()) == ["a1", "a2"]
    assert {a.auction_id for a in await store.open_auctions()} == {"a1", "a2"}
    by_key = await store.auction_by_key(client.client_id, "order-1")
    assert by_key is not None and by_key.auction_id == "a1"
    assert by_key == auction_record("a1", client.client_id, key="order-1")
    assert await store.auction_by_key(client.client_id, "order-2") is None

    events = await store.events("a1")
    assert [(e.nonce, e.accepted, e.reason) for e in events] == [
        (5, True, None),
        (4, False, "replayed_nonce"),
    ]
    ids = [e.event_id for e in events]
    assert all(i is not None for i in ids) and ids == sorted(ids)
    assert events[0].payload == {"commitment": "ab" * 32, "signature": "00" * 64}
    # Only accepted commits count for replay protection.
    assert await store.last_nonces() == {"mm-1": 7}

    result = {"outcome": "filled", "price": 2501.0, "fills": [{"bidder_id": "mm-1"}]}
    await store.apply(
        [
            AuctionFinished("a1", "finalized", "filled", result, {"phantoms": []}, 2_000_000),
            AuctionFinished("a2", "aborted", "aborted", None, None, 2_000_001),
        ]
    )
    a1 = await store.auction("a1")
    assert a1 is not None
    assert (a1.status, a1.outcome, a1.result, a1.competition, a1.finished_at_us) == (
        "finalized",
        "filled",
        result,
        {"phantoms": []},
        2_000_000,
    )
    assert await store.open_auctions() == []
    assert await store.auction_ids("aborted") == ["a2"]
    assert await store.auction("a3") is None
    # An auction ends once: a second end (another server's, cut off from the database
    # meanwhile) does not overwrite the first (the operator audit saw aborted, then
    # finalized/no_bids 20 s later).
    await store.apply([AuctionFinished("a2", "finalized", "no_bids", {}, {}, 3_000_000)])
    a2 = await store.auction("a2")
    assert a2 is not None and (a2.status, a2.finished_at_us) == ("aborted", 2_000_001)


async def test_a_failing_batch_writes_nothing(store: Store) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.apply([auction_record("a1", client.client_id, key="k")])
    with pytest.raises(Exception):  # noqa: B017 - each backend has its own integrity error
        await store.apply(
            [
                auction_record("a2", client.client_id),
                commit_event("a2", "mm-1", 1),
                auction_record("a3", client.client_id, key="k"),  # reuses the key
            ]
        )
    assert await store.auction_ids() == ["a1"]
    assert await store.events("a2") == []


async def test_data_survives_reopening(store_factory: object) -> None:
    first: Store = store_factory()  # type: ignore[operator]
    await first.start()
    client = await first.add_client("settlement", "a" * 64)
    await first.add_bidder("mm-1", bytes(32))
    await first.apply([auction_record("a1", client.client_id), commit_event("a1", "mm-1", 3)])
    await first.close()

    second: Store = store_factory()  # type: ignore[operator]
    await second.start()  # schema already there: nothing to migrate
    try:
        assert await second.auction_ids() == ["a1"]
        assert [e.nonce for e in await second.events("a1")] == [3]
        assert await second.bidder("mm-1") is not None
    finally:
        await second.close()


async def test_a_newer_schema_is_refused(store: Store) -> None:
    if not isinstance(store, SqlStore):
        pytest.skip("the in-memory store has no schema")
    async with store.engine.begin() as conn:
        await conn.execute(insert(schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        await store.start()


def test_open_store_picks_the_backend_from_the_url(tmp_path: object) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    sqlite = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(sqlite, SqlStore) and sqlite.dialect == "sqlite"
    pg = open_store("postgresql://u:p@127.0.0.1:5432/db")
    assert isinstance(pg, SqlStore) and pg.dialect == "postgresql"
    with pytest.raises(ValueError, match="database_url='mysql"):
        open_store("mysql://u:p@127.0.0.1/db")


def test_each_column_is_written_by_the_core_and_the_sqlite_statements() -> None:
    from phantom_auction.service.store.schema import (
        EVENT_INSERT,
        FINISH_UPDATE,
        OPEN_INSERT,
        PENALTY_UPDATE,
        auctions,
        bid_events,
    )
    from phantom_auction.service.store.sql import core_statement
    from phantom_auction.service.store.sqlite import sqlite_statement

    assert OPEN_INSERT.names() == [c.name for c in auctions.columns]
    assert EVENT_INSERT.names() == [c.name for c in bid_events.columns if c.name != "event_id"]
    assert FINISH_UPDATE.names() == [
        "status",
        "outcome",
        "result",
        "competition",
        "finished_at_us",
        "auction_id",
    ]
    assert PENALTY_UPDATE.names() == [
        "no_reveal_rate",
        "blocked_until_us",
        "block_count",
        "block_reason",
        "bidder_id",
    ]
    for write in (OPEN_INSERT, EVENT_INSERT, FINISH_UPDATE, PENALTY_UPDATE):
        sql = sqlite_statement(write)
        assert sql.count("?") == len(write.names())
        _statement, params = core_statement(write)
        assert [p.removeprefix("b_") for p in params] == write.names()
        for name in write.names():
            assert name in sql


def test_the_sqlite_writer_and_core_write_the_same_rows(tmp_path: Path) -> None:
    """The raw SQLite writer and the Core statements (PostgreSQL's path) store one batch alike."""
    import sqlite3

    from sqlalchemy import create_engine, select

    from phantom_auction.service.store import BidderRecord
    from phantom_auction.service.store.records import split_writes
    from phantom_auction.service.store.schema import (
        BIDDER_INSERT,
        auction_from_row,
        auctions,
        bid_events,
        bidder_from_row,
        bidders,
        clients,
        metadata,
    )
    from phantom_auction.service.store.sql import apply_rows
    from phantom_auction.service.store.sqlite import apply_sqlite

    penalty = PenaltyState(0.25, 9_000_000, 2, "no reveal in a1")
    result = {"outcome": "filled", "price": 2501.0}
    batch = split_writes(
        [
            auction_record("a1", 1, key="k"),
            commit_event("a1", "mm-1", 5),
            commit_event("a1", "mm-1", 4, accepted=False),
            AuctionFinished("a1", "finalized", "filled", result, {"phantoms": []}, 2_000_000),
            PenaltyUpdate("mm-1", penalty),
        ]
    )

    def raw(conn: Any) -> None:
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        apply_sqlite(driver, batch)

    tables = []
    for name, write in (("core", lambda conn: apply_rows(conn, batch)), ("raw", raw)):
        engine = create_engine(f"sqlite:///{tmp_path / name}.db")
        with engine.begin() as conn:
            metadata.create_all(conn)
            conn.execute(
                insert(clients).values(client_id=1, name="c", token_hash="a" * 64, created_at_us=1)
            )
            bidder = BidderRecord("mm-1", bytes(range(32)), 5)
            conn.execute(
                insert(bidders),
                dict(zip(BIDDER_INSERT.names(), BIDDER_INSERT.values(bidder), strict=True)),
            )
            write(conn)
        with engine.connect() as conn:
            tables.append([conn.execute(select(t)).all() for t in (auctions, bid_events, bidders)])
            (row,) = conn.execute(select(auctions)).all()
            (bidder_row,) = conn.execute(select(bidders)).all()
        engine.dispose()
        assert auction_from_row(row) == replace(
            auction_record("a1", 1, key="k"),
            status="finalized",
            outcome="filled",
            result=result,
            competition={"phantoms": []},
            finished_at_us=2_000_000,
        )
        assert bidder_from_row(bidder_row) == replace(bidder, penalty=penalty)
    assert tables[0] == tables[1]


async def test_prune_removes_ended_auctions_and_keeps_every_nonce(store: Store) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.add_bidder("mm-1", bytes(32))
    await store.add_bidder("mm-2", bytes(range(32)))
    ids = ["old-1", "old-2", "old-3", "recent", "open"]
    await store.apply([auction_record(a, client.client_id, key=a) for a in ids])
    await store.apply(
        [
            commit_event("open", "mm-1", 2),
            commit_event("open", "mm-2", 8),
            commit_event("old-1", "mm-1", 9),  # mm-1's highest: only in a pruned auction
            commit_event("old-1", "mm-2", 11, accepted=False),  # refused: not a used nonce
            commit_event("old-2", "mm-2", 4),
            commit_event("old-3", "mm-1", 7),
            commit_event("recent", "mm-1", 5),
        ]
    )
    ended = [("old-1", 100), ("old-2", 300), ("old-3", 200), ("recent", 5_000)]
    await store.apply([AuctionFinished(a, "finalized", "filled", {}, {}, t) for a, t in ended])
    before = await store.last_nonces()
    assert before == {"mm-1": 9, "mm-2": 8}

    # Counted first, nothing removed; then pruned one auction a transaction: the loop
    # goes on until a batch comes back short.
    assert await store.count_ended(1_000) == Pruned(auctions=3, events=4)
    assert len(await store.auction_ids()) == 5
    pruned = await store.prune(1_000, batch_auctions=1)
    assert pruned == Pruned(auctions=3, events=4)
    assert sorted(await store.auction_ids()) == ["open", "recent"]
    for gone in ("old-1", "old-2", "old-3"):
        assert await store.auction(gone) is None
        assert await store.events(gone) == []
    assert await store.auction_by_key(client.client_id, "old-1") is None
    assert [e.nonce for e in await store.events("open")] == [2, 8]
    assert [e.nonce for e in await store.events("recent")] == [5]
    # mm-1's 9 is kept as its nonce mark; mm-2's refused 11 never counted.
    assert await store.last_nonces() == before

    # Open auctions stay whatever their age; a later prune takes what has ended since.
    assert await store.count_ended(10**15) == Pruned(auctions=1, events=1)
    assert await store.prune(10**15) == Pruned(auctions=1, events=1)
    assert await store.auction_ids() == ["open"]
    assert await store.count_ended(10**15) == Pruned()
    assert await store.last_nonces() == before
    assert await store.prune(10**15) == Pruned()
    # New commits above a mark count as before.
    await store.apply([commit_event("open", "mm-1", 12)])
    assert await store.last_nonces() == {"mm-1": 12, "mm-2": 8}
    with pytest.raises(ValueError, match="batch_auctions=0"):
        await store.prune(10**15, batch_auctions=0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="pause_ratio="):
            await store.prune(10**15, pause_ratio=bad)


async def test_auctions_and_event_marks_are_read_for_many_auctions_at_once(
    store: Store,
) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.apply([auction_record(a, client.client_id, key=a) for a in ("a", "b", "c")])
    reveal = replace(commit_event("a", "mm-1", 1), kind="reveal", payload={"salt": "ef" * 32})
    await store.apply(
        [
            commit_event("a", "mm-2", 7),
            commit_event("b", "mm-1", 3),
            commit_event("a", "mm-1", 1, accepted=False),
            reveal,
        ]
    )
    assert await store.event_marks(["a", "b", "c", "nope"]) == {
        "a": [("mm-2", "commit", True), ("mm-1", "commit", False), ("mm-1", "reveal", True)],
        "b": [("mm-1", "commit", True)],
    }
    assert await store.event_marks(["b"]) == {"b": [("mm-1", "commit", True)]}
    assert await store.event_marks([]) == {}
    # The auctions themselves, in one read: those that exist, each once.
    found = await store.auctions(["c", "nope", "a", "a"])
    assert sorted(r.auction_id for r in found) == ["a", "c"]
    assert next(r for r in found if r.auction_id == "a") == await store.auction("a")
    assert await store.auctions([]) == []


async def test_latest_ended_are_the_last_to_end_earliest_first(store: Store) -> None:
    client = await store.add_client("settlement", "a" * 64)
    ids = ["a", "b", "c", "d", "open"]
    await store.apply([auction_record(a, client.client_id, key=a) for a in ids])
    ends = [("c", 300), ("a", 100), ("d", 400), ("b", 200)]
    await store.apply(
        [
            AuctionFinished(a, "finalized" if t != 200 else "aborted", "x", {}, {}, t)
            for a, t in ends
        ]
    )
    assert [r.auction_id for r in await store.latest_ended(2)] == ["c", "d"]
    everything = await store.latest_ended(100)
    assert [r.auction_id for r in everything] == ["a", "b", "c", "d"]  # never the open one
    assert [r.finished_at_us for r in everything] == [100, 200, 300, 400]
    assert everything[1].status == "aborted"
    assert await store.latest_ended(0) == []
    # At or before an end time: the explorer reads back from the latest a page at a time.
    assert [r.auction_id for r in await store.latest_ended(2, 300)] == ["b", "c"]
    assert [r.auction_id for r in await store.latest_ended(9, 299)] == ["a", "b"]
    assert await store.latest_ended(9, 99) == []


async def test_concurrent_prunes_share_the_work(store_factory: object) -> None:
    """Two prunes at once on one database (every ``serve --workers`` process prunes
    under ``service.retention_days``): each auction removed once, no error, no nonce
    lost. On PostgreSQL one batch runs at a time (an advisory lock)."""
    first: Store = store_factory()  # type: ignore[operator]
    second: Store = store_factory()  # type: ignore[operator]
    await first.start()
    await second.start()
    try:
        client = await first.add_client("settlement", "a" * 64)
        await first.add_bidder("mm-1", bytes(32))
        ids = [f"a{i:02d}" for i in range(40)]
        await first.apply([auction_record(a, client.client_id) for a in ids])
        await first.apply([commit_event(a, "mm-1", n) for n, a in enumerate(ids)])
        await first.apply([AuctionFinished(a, "aborted", "aborted", None, None, 1) for a in ids])
        done = await asyncio.gather(
            *(s.prune(10, batch_auctions=3, pause_ratio=0.0) for s in (first, second))
        )
        assert sum(p.auctions for p in done) == 40 and sum(p.events for p in done) == 40
        assert await second.auction_ids() == []
        assert await second.last_nonces() == {"mm-1": 39}
    finally:
        await second.close()
        if second is not first:
            await first.close()


async def test_nonce_marks_only_rise(store: Store) -> None:
    client = await store.add_client("settlement", "a" * 64)
    await store.add_bidder("mm-1", bytes(32))
    for auction_id, nonce in (("first", 30), ("second", 20)):
        await store.apply(
            [auction_record(auction_id, client.client_id), commit_event(auction_id, "mm-1", nonce)]
        )
        await store.apply([AuctionFinished(auction_id, "aborted", "aborted", None, None, 10)])
        await store.prune(100)
        # The second prune's 20 does not lower the 30 the first one kept.
        assert await store.last_nonces() == {"mm-1": 30}


async def test_a_version_1_database_is_migrated(store_factory: object) -> None:
    first: Store = store_factory()  # type: ignore[operator]
    if not isinstance(first, SqlStore):
        pytest.skip("the in-memory store has no schema")
    await first.start()
    client = await first.add_client("settlement", "a" * 64)
    await first.add_bidder("mm-1", bytes(32))
    await first.apply([auction_record("a1", client.client_id), commit_event("a1", "mm-1", 3)])
    await first.apply([AuctionFinished("a1", "finalized", "filled", {}, {}, 10)])
    # What a version 1 program left: no nonce marks, no index on the end time.
    async with first.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE nonce_marks")
        await conn.exec_driver_sql("DROP INDEX ix_auctions_finished")
        await conn.execute(update(schema_version).values(version=1))
    await first.close()

    second: Store = store_factory()  # type: ignore[operator]
    await second.start()
    try:
        assert isinstance(second, SqlStore)
        async with second.engine.connect() as conn:
            found = (await conn.execute(select(func.max(schema_version.c.version)))).scalar()
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("auctions"))
        assert found == SCHEMA_VERSION == 2
        assert "ix_auctions_finished" in {i["name"] for i in indexes}
        assert await second.prune(100) == Pruned(auctions=1, events=1)
        assert await second.last_nonces() == {"mm-1": 3}
    finally:
        await second.close()


async def test_prune_pauses_between_its_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each full batch, ``pause_ratio`` times the batch's own time (read from a
    stand-in clock: 10 ms a batch), so that a server's writes find SQLite free."""
    from phantom_auction.service.store import sql

    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    await store.start()
    try:
        client = await store.add_client("settlement", "a" * 64)
        ids = [f"a{i}" for i in range(5)]
        await store.apply([auction_record(a, client.client_id) for a in ids])
        await store.apply([AuctionFinished(a, "aborted", "aborted", None, None, 1) for a in ids])
        ticks = iter(range(0, 10_000, 10))
        monkeypatch.setattr(sql, "_clock", lambda: next(ticks) / 1000)
        slept: list[float] = []

        async def sleep(seconds: float) -> None:
            slept.append(seconds)

        monkeypatch.setattr(sql, "_pause", sleep)
        assert await store.prune(10, batch_auctions=2, pause_ratio=3.0) == Pruned(5, 0)
        # Batches of 2, 2 and 1: a pause after each full one, none after the last.
        assert slept == pytest.approx([0.03, 0.03])
    finally:
        await store.close()
