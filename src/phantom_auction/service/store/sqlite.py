"""The SQLite writer: the batch's SQL built from the schema's columns, and the file's care.

:class:`~.sql.SqlStore` writes SQLite batches here, on the raw ``sqlite3`` connection in
one thread (plain ``executemany`` with tuples: SQLAlchemy Core spent more time building
parameters than SQLite spent writing them). The statements come from the same
:class:`~.schema.RowWrite` column lists as the Core ones, so both write the same columns.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .records import WriteBatch
from .schema import EVENT_INSERT, FINISH_UPDATE, OPEN_INSERT, PENALTY_UPDATE, RowWrite

__all__ = [
    "CHECKPOINT_EVERY_RECORDS",
    "apply_sqlite",
    "checkpoint",
    "no_autocheckpoint",
    "private_sqlite_file",
    "sqlite_pragmas",
    "sqlite_statement",
    "start_wal_over",
]

#: Records written between two checkpoints of the SQLite WAL (see ``SqlStore``).
CHECKPOINT_EVERY_RECORDS = 2000
#: The WAL file is cut back to this (bytes) when the writer starts it over.
WAL_SIZE_LIMIT = 64 << 20


def sqlite_statement(write: RowWrite) -> str:
    """The ``INSERT`` or ``UPDATE`` of ``write`` with ``?`` placeholders, in its values' order."""
    table = write.table.name
    if write.key is None:
        names = write.names()
        return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    assignments = ", ".join(f"{c.name} = ?" for c in write.columns)
    guard = " AND status = 'open'" if write.while_open else ""
    return f"UPDATE {table} SET {assignments} WHERE {write.key.name} = ?{guard}"


#: Each kind of write with its statement, in the order of a :data:`~.records.WriteBatch`.
_PLAN = tuple(
    (write, sqlite_statement(write))
    for write in (OPEN_INSERT, EVENT_INSERT, FINISH_UPDATE, PENALTY_UPDATE)
)


def apply_sqlite(connection: sqlite3.Connection, batch: WriteBatch) -> None:
    """Write one batch on the raw ``connection`` (inside its transaction), in
    dependency order: opened auctions, bid events, finished auctions, penalties."""
    cursor = connection.cursor()
    try:
        kinds: tuple[Sequence[object], ...] = batch
        for (write, statement), records in zip(_PLAN, kinds, strict=True):
            if records:
                cursor.executemany(statement, [write.values(r) for r in records])
    finally:
        cursor.close()


def private_sqlite_file(path: Path) -> None:
    """Make ``path`` (and its -wal, -shm, -journal files) readable by this user only.

    The database holds every open auction's phantom seed: a reader could see the phantom
    bids before the reveal. A missing directory is created 0700; the file is created 0600
    (SQLite gives its WAL and shared-memory files the database file's mode) and an
    existing one is narrowed to 0600.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = path.with_name(path.name + suffix)
        if part.exists() and part.stat().st_mode & 0o077:
            part.chmod(0o600)


def checkpoint(path: str) -> None:
    """Copy the WAL of the database at ``path`` into it (PASSIVE: blocks no writer)."""
    # Its own short-lived connection: nothing is shared with the writer's thread.
    connection = sqlite3.connect(path, timeout=10.0)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        connection.close()


def start_wal_over(connection: sqlite3.Connection) -> None:
    """On the writer's ``connection``, between its transactions: copy what the WAL got
    since the last checkpoint, so that its next transaction starts the WAL over.

    SQLite starts the WAL over only when a write transaction begins after a checkpoint
    has copied all of it. A checkpoint on another connection never gets there under
    steady writes (frames arrive while it copies): the WAL then grew without bound,
    7.6 GB in 200 s at 100 auctions/s. Here, after that checkpoint has copied the bulk,
    only the last few frames are left (a copy and an fsync of a few ms).
    """
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """Connect hook: this connection never checkpoints (a second one does), and cuts the
    WAL file back to :data:`WAL_SIZE_LIMIT` when it starts the WAL over."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def sqlite_pragmas(synchronous: str) -> Any:
    """A connect hook setting WAL, ``synchronous`` (``full`` or ``normal``), foreign keys."""
    if synchronous not in ("full", "normal"):
        raise ValueError(f"sqlite_synchronous={synchronous!r}: must be 'full' or 'normal'")

    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL + FULL: each commit is fsynced to the log before it returns (the ack rule);
        # WAL + NORMAL: written to the OS before it returns (survives a process crash).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    return set_pragmas
