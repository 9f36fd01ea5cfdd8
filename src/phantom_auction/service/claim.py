"""One deployment per PostgreSQL schema: the claim a server holds on its store.

A server that starts ends the auctions its store holds open (crash recovery). A second
single-process ``serve`` on the same schema would end the running server's auctions.
So every server holds a session advisory lock on its schema for its whole life:

- a single-process ``serve`` holds it **exclusively**;
- each process of ``serve --workers N`` holds it **shared**. Those processes already
  recover only the auctions of processes that are gone (:mod:`.notify`), so any number
  of them may share a schema.

Either kind is refused while the other is held. The lock goes with the connection (a
lease, :mod:`.locks`): a killed server lets go as soon as PostgreSQL sees its socket close, a
server whose machine died or dropped off the network within
:data:`~.locks.FREED_WITHIN_S`. A starting server finding the lock held is refused
after a second if the holder still uses its connection (its heartbeat), and otherwise
waits up to :data:`CLAIM_WAIT_S` for PostgreSQL to drop it. A running server whose
connection is lost (the database restarted) or stops answering has lost its claim:
``on_lost`` is told, and ``serve`` stops (its supervisor or service manager starts it
again), rather than serve on while another server may take the schema. SQLite stores
are claimed with ``flock`` on their file instead (``serve``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from .locks import (
    FREED_WITHIN_S,
    HOLDER_SILENT_S,
    Heartbeat,
    connect_lock_holder,
    holders_quiet_for,
)

__all__ = ["CLAIM_WAIT_S", "SchemaClaim", "SchemaInUse"]

_log = logging.getLogger(__name__)

#: How long a starting server waits for the schema's lock (s): a crashed server's
#: connection may take up to :data:`~.locks.FREED_WITHIN_S` to be dropped on
#: PostgreSQL's side.
CLAIM_WAIT_S: Final = FREED_WITHIN_S + 2.0
#: Tried this long (s) before the holder is looked at: a killed server's lock goes as
#: soon as PostgreSQL sees its socket close, while its connection still looks busy.
_GRACE_S: Final = 1.0
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
        self.database_url = database_url
        self.shared = shared
        #: Called (with what was lost) if the lock's connection closes or stops
        #: answering while held.
        self.on_lost = on_lost
        self._connection: Any = None
        self._heartbeat: Heartbeat | None = None

    async def take(self, wait_s: float = CLAIM_WAIT_S) -> None:
        """Hold the lock; :class:`SchemaInUse` if it stays held in the other mode by a
        server that answers (after 1 s), or by any server for ``wait_s`` seconds (one
        whose machine died is let go within :data:`~.locks.FREED_WITHIN_S`)."""
        connection = await connect_lock_holder(self.database_url)
        try:
            schema = str(await connection.fetchval("SELECT current_schema()"))
            key = claim_key(schema)
            mode = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
            started, warned = time.monotonic(), False
            while not await connection.fetchval(f"SELECT {mode}($1)", key):
                tried = time.monotonic() - started
                if tried >= wait_s:
                    raise SchemaInUse(schema, self.shared)
                if tried >= min(_GRACE_S, wait_s):
                    quiet = await holders_quiet_for(connection, key)
                    if quiet is not None and quiet < HOLDER_SILENT_S:
                        raise SchemaInUse(schema, self.shared)  # alive: do not wait
                    if not warned:
                        warned = True
                        _log.warning(
                            "schema %r is held by a server that has not answered for "
                            "%s: waiting up to %.0f s for PostgreSQL to drop it",
                            schema,
                            "a while" if quiet is None else f"{quiet:.0f} s",
                            wait_s,
                        )
                await asyncio.sleep(_RETRY_S)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        what = "the PostgreSQL connection that holds this server's schema claim"
        self._heartbeat = Heartbeat(connection, what, self._lost)

    def _lost(self, what: str) -> None:
        if self._connection is not None and self.on_lost is not None:
            self.on_lost(what)

    async def holds(self) -> bool:
        """Whether this server still holds its claim (:meth:`.locks.Heartbeat.holds`)."""
        heartbeat = self._heartbeat
        return heartbeat is not None and await heartbeat.holds()

    async def release(self) -> None:
        """Let go of the lock (closing its connection)."""
        connection, self._connection = self._connection, None  # a close we asked for
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            await heartbeat.stop()
        if connection is not None:
            await connection.close()
