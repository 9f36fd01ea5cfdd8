"""The SQL :class:`~.interface.Store`: SQLAlchemy Core on SQLite or PostgreSQL.

Statements take their columns from :mod:`.schema`; SQLite batches go through the raw
writer of :mod:`.sqlite` in one thread hop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from sqlalchemy import bindparam, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import Executable, Select

from .interface import PRUNE_BATCH_AUCTIONS, PRUNE_PAUSE_RATIO, Store, check_prune_pace
from .records import (
    REVOKED_PREFIX,
    AuctionRecord,
    AuctionStatus,
    BidderRecord,
    BidEvent,
    ClientRecord,
    EventMark,
    Pruned,
    StoreConflict,
    Write,
    WriteBatch,
    now_us,
    split_writes,
)
from .schema import (
    BIDDER_INSERT,
    EVENT_INSERT,
    FINISH_UPDATE,
    MIGRATIONS,
    OPEN_INSERT,
    PENALTY_UPDATE,
    SCHEMA_VERSION,
    RowWrite,
    auction_from_row,
    auctions,
    bid_events,
    bidder_from_row,
    bidders,
    clients,
    event_from_row,
    metadata,
    nonce_marks,
    schema_version,
)
from .sqlite import (
    CHECKPOINT_EVERY_RECORDS,
    apply_sqlite,
    checkpoint,
    no_autocheckpoint,
    private_sqlite_file,
    sqlite_pragmas,
    start_wal_over,
)

__all__ = ["SqlStore", "apply_rows", "core_statement"]

_log = logging.getLogger(__name__)

# The prune's pacing: its own names, so that a test can stand in for them without
# stopping every other clock and sleep in the process (heartbeats, other threads' loops).
_clock = time.perf_counter
_pause = asyncio.sleep


def core_statement(write: RowWrite) -> tuple[Executable, list[str]]:
    """``write`` as a Core statement, with the parameter names in its values' order."""
    if write.key is None:
        return insert(write.table), write.names()
    names = [f"b_{name}" for name in write.names()]  # a bind name may not be a column's
    statement = (
        update(write.table)
        .where(write.key == bindparam(names[-1]))
        .values({c.name: bindparam(n) for c, n in zip(write.columns, names, strict=False)})
    )
    if write.while_open:
        statement = statement.where(write.table.c.status == "open")
    return statement, names


#: Each kind of write as a Core statement, in the order of a :data:`~.records.WriteBatch`.
_PLAN = tuple(
    (write, *core_statement(write))
    for write in (OPEN_INSERT, EVENT_INSERT, FINISH_UPDATE, PENALTY_UPDATE)
)


def apply_rows(conn: Connection, batch: WriteBatch) -> None:
    """Write one batch on ``conn`` (inside its transaction), in dependency order."""
    kinds: tuple[Sequence[object], ...] = batch
    for (write, statement, names), records in zip(_PLAN, kinds, strict=True):
        if records:
            conn.execute(
                statement, [dict(zip(names, write.values(r), strict=True)) for r in records]
            )


#: The PostgreSQL advisory lock a prune batch holds for its transaction (any int64; see
#: ``notify.RECOVERY_LOCK`` for the other).
PRUNE_LOCK: Final = 0x70A5_0000_0000_0002


def _ended_before(before_us: int) -> Select[tuple[str]]:
    """The ids of the auctions a prune at ``before_us`` removes (open ones never)."""
    return select(auctions.c.auction_id).where(
        auctions.c.finished_at_us < before_us, auctions.c.status != "open"
    )


