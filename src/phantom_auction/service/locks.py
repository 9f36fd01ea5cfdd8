"""The PostgreSQL connections that hold a lock other servers rely on: the schema claim
(:mod:`.claim`) and each ``--workers`` process's liveness lock (:mod:`.notify`).

Such a lock is a lease: it lasts as long as PostgreSQL sees its connection. A killed
process lets go at once (the kernel closes its socket), but a machine that dies or
drops off the network does not close anything, and on Linux's default TCP settings
PostgreSQL would hold its lock for over two hours. So each lock-holding connection:

- asks PostgreSQL to drop it after :data:`FREED_WITHIN_S` of silence (TCP keepalives
  and ``tcp_user_timeout``, set for that session only); and
- is checked by its holder every :data:`HEARTBEAT_S`: a check unanswered for
  :data:`HEARTBEAT_TIMEOUT_S` counts as the lock lost, and the server stops.

The holder gives up (within ``HEARTBEAT_S + HEARTBEAT_TIMEOUT_S``) well before
PostgreSQL can give its lock to another server (no sooner than ``FREED_AFTER_S``), so
two servers never both think they hold it. A holder that was not running meanwhile (a
VM paused, the process stopped) cannot give up in time: before it acts on the lock, it
asks :meth:`Heartbeat.holds`, which checks again when the last answer is older than
:data:`FRESH_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "FREED_AFTER_S",
    "FREED_WITHIN_S",
    "FRESH_S",
    "HEARTBEAT_S",
    "HEARTBEAT_TIMEOUT_S",
    "HOLDER_SILENT_S",
    "Heartbeat",
    "asyncpg_connect_args",
    "connect_lock_holder",
    "holders_quiet_for",
]

_log = logging.getLogger(__name__)

#: How often a holder checks its lock's connection (s).
HEARTBEAT_S: Final = 1.0
#: A check unanswered this long (s) means the connection is gone: the holder stops.
HEARTBEAT_TIMEOUT_S: Final = 5.0
#: An answer at most this old (s) shows the lock is held: older, the holder was not
#: running (a VM pause, SIGSTOP) and checks again before it relies on the lock.
FRESH_S: Final = HEARTBEAT_S + 2.0

# PostgreSQL's side: keepalive probes after 10 s idle, every 2 s, 3 unanswered close the
# connection; data it sent that stays unacknowledged for 15 s closes it too.
_KEEPALIVES_IDLE_S: Final = 10
_KEEPALIVES_INTERVAL_S: Final = 2
_KEEPALIVES_COUNT: Final = 3
_USER_TIMEOUT_MS: Final = 15_000
#: The session settings of a lock-holding connection (each is settable by any user).
LOCK_HOLDER_SETTINGS: Final = {
    "tcp_keepalives_idle": str(_KEEPALIVES_IDLE_S),
    "tcp_keepalives_interval": str(_KEEPALIVES_INTERVAL_S),
    "tcp_keepalives_count": str(_KEEPALIVES_COUNT),
    "tcp_user_timeout": str(_USER_TIMEOUT_MS),
}
#: The soonest (s) PostgreSQL drops a silent holder's connection. The holder has heard
#: nothing since at most one heartbeat before the silence began.
FREED_AFTER_S: Final = (
    min(_USER_TIMEOUT_MS / 1000, _KEEPALIVES_IDLE_S + _KEEPALIVES_INTERVAL_S * _KEEPALIVES_COUNT)
    - HEARTBEAT_S
)
#: The latest (s) it does: a starting server waits this long for a dead server's lock.
FREED_WITHIN_S: Final = max(
    _USER_TIMEOUT_MS / 1000, _KEEPALIVES_IDLE_S + _KEEPALIVES_INTERVAL_S * _KEEPALIVES_COUNT
)


#: A holder whose connection was this quiet (s) may be dead: a live one checks in every
#: :data:`HEARTBEAT_S`.
HOLDER_SILENT_S: Final = 3 * HEARTBEAT_S


async def holders_quiet_for(connection: Any, key: int) -> float | None:
    """Seconds since the busiest holder of advisory lock ``key`` last used its
    connection (its heartbeat keeps this under :data:`HOLDER_SILENT_S`); None if no
    holder is visible (gone meanwhile, or another role's without the right to see it)."""
    return await connection.fetchval(  # type: ignore[no-any-return]
        "SELECT extract(epoch FROM clock_timestamp() - max(a.state_change))::float8 "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid = $1 AND l.objid = $2",
        (key >> 32) & 0xFFFFFFFF,
        key & 0xFFFFFFFF,
    )


def asyncpg_connect_args(database_url: str) -> tuple[str, dict[str, str]]:
    """The asyncpg DSN of a ``postgresql+asyncpg://`` URL, and its server settings
    (``?search_path=`` as the store reads it)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    settings = {k: str(v) for k, v in url.query.items() if k == "search_path"}
    bare = url.set(drivername="postgresql", query={})
    return bare.render_as_string(hide_password=False), settings


async def connect_lock_holder(database_url: str) -> Any:
    """An asyncpg connection to ``database_url`` that PostgreSQL drops after
    :data:`FREED_WITHIN_S` of silence, for holding session advisory locks. The settings
    are SET after connecting, not sent at startup (PostgreSQL before 12 has no
    ``tcp_user_timeout``, and a pooler may refuse unknown startup parameters): one that
    is refused is logged, and the lock is held without it."""
    import asyncpg  # type: ignore[import-untyped]

    dsn, settings = asyncpg_connect_args(database_url)
    connection = await asyncpg.connect(dsn, server_settings=settings or None, timeout=10)
    for name, value in LOCK_HOLDER_SETTINGS.items():
        try:
            await connection.execute(f"SET {name} = {value}")
        except Exception as exc:  # an older server, a pooler: serve on, say so
            _log.warning("lock connection: SET %s = %s refused: %s", name, value, exc)
    return connection


class Heartbeat:
    """Checks a lock-holding ``connection`` every :data:`HEARTBEAT_S`; calls
    ``on_lost(what)`` once if it closes or a check goes unanswered for
    :data:`HEARTBEAT_TIMEOUT_S` (no other query may run on it meanwhile)."""

    def __init__(self, connection: Any, what: str, on_lost: Callable[[str], None] | None) -> None:
        self.connection = connection
        self.what = what
        self.on_lost = on_lost
        self._stopped = False
        loop = asyncio.get_running_loop()
        #: When a check last answered (the loop's monotonic clock, which runs on while
        #: the process is stopped).
        self.answered_at = loop.time()
        self._waiters: list[asyncio.Future[None]] = []
        connection.add_termination_listener(self._closed)
        self._task = loop.create_task(self._beat())

    async def holds(self) -> bool:
        """Whether the lock is still held: at once if a check answered within
        :data:`FRESH_S`, else once the next check answers (True) or fails (False)."""
        loop = asyncio.get_running_loop()
        while not self._stopped:
            if loop.time() - self.answered_at <= FRESH_S:
                return True
            waiter = loop.create_future()
            self._waiters.append(waiter)
            await waiter
        return False

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _closed(self, _connection: Any) -> None:
        self._lost()

    def _lost(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._wake()
            if self.on_lost is not None:
                self.on_lost(self.what)

    async def _beat(self) -> None:
        while not self._stopped:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await asyncio.wait_for(self.connection.fetchval("SELECT 1"), HEARTBEAT_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a timeout, or the connection failed
                if not self._stopped:
                    _log.error("%s did not answer: %r", self.what, exc)
                self._lost()
            else:
                self.answered_at = asyncio.get_running_loop().time()
                self._wake()

    async def stop(self) -> None:
        """Stop checking (before the holder closes the connection itself)."""
        self._stopped = True
        self._wake()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
