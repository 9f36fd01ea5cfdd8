"""Persistence of the live service behind one small interface (httpx-style swappable backends).

:class:`Store` is what the service needs: settlement clients (bearer-token hashes),
bidders (Ed25519 public keys and penalty state), auctions and the append-only log of
every commit and reveal with its verdict. :meth:`Store.apply` writes a batch of
:data:`Write` records in ONE transaction and returns only once it is durable, so the
service can group-commit many acks behind a single fsync.

Backends, chosen by URL in :func:`open_store`:

- ``sqlite+aiosqlite:///path.db`` — :class:`SqlStore` on SQLite in WAL mode with
  ``synchronous=FULL`` (a commit survives a crash of the process and of the machine);
- ``postgresql+asyncpg://user:pw@host/db`` — :class:`SqlStore` on PostgreSQL;
- ``memory://`` — :class:`MemoryStore`, for unit tests (not durable).

The rooms: :mod:`.records` (what is kept), :mod:`.interface` (the :class:`Store`
contract), :mod:`.memory`, :mod:`.schema` (tables; each column written once),
:mod:`.sql` (Core statements; :class:`SqlStore`), :mod:`.sqlite` (the SQLite writer).
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

from .interface import Store
from .memory import MemoryStore
from .records import (
    REVOKED_PREFIX,
    AuctionFinished,
    AuctionRecord,
    AuctionStatus,
    BidderRecord,
    BidEvent,
    ClientRecord,
    EventMark,
    PenaltyUpdate,
    Pruned,
    StoreConflict,
    Write,
    compact_json,
    now_us,
)
from .schema import SCHEMA_VERSION, schema_version
from .sql import SqlStore

__all__ = [
    "REVOKED_PREFIX",
    "SCHEMA_VERSION",
    "AuctionFinished",
    "AuctionRecord",
    "AuctionStatus",
    "BidEvent",
    "BidderRecord",
    "ClientRecord",
    "EventMark",
    "MemoryStore",
    "PenaltyUpdate",
    "Pruned",
    "SqlStore",
    "Store",
    "StoreConflict",
    "Write",
    "compact_json",
    "describe_store",
    "normalize_database_url",
    "now_us",
    "open_store",
    "schema_version",
]


def describe_store(store: Store) -> str:
    """The store for a log line: its URL without password, or ``memory://``."""
    if isinstance(store, SqlStore):
        return make_url(store.url).render_as_string(hide_password=True)
    return "memory:// (not durable)" if not store.durable else type(store).__name__


def normalize_database_url(url: str) -> str:
    """Add the async driver to a bare ``sqlite://`` or ``postgresql://`` URL."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+asyncpg://" + url.removeprefix(bare)
    return url


def open_store(url: str, *, sqlite_synchronous: str = "full") -> Store:
    """The store for ``url``: ``memory://``, ``sqlite+aiosqlite:///…`` or
    ``postgresql+asyncpg://…`` (bare ``sqlite://`` and ``postgresql://`` get the async
    driver). Call :meth:`Store.start` before use.
    """
    if url in ("memory://", "memory:"):
        return MemoryStore()
    url = normalize_database_url(url)
    try:
        return SqlStore(url, sqlite_synchronous=sqlite_synchronous)
    except ValueError:
        raise
    except Exception as exc:  # SQLAlchemy's URL and driver errors: say which URL.
        raise ValueError(f"database_url={url!r}: {exc}") from exc