class SqlStore(Store):
    """SQLAlchemy Core on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
        sqlite_synchronous: str = "full",
        checkpoint_every_records: int = CHECKPOINT_EVERY_RECORDS,
    ) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"database_url={url!r}: only sqlite and postgresql are supported")
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            private_sqlite_file(Path(parsed.database))
        connect_args = dict(connect_args or {})
        if self.dialect == "postgresql" and "search_path" in parsed.query:
            # `?search_path=schema`: the tables (and serve --workers' channels) live in
            # that schema, so deployments can share a database.
            settings = dict(connect_args.get("server_settings") or {})
            settings["search_path"] = str(parsed.query["search_path"])
            connect_args["server_settings"] = settings
            parsed = parsed.difference_update_query(["search_path"])
        self.engine: AsyncEngine = create_async_engine(parsed, echo=echo, connect_args=connect_args)
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        #: SQLite: the writer thread's connection (opened by its first batch).
        self._writer_connection: PoolProxiedConnection | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_path = ""
        self._checkpoint_running = False
        # Set when a checkpoint has copied the WAL's bulk: the writer then copies the
        # rest itself before its next batch, and that batch starts the WAL over.
        self._start_wal_over = False
        self._written_since_checkpoint = 0
        #: SQLite: records written between two WAL checkpoints.
        self.checkpoint_every_records = checkpoint_every_records
        if self.dialect == "sqlite":
            pragmas = sqlite_pragmas(sqlite_synchronous)
            event.listen(self.engine.sync_engine, "connect", pragmas)
            self._sync_engine = create_engine(parsed.set(drivername="sqlite"), echo=echo)
            event.listen(self._sync_engine, "connect", pragmas)
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            # The writer never checkpoints (a checkpoint copies the WAL into the database
            # and fsyncs it: hundreds of ms every few MB, during which no ack or result
            # could be made durable); a second connection does, in its own thread, while
            # the writer goes on appending to the WAL (a PASSIVE checkpoint blocks no one).
            if parsed.database not in (None, "", ":memory:"):
                event.listen(self._sync_engine, "connect", no_autocheckpoint)
                self._checkpointer = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="sqlite-checkpoint"
                )
                self._checkpoint_path = str(parsed.database)
        # SQLite allows one writer: serialise ours instead of waiting on busy_timeout.
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        async with self._write_lock, self.engine.begin() as conn:
            await conn.run_sync(self._create_or_migrate)

    @staticmethod
    def _create_or_migrate(conn: Connection) -> None:
        metadata.create_all(conn, checkfirst=True)
        found = conn.execute(select(func.max(schema_version.c.version))).scalar()
        if found is None:
            conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
            return
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"database schema version {found} is newer than this program's "
                f"({SCHEMA_VERSION}): upgrade phantom-auction"
            )
        for version in range(found, SCHEMA_VERSION):
            for statement in MIGRATIONS[version]:
                conn.exec_driver_sql(statement)
            conn.execute(insert(schema_version).values(version=version + 1))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
        if self._writer is not None and self._sync_engine is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._writer, self._close_writer_connection)
            self._writer.shutdown(wait=True)

    async def _write(self, conn_work: Any) -> Any:
        async with self._write_lock, self.engine.begin() as conn:
            return await conn_work(conn)

    async def add_client(self, name: str, token_hash: str) -> ClientRecord:
        created = now_us()

        async def work(conn: AsyncConnection) -> int:
            exists = await conn.execute(select(clients.c.client_id).where(clients.c.name == name))
            if exists.first() is not None:
                raise StoreConflict("name", name)
            row = await conn.execute(
                insert(clients)
                .values(name=name, token_hash=token_hash, created_at_us=created)
                .returning(clients.c.client_id)
            )
            return int(row.scalar_one())

        try:
            client_id = await self._write(work)
        except IntegrityError:
            raise StoreConflict("name", name) from None
        return ClientRecord(client_id, name, created)

    async def client_by_token_hash(self, token_hash: str) -> ClientRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(clients).where(clients.c.token_hash == token_hash))
            ).first()
        return None if row is None else ClientRecord(row.client_id, row.name, row.created_at_us)

    async def add_bidder(self, bidder_id: str, public_key: bytes) -> BidderRecord:
        record = BidderRecord(bidder_id, bytes(public_key), now_us())

        async def work(conn: AsyncConnection) -> None:
            exists = await conn.execute(
                select(bidders.c.bidder_id).where(bidders.c.bidder_id == bidder_id)
            )
            if exists.first() is not None:
                raise StoreConflict("bidder_id", bidder_id)
            await conn.execute(
                insert(bidders),
                dict(zip(BIDDER_INSERT.names(), BIDDER_INSERT.values(record), strict=True)),
            )

        try:
            await self._write(work)
        except IntegrityError:
            raise StoreConflict("bidder_id", bidder_id) from None
        return record

    async def bidder(self, bidder_id: str) -> BidderRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(bidders).where(bidders.c.bidder_id == bidder_id))
            ).first()
        return None if row is None else bidder_from_row(row)

    async def clients(self) -> list[ClientRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(clients).order_by(clients.c.client_id))
            return [
                ClientRecord(
                    r.client_id, r.name, r.created_at_us, r.token_hash.startswith(REVOKED_PREFIX)
                )
                for r in rows
            ]

    async def revoke_client(self, name: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            row = (
                await conn.execute(select(clients.c.client_id).where(clients.c.name == name))
            ).first()
            if row is None:
                return False
            await conn.execute(
                update(clients)
                .where(clients.c.client_id == row.client_id)
                .values(token_hash=f"{REVOKED_PREFIX}{row.client_id}")
            )
            return True

        return bool(await self._write(work))

    async def bidders(self) -> list[BidderRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(bidders).order_by(bidders.c.bidder_id))
            return [bidder_from_row(r) for r in rows]

    async def remove_bidder(self, bidder_id: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            done = await conn.execute(delete(bidders).where(bidders.c.bidder_id == bidder_id))
            return bool(done.rowcount)

        return bool(await self._write(work))

    async def apply(self, writes: Sequence[Write]) -> None:
        batch = split_writes(writes)
        if not any(batch):
            return
        if self._sync_engine is not None:
            # SQLite: the whole transaction in one hop to the writer thread (aiosqlite
            # would hop to its thread and back for every statement).
            loop = asyncio.get_running_loop()
            async with self._write_lock:
                await loop.run_in_executor(self._writer, self._apply_in_thread, batch)
            self._written_since_checkpoint += len(writes)
            if (
                self._written_since_checkpoint >= self.checkpoint_every_records
                and not self._checkpoint_running
                and self._checkpointer is not None
            ):
                self._written_since_checkpoint = 0
                self._checkpoint_running = True
                done = loop.run_in_executor(self._checkpointer, self._checkpoint_in_thread)
                done.add_done_callback(self._checkpoint_done)
            return
        async with self._write_lock, self.engine.begin() as conn:
            await conn.run_sync(apply_rows, batch)

    def _checkpoint_in_thread(self) -> None:
        checkpoint(self._checkpoint_path)

    def _checkpoint_done(self, done: asyncio.Future[None]) -> None:
        self._checkpoint_running = False
        if done.cancelled():
            return
        if done.exception() is not None:
            _log.warning("SQLite checkpoint failed: %r", done.exception())
        else:
            self._start_wal_over = True

    def _apply_in_thread(self, batch: WriteBatch) -> None:
        # One connection kept by the writer thread (made by the engine's pool, so its
        # connect hooks set the pragmas), one transaction per batch: a pool checkout,
        # begin events and the rollback on return cost ~90 us per transaction here.
        raw = self._writer_connection
        if raw is None:
            assert self._sync_engine is not None
            raw = self._writer_connection = self._sync_engine.raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        if self._start_wal_over:
            self._start_wal_over = False
            try:
                start_wal_over(driver)
            except sqlite3.Error as exc:  # the batch is still written; next time, then
                _log.warning("SQLite checkpoint on the writer failed: %r", exc)
        try:
            # sqlite3 begins the transaction before the first INSERT or UPDATE.
            apply_sqlite(driver, batch)
            driver.commit()
        except BaseException:
            try:
                driver.rollback()
            except sqlite3.Error:
                # The connection itself is broken: the next batch gets a new one.
                self._writer_connection = None
                raw.invalidate()
            raise

    def _close_writer_connection(self) -> None:
        raw, self._writer_connection = self._writer_connection, None
        if raw is not None:
            raw.close()
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    async def auction(self, auction_id: str) -> AuctionRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(auctions).where(auctions.c.auction_id == auction_id))
            ).first()
        return None if row is None else auction_from_row(row)

    async def auctions(self, auction_ids: Sequence[str]) -> list[AuctionRecord]:
        if not auction_ids:
            return []
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(auctions).where(auctions.c.auction_id.in_(list(auction_ids)))
            )
            return [auction_from_row(row) for row in rows]

    async def auction_by_key(self, client_id: int, idempotency_key: str) -> AuctionRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(auctions).where(
                        auctions.c.client_id == client_id,
                        auctions.c.idempotency_key == idempotency_key,
                    )
                )
            ).first()
        return None if row is None else auction_from_row(row)

    async def open_auctions(self) -> list[AuctionRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(auctions)
                .where(auctions.c.status == "open")
                .order_by(auctions.c.opened_at_us)
            )
            return [auction_from_row(r) for r in rows]

    async def events(self, auction_id: str) -> list[BidEvent]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(bid_events)
                .where(bid_events.c.auction_id == auction_id)
                .order_by(bid_events.c.event_id)
            )
            return [event_from_row(r) for r in rows]

    async def event_marks(self, auction_ids: Sequence[str]) -> dict[str, list[EventMark]]:
        columns = bid_events.c
        marks: dict[str, list[EventMark]] = {}
        if not auction_ids:
            return marks
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(columns.auction_id, columns.bidder_id, columns.kind, columns.accepted)
                .where(columns.auction_id.in_(list(auction_ids)))
                .order_by(columns.auction_id, columns.event_id)
            )
            for auction_id, bidder_id, kind, accepted in rows:
                marks.setdefault(auction_id, []).append((bidder_id, kind, bool(accepted)))
        return marks

    async def last_nonces(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(bid_events.c.bidder_id, func.max(bid_events.c.nonce))
                .where(bid_events.c.kind == "commit", bid_events.c.accepted.is_(True))
                .group_by(bid_events.c.bidder_id)
            )
            last = {bidder: int(nonce) for bidder, nonce in rows if nonce is not None}
            for bidder, nonce in await conn.execute(select(nonce_marks)):
                last[bidder] = max(last.get(bidder, nonce), nonce)
            return last

    async def prune(
        self,
        ended_before_us: int,
        *,
        batch_auctions: int = PRUNE_BATCH_AUCTIONS,
        pause_ratio: float = PRUNE_PAUSE_RATIO,
    ) -> Pruned:
        check_prune_pace(batch_auctions, pause_ratio)
        total = Pruned()
        while True:
            # One short transaction a batch, behind this process's own writes (the lock)
            # and, on SQLite, any other process's (busy_timeout).
            started = _clock()
            done: Pruned = await self._write(
                lambda conn: self._prune_batch(conn, ended_before_us, batch_auctions)
            )
            total += done
            if done.auctions < batch_auctions:
                return total
            # Then a while for everyone else: a server's writes on SQLite wait in its
            # busy handler, which retries after 1, 2, 5, 10 ms..., and would seldom find
            # the database free between batches sent back to back; and the deletes cost
            # CPU (~0.3 ms an auction at 20 bidders) that a loaded server needs.
            await _pause(pause_ratio * (_clock() - started))

    async def _prune_batch(self, conn: AsyncConnection, before_us: int, limit: int) -> Pruned:
        if self.dialect != "sqlite":
            # One batch at a time across processes and hosts (every ``serve --workers``
            # process prunes under ``service.retention_days``, a cron job may too):
            # two batches picking the same auctions would wait on each other's row
            # locks, or deadlock. SQLite's single writer does this already.
            await conn.execute(select(func.pg_advisory_xact_lock(PRUNE_LOCK)))
        ended = await conn.execute(
            _ended_before(before_us).order_by(auctions.c.finished_at_us).limit(limit)
        )
        ids = [row[0] for row in ended]
        if not ids:
            return Pruned()
        marks = await conn.execute(
            select(bid_events.c.bidder_id, func.max(bid_events.c.nonce))
            .where(
                bid_events.c.auction_id.in_(ids),
                bid_events.c.kind == "commit",
                bid_events.c.accepted.is_(True),
                bid_events.c.nonce.is_not(None),
            )
            .group_by(bid_events.c.bidder_id)
        )
        raised = [{"bidder_id": bidder, "nonce": int(nonce)} for bidder, nonce in marks]
        if raised:
            await conn.execute(self._raise_nonce_marks(), raised)
        events = await conn.execute(delete(bid_events).where(bid_events.c.auction_id.in_(ids)))
        gone = await conn.execute(delete(auctions).where(auctions.c.auction_id.in_(ids)))
        return Pruned(gone.rowcount, events.rowcount)

    async def count_ended(self, ended_before_us: int) -> Pruned:
        ended = _ended_before(ended_before_us)
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(func.count()).select_from(ended.subquery()))
            events = await conn.scalar(
                select(func.count()).where(bid_events.c.auction_id.in_(ended))
            )
        return Pruned(int(found or 0), int(events or 0))

    def _raise_nonce_marks(self) -> Executable:
        """Insert a bidder's nonce mark, or raise it to the new nonce if that is higher
        (an upsert: two prunes at once cannot both insert one bidder)."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as upsert
        else:
            from sqlalchemy.dialects.postgresql import insert as upsert  # type: ignore[assignment]
        statement = upsert(nonce_marks)
        old, new = nonce_marks.c.nonce, statement.excluded.nonce
        # SQLite's max() of two arguments is a scalar function, PostgreSQL's greatest().
        higher = func.max(old, new) if self.dialect == "sqlite" else func.greatest(old, new)
        return statement.on_conflict_do_update(
            index_elements=[nonce_marks.c.bidder_id], set_={"nonce": higher}
        )

    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        query = select(auctions.c.auction_id).order_by(auctions.c.opened_at_us)
        if status is not None:
            query = query.where(auctions.c.status == status)
        async with self.engine.connect() as conn:
            return [r[0] for r in await conn.execute(query)]

    async def latest_ended(self, limit: int, ended_by_us: int | None = None) -> list[AuctionRecord]:
        # Newest first down ix_auctions_finished (an open auction has no end time), then
        # turned round.
        query = (
            select(auctions)
            .where(auctions.c.finished_at_us.is_not(None), auctions.c.status != "open")
            .order_by(auctions.c.finished_at_us.desc())
            .limit(max(limit, 0))
        )
        if ended_by_us is not None:
            query = query.where(auctions.c.finished_at_us <= ended_by_us)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [auction_from_row(row) for row in reversed(rows)]
