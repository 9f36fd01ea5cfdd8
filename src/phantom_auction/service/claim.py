"""One deployment per PostgreSQL schema: the claim a server holds on its store.

A server that starts ends the auctions its store holds open (crash recovery). A second
single-process ``serve`` on the same schema would end the running server's auctions.
So every server holds a session advisory lock on its schema for its whole life:

- a single-process ``serve`` holds it **exclusively**;
- each process of ``serve --workers N`` holds it **shared**. Those processes already
  recover only the auctions of processes that are gone (:mod:`.notify`), so any number
  of them may share a schema.

Either kind is refused while the other is held. The lock goes with the connection, so a
killed server lets go as soon as PostgreSQL sees its socket close. A server starting
right after a crash waits up to :data:`CLAIM_WAIT_S` for that. A running server whose
connection is lost (the database restarted) has lost its claim: ``on_lost`` is told, and
``serve`` stops (its supervisor or service manager starts it again), rather than serve
on while another server may take the schema. SQLite stores are claimed with ``flock`` on
their file instead (``serve``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import Any, Final

from .notify import asyncpg_connect_args

__all__ = ["CLAIM_WAIT_S", "SchemaClaim", "SchemaInUse"]

#: How long a starting server waits for the schema's lock (s): a crashed server's
#: connection may take a moment to be closed on PostgreSQL's side.
CLAIM_WAIT_S: Final = 5.0
_RETRY_S: Final = 0.1


class SchemaInUse(RuntimeError):
    """Another server holds the store's schema in the other mode."""

    def __init__(self, schema: str, shared: bool) -> None:
        self.schema = schema
        held_by = "a single-process serve" if shared else "another server"
        super().__init__(
            f"schema {schema!r} is served by {held_by} (one single-process serve, or "
            "the processes of serve --workers, per schema): stop it first"
        )


def claim_key(schema: str) -> int:
    """The advisory lock key of ``schema`` (a signed int64; locks are database-wide)."""
    digest = hashlib.sha256(b"phantom-auction serve\0" + schema.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SchemaClaim:
    """The lock this server holds on its PostgreSQL schema (``shared`` for ``--workers``)."""

    def __init__(
        self,
        database_url: str,
        *,
        shared: bool,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.dsn, self.server_settings = asyncpg_connect_args(database_url)
        self.shared = shared
        #: Called (with what was lost) if the lock's connection closes while held.
        self.on_lost = on_lost
        self._connection: Any = None

    async def take(self, wait_s: float = CLAIM_WAIT_S) -> None:
        """Hold the lock, trying for ``wait_s`` seconds; :class:`SchemaInUse` if it stays
        held in the other mode."""
        import asyncpg  # type: ignore[import-untyped]

        connection = await asyncpg.connect(
            self.dsn, server_settings=self.server_settings or None, timeout=10
        )
        try:
            schema = str(await connection.fetchval("SELECT current_schema()"))
            mode = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
            deadline = time.monotonic() + wait_s
            while not await connection.fetchval(f"SELECT {mode}($1)", claim_key(schema)):
                if time.monotonic() >= deadline:
                    raise SchemaInUse(schema, self.shared)
                await asyncio.sleep(_RETRY_S)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        connection.add_termination_listener(self._closed)

    def _closed(self, connection: Any) -> None:
        if connection is self._connection and self.on_lost is not None:
            self.on_lost("the PostgreSQL connection that holds this server's schema claim")

    async def release(self) -> None:
        """Let go of the lock (closing its connection)."""
        connection, self._connection = self._connection, None  # a close we asked for
        if connection is not None:
            await connection.close()
