"""Persistence of the live service behind one small interface (httpx-style swappable backends).

Past 600 lines with three back-ends in one file; the split into a ``store/`` package with
columns written once is open work (issue 15).

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

Times are unix microseconds (integers, exact on every backend); JSON documents are
stored as text.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .penalties import PenaltyState

__all__ = [
    "REVOKED_PREFIX",
    "SCHEMA_VERSION",
    "AuctionFinished",
    "AuctionRecord",
    "AuctionStatus",
    "BidEvent",
    "BidderRecord",
    "ClientRecord",
    "MemoryStore",
    "PenaltyUpdate",
    "SqlStore",
    "Store",
    "StoreConflict",
    "Write",
    "compact_json",
    "describe_store",
    "normalize_database_url",
    "now_us",
    "open_store",
]

_log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
AuctionStatus = Literal["open", "finalized", "aborted"]
EventKind = Literal["commit", "reveal"]


def now_us() -> int:
    """The current wall-clock time in unix microseconds."""
    return time.time_ns() // 1_000


class StoreConflict(ValueError):
    """A unique name is already taken (names the field and value)."""

    def __init__(self, field_name: str, value: object) -> None:
        self.field = field_name
        self.value = value
        super().__init__(f"{field_name}={value!r}: already exists")


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A settlement client: it opens auctions with a bearer token (stored as its SHA-256)."""

    client_id: int
    name: str
    created_at_us: int
    revoked: bool = False


#: A revoked client's token hash: no SHA-256 hex digest has this prefix.
REVOKED_PREFIX = "revoked-"


@dataclass(frozen=True, slots=True)
class BidderRecord:
    """A bidder: its Ed25519 public key (32 raw bytes) and its no-reveal penalty state."""

    bidder_id: str
    public_key: bytes
    created_at_us: int
    penalty: PenaltyState = field(default_factory=PenaltyState)


@dataclass(frozen=True, slots=True)
class AuctionRecord:
    """One auction as opened: the order, its windows, the phantom seed and, once over, its end.

    ``request_digest`` fingerprints the client's request so that a retry with the same
    ``idempotency_key`` but different fields is recognised. ``phantom_seed`` (hex) stays
    secret until the auction ends; ``engine_params`` holds what rebuilding the engine's auction
    needs beyond these columns (its configuration sections, deadline, reserve), so a
    restart replays the auction under the same rules. ``result``
    and ``competition`` are JSON documents written when ``status`` leaves ``open``.
    """

    auction_id: str
    client_id: int
    idempotency_key: str | None
    request_digest: str
    token_in: int
    token_out: int
    amount: float
    baseline_price: float
    opened_at_us: int
    collect_ends_at_us: int
    reveal_ends_at_us: int
    phantom_commitment: str
    phantom_seed: str
    engine_params: dict[str, Any]
    status: AuctionStatus = "open"
    outcome: str | None = None
    result: dict[str, Any] | None = None
    competition: dict[str, Any] | None = None
    finished_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class BidEvent:
    """A commit or reveal as received, with the verdict acknowledged to the bidder.

    ``payload`` is the message's content (commitment, signature, revealed fields);
    ``reason`` is the rejection code (None when accepted). ``event_id`` is assigned
    by the store and orders events as the engine saw them.
    """

    auction_id: str
    bidder_id: str
    kind: EventKind
    accepted: bool
    reason: str | None
    nonce: int | None
    payload: dict[str, Any]
    received_at_us: int
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuctionFinished:
    """The end of an auction: ``finalized`` with a result, or ``aborted``."""

    auction_id: str
    status: AuctionStatus
    outcome: str
    result: dict[str, Any] | None
    competition: dict[str, Any] | None
    finished_at_us: int


@dataclass(frozen=True, slots=True)
class PenaltyUpdate:
    """A bidder's new penalty state."""

    bidder_id: str
    penalty: PenaltyState


Write: TypeAlias = AuctionRecord | BidEvent | AuctionFinished | PenaltyUpdate


class Store(abc.ABC):
    """What the service persists. Every method is safe to call concurrently."""

    #: False only for the in-memory store: nothing survives the process.
    durable: bool = True

    @abc.abstractmethod
    async def start(self) -> None:
        """Create the schema, or migrate it to :data:`SCHEMA_VERSION`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def add_client(self, name: str, token_hash: str) -> ClientRecord:
        """Register a settlement client; :class:`StoreConflict` if ``name`` is taken."""

    @abc.abstractmethod
    async def client_by_token_hash(self, token_hash: str) -> ClientRecord | None:
        """The client whose bearer token hashes to ``token_hash`` (hex SHA-256)."""

    @abc.abstractmethod
    async def add_bidder(self, bidder_id: str, public_key: bytes) -> BidderRecord:
        """Register a bidder; :class:`StoreConflict` if ``bidder_id`` is taken."""

    @abc.abstractmethod
    async def bidder(self, bidder_id: str) -> BidderRecord | None:
        """The bidder named ``bidder_id``, with its penalty state."""

    @abc.abstractmethod
    async def clients(self) -> list[ClientRecord]:
        """Every settlement client, revoked ones included, by id."""

    @abc.abstractmethod
    async def revoke_client(self, name: str) -> bool:
        """Make client ``name``'s token worthless (its auctions stay); False if unknown."""

    @abc.abstractmethod
    async def bidders(self) -> list[BidderRecord]:
        """Every registered bidder, by id."""

    @abc.abstractmethod
    async def remove_bidder(self, bidder_id: str) -> bool:
        """Forget bidder ``bidder_id`` (its stored messages and nonces stay); False if unknown."""

    @abc.abstractmethod
    async def apply(self, writes: Sequence[Write]) -> None:
        """Write every record in one transaction; return once it is durable.

        Records are applied in order of kind: opened auctions, bid events, finished
        auctions, penalty updates (so a batch may open an auction and log its bids).
        """

    @abc.abstractmethod
    async def auction(self, auction_id: str) -> AuctionRecord | None:
        """The auction ``auction_id``."""

    @abc.abstractmethod
    async def auction_by_key(self, client_id: int, idempotency_key: str) -> AuctionRecord | None:
        """The auction a client opened with ``idempotency_key``."""

    @abc.abstractmethod
    async def open_auctions(self) -> list[AuctionRecord]:
        """Auctions whose status is still ``open`` (after a crash: the ones to recover)."""

    @abc.abstractmethod
    async def events(self, auction_id: str) -> list[BidEvent]:
        """The auction's commits and reveals in the order the engine saw them."""

    @abc.abstractmethod
    async def last_nonces(self) -> dict[str, int]:
        """Each bidder's highest nonce in an accepted commit (replay protection)."""

    @abc.abstractmethod
    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        """Ids of every auction, or of those with ``status``."""


def _split(
    writes: Sequence[Write],
) -> tuple[list[AuctionRecord], list[BidEvent], list[AuctionFinished], list[PenaltyUpdate]]:
    opened: list[AuctionRecord] = []
    events: list[BidEvent] = []
    finished: list[AuctionFinished] = []
    penalties: list[PenaltyUpdate] = []
    for write in writes:
        if isinstance(write, AuctionRecord):
            opened.append(write)
        elif isinstance(write, BidEvent):
            events.append(write)
        elif isinstance(write, AuctionFinished):
            finished.append(write)
        elif isinstance(write, PenaltyUpdate):
            penalties.append(write)
        else:
            raise TypeError(f"write={write!r}: not a Store record")
    return opened, events, finished, penalties


# ---------------------------------------------------------------------------- in memory


class MemoryStore(Store):
    """Dictionaries behind the :class:`Store` interface: for unit tests, not durable."""

    durable = False

    def __init__(self) -> None:
        self._clients: dict[int, tuple[ClientRecord, str]] = {}
        self._bidders: dict[str, BidderRecord] = {}
        self._auctions: dict[str, AuctionRecord] = {}
        self._events: list[BidEvent] = []
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add_client(self, name: str, token_hash: str) -> ClientRecord:
        async with self._lock:
            if any(c.name == name for c, _ in self._clients.values()):
                raise StoreConflict("name", name)
            record = ClientRecord(len(self._clients) + 1, name, now_us())
            self._clients[record.client_id] = (record, token_hash)
            return record

    async def client_by_token_hash(self, token_hash: str) -> ClientRecord | None:
        return next((c for c, h in self._clients.values() if h == token_hash), None)

    async def add_bidder(self, bidder_id: str, public_key: bytes) -> BidderRecord:
        async with self._lock:
            if bidder_id in self._bidders:
                raise StoreConflict("bidder_id", bidder_id)
            record = BidderRecord(bidder_id, bytes(public_key), now_us())
            self._bidders[bidder_id] = record
            return record

    async def bidder(self, bidder_id: str) -> BidderRecord | None:
        return self._bidders.get(bidder_id)

    async def clients(self) -> list[ClientRecord]:
        return [
            replace(c, revoked=h.startswith(REVOKED_PREFIX))
            for c, h in sorted(self._clients.values(), key=lambda ch: ch[0].client_id)
        ]

    async def revoke_client(self, name: str) -> bool:
        async with self._lock:
            for client_id, (record, _hash) in self._clients.items():
                if record.name == name:
                    self._clients[client_id] = (record, f"{REVOKED_PREFIX}{client_id}")
                    return True
            return False

    async def bidders(self) -> list[BidderRecord]:
        return [self._bidders[b] for b in sorted(self._bidders)]

    async def remove_bidder(self, bidder_id: str) -> bool:
        async with self._lock:
            return self._bidders.pop(bidder_id, None) is not None

    async def apply(self, writes: Sequence[Write]) -> None:
        opened, events, finished, penalties = _split(writes)
        async with self._lock:
            # Check everything first so that a failing batch changes nothing.
            keys = {(a.client_id, a.idempotency_key) for a in self._auctions.values()}
            new_ids = set(self._auctions)
            for a in opened:
                if a.auction_id in new_ids:
                    raise StoreConflict("auction_id", a.auction_id)
                if a.idempotency_key is not None and (a.client_id, a.idempotency_key) in keys:
                    raise StoreConflict("idempotency_key", a.idempotency_key)
                new_ids.add(a.auction_id)
                keys.add((a.client_id, a.idempotency_key))
            for e in events:
                if e.auction_id not in new_ids:
                    raise StoreConflict("auction_id (unknown)", e.auction_id)
            for f in finished:
                if f.auction_id not in new_ids:
                    raise StoreConflict("auction_id (unknown)", f.auction_id)
            for p in penalties:
                if p.bidder_id not in self._bidders:
                    raise StoreConflict("bidder_id (unknown)", p.bidder_id)
            for a in opened:
                self._auctions[a.auction_id] = a
            for e in events:
                self._events.append(replace(e, event_id=len(self._events) + 1))
            for f in finished:
                self._auctions[f.auction_id] = replace(
                    self._auctions[f.auction_id],
                    status=f.status,
                    outcome=f.outcome,
                    result=f.result,
                    competition=f.competition,
                    finished_at_us=f.finished_at_us,
                )
            for p in penalties:
                self._bidders[p.bidder_id] = replace(self._bidders[p.bidder_id], penalty=p.penalty)

    async def auction(self, auction_id: str) -> AuctionRecord | None:
        return self._auctions.get(auction_id)

    async def auction_by_key(self, client_id: int, idempotency_key: str) -> AuctionRecord | None:
        return next(
            (
                a
                for a in self._auctions.values()
                if a.client_id == client_id and a.idempotency_key == idempotency_key
            ),
            None,
        )

    async def open_auctions(self) -> list[AuctionRecord]:
        return [a for a in self._auctions.values() if a.status == "open"]

    async def events(self, auction_id: str) -> list[BidEvent]:
        return [e for e in self._events if e.auction_id == auction_id]

    async def last_nonces(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self._events:
            if e.kind == "commit" and e.accepted and e.nonce is not None:
                out[e.bidder_id] = max(out.get(e.bidder_id, e.nonce), e.nonce)
        return out

    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        return [a.auction_id for a in self._auctions.values() if status in (None, a.status)]


# ---------------------------------------------------------------------------- SQL

metadata = MetaData()

_EventId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: a ROWID alias

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

clients = Table(
    "clients",
    metadata,
    Column("client_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
)

bidders = Table(
    "bidders",
    metadata,
    Column("bidder_id", String(200), primary_key=True),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("no_reveal_rate", Double, nullable=False, default=0.0),
    Column("blocked_until_us", BigInteger, nullable=False, default=0),
    Column("block_count", Integer, nullable=False, default=0),
    Column("block_reason", Text, nullable=True),
)

auctions = Table(
    "auctions",
    metadata,
    Column("auction_id", String(64), primary_key=True),
    Column("client_id", Integer, ForeignKey("clients.client_id"), nullable=False),
    Column("idempotency_key", String(200), nullable=True),
    Column("request_digest", String(64), nullable=False),
    Column("token_in", BigInteger, nullable=False),
    Column("token_out", BigInteger, nullable=False),
    Column("amount", Double, nullable=False),
    Column("baseline_price", Double, nullable=False),
    Column("opened_at_us", BigInteger, nullable=False),
    Column("collect_ends_at_us", BigInteger, nullable=False),
    Column("reveal_ends_at_us", BigInteger, nullable=False),
    Column("phantom_commitment", String(64), nullable=False),
    Column("phantom_seed", String(128), nullable=False),
    Column("engine_params", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(64), nullable=True),
    Column("result", Text, nullable=True),
    Column("competition", Text, nullable=True),
    Column("finished_at_us", BigInteger, nullable=True),
    UniqueConstraint("client_id", "idempotency_key", name="uq_auctions_client_key"),
    Index("ix_auctions_status", "status"),
)

bid_events = Table(
    "bid_events",
    metadata,
    Column("event_id", _EventId, primary_key=True, autoincrement=True),
    Column("auction_id", String(64), ForeignKey("auctions.auction_id"), nullable=False),
    Column("bidder_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("reason", String(64), nullable=True),
    Column("nonce", BigInteger, nullable=True),
    Column("payload", Text, nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    Index("ix_bid_events_auction", "auction_id", "event_id"),
    Index("ix_bid_events_bidder_nonce", "bidder_id", "kind", "accepted", "nonce"),
)

#: Migrations from version ``v`` to ``v + 1``, applied in order on start.
_MIGRATIONS: dict[int, list[str]] = {}


def compact_json(document: object) -> str:
    """``document`` as compact JSON text (what the store keeps and the WebSocket sends)."""
    # orjson: the same compact JSON about ten times faster (competition documents are
    # written for every auction); the standard library for anything it does not know.
    try:
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        return json.dumps(document, separators=(",", ":"), allow_nan=False)


def _loads_opt(text: str | None) -> Any:
    return None if text is None else json.loads(text)


_Parts: TypeAlias = tuple[
    list[AuctionRecord], list[BidEvent], list[AuctionFinished], list[PenaltyUpdate]
]


def _apply_rows(conn: Connection, parts: _Parts) -> None:
    """Write one batch on ``conn`` (inside its transaction), in dependency order."""
    opened, events, finished, penalties = parts
    if opened:
        conn.execute(
            insert(auctions),
            [
                {
                    "auction_id": a.auction_id,
                    "client_id": a.client_id,
                    "idempotency_key": a.idempotency_key,
                    "request_digest": a.request_digest,
                    "token_in": a.token_in,
                    "token_out": a.token_out,
                    "amount": a.amount,
                    "baseline_price": a.baseline_price,
                    "opened_at_us": a.opened_at_us,
                    "collect_ends_at_us": a.collect_ends_at_us,
                    "reveal_ends_at_us": a.reveal_ends_at_us,
                    "phantom_commitment": a.phantom_commitment,
                    "phantom_seed": a.phantom_seed,
                    "engine_params": compact_json(a.engine_params),
                    "status": a.status,
                    "outcome": a.outcome,
                    "result": None if a.result is None else compact_json(a.result),
                    "competition": None if a.competition is None else compact_json(a.competition),
                    "finished_at_us": a.finished_at_us,
                }
                for a in opened
            ],
        )
    if events:
        conn.execute(
            insert(bid_events),
            [
                {
                    "auction_id": e.auction_id,
                    "bidder_id": e.bidder_id,
                    "kind": e.kind,
                    "accepted": e.accepted,
                    "reason": e.reason,
                    "nonce": e.nonce,
                    "payload": compact_json(e.payload),
                    "received_at_us": e.received_at_us,
                }
                for e in events
            ],
        )
    if finished:
        conn.execute(
            update(auctions)
            .where(auctions.c.auction_id == bindparam("b_auction_id"))
            .values(
                status=bindparam("b_status"),
                outcome=bindparam("b_outcome"),
                result=bindparam("b_result"),
                competition=bindparam("b_competition"),
                finished_at_us=bindparam("b_finished_at_us"),
            ),
            [
                {
                    "b_auction_id": f.auction_id,
                    "b_status": f.status,
                    "b_outcome": f.outcome,
                    "b_result": None if f.result is None else compact_json(f.result),
                    "b_competition": None if f.competition is None else compact_json(f.competition),
                    "b_finished_at_us": f.finished_at_us,
                }
                for f in finished
            ],
        )
    if penalties:
        conn.execute(
            update(bidders)
            .where(bidders.c.bidder_id == bindparam("b_bidder_id"))
            .values(
                no_reveal_rate=bindparam("b_rate"),
                blocked_until_us=bindparam("b_until"),
                block_count=bindparam("b_count"),
                block_reason=bindparam("b_reason"),
            ),
            [
                {
                    "b_bidder_id": p.bidder_id,
                    "b_rate": p.penalty.no_reveal_rate,
                    "b_until": p.penalty.blocked_until_us,
                    "b_count": p.penalty.block_count,
                    "b_reason": p.penalty.reason,
                }
                for p in penalties
            ],
        )


_SQLITE_INSERT_AUCTION = (
    "INSERT INTO auctions (auction_id, client_id, idempotency_key, request_digest, token_in, "
    "token_out, amount, baseline_price, opened_at_us, collect_ends_at_us, reveal_ends_at_us, "
    "phantom_commitment, phantom_seed, engine_params, status, outcome, result, competition, "
    "finished_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_INSERT_EVENT = (
    "INSERT INTO bid_events (auction_id, bidder_id, kind, accepted, reason, nonce, payload, "
    "received_at_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_FINISH = (
    "UPDATE auctions SET status = ?, outcome = ?, result = ?, competition = ?, "
    "finished_at_us = ? WHERE auction_id = ?"
)
_SQLITE_PENALTY = (
    "UPDATE bidders SET no_reveal_rate = ?, blocked_until_us = ?, block_count = ?, "
    "block_reason = ? WHERE bidder_id = ?"
)


def _apply_sqlite(connection: sqlite3.Connection, parts: _Parts) -> None:
    """:func:`_apply_rows` for SQLite on the raw connection (inside its transaction):
    plain ``executemany`` with tuples, the same columns and order as the Core version
    (which spent more time building parameters than SQLite spent writing them)."""
    opened, events, finished, penalties = parts
    cursor = connection.cursor()
    try:
        if opened:
            cursor.executemany(
                _SQLITE_INSERT_AUCTION,
                [
                    (
                        a.auction_id,
                        a.client_id,
                        a.idempotency_key,
                        a.request_digest,
                        a.token_in,
                        a.token_out,
                        a.amount,
                        a.baseline_price,
                        a.opened_at_us,
                        a.collect_ends_at_us,
                        a.reveal_ends_at_us,
                        a.phantom_commitment,
                        a.phantom_seed,
                        compact_json(a.engine_params),
                        a.status,
                        a.outcome,
                        None if a.result is None else compact_json(a.result),
                        None if a.competition is None else compact_json(a.competition),
                        a.finished_at_us,
                    )
                    for a in opened
                ],
            )
        if events:
            cursor.executemany(
                _SQLITE_INSERT_EVENT,
                [
                    (
                        e.auction_id,
                        e.bidder_id,
                        e.kind,
                        1 if e.accepted else 0,
                        e.reason,
                        e.nonce,
                        compact_json(e.payload),
                        e.received_at_us,
                    )
                    for e in events
                ],
            )
        if finished:
            cursor.executemany(
                _SQLITE_FINISH,
                [
                    (
                        f.status,
                        f.outcome,
                        None if f.result is None else compact_json(f.result),
                        None if f.competition is None else compact_json(f.competition),
                        f.finished_at_us,
                        f.auction_id,
                    )
                    for f in finished
                ],
            )
        if penalties:
            cursor.executemany(
                _SQLITE_PENALTY,
                [
                    (
                        p.penalty.no_reveal_rate,
                        p.penalty.blocked_until_us,
                        p.penalty.block_count,
                        p.penalty.reason,
                        p.bidder_id,
                    )
                    for p in penalties
                ],
            )
    finally:
        cursor.close()


def _auction_from_row(row: Any) -> AuctionRecord:
    return AuctionRecord(
        auction_id=row.auction_id,
        client_id=row.client_id,
        idempotency_key=row.idempotency_key,
        request_digest=row.request_digest,
        token_in=row.token_in,
        token_out=row.token_out,
        amount=row.amount,
        baseline_price=row.baseline_price,
        opened_at_us=row.opened_at_us,
        collect_ends_at_us=row.collect_ends_at_us,
        reveal_ends_at_us=row.reveal_ends_at_us,
        phantom_commitment=row.phantom_commitment,
        phantom_seed=row.phantom_seed,
        engine_params=json.loads(row.engine_params),
        status=row.status,
        outcome=row.outcome,
        result=_loads_opt(row.result),
        competition=_loads_opt(row.competition),
        finished_at_us=row.finished_at_us,
    )


def _bidder_from_row(row: Any) -> BidderRecord:
    return BidderRecord(
        bidder_id=row.bidder_id,
        public_key=bytes(row.public_key),
        created_at_us=row.created_at_us,
        penalty=PenaltyState(
            no_reveal_rate=row.no_reveal_rate,
            blocked_until_us=row.blocked_until_us,
            block_count=row.block_count,
            reason=row.block_reason,
        ),
    )


def _private_sqlite_file(path: Path) -> None:
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


#: Records written between two checkpoints of the SQLite WAL (see ``SqlStore``).
_CHECKPOINT_EVERY_RECORDS = 2000


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _sqlite_pragmas(synchronous: str) -> Any:
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


class SqlStore(Store):
    """SQLAlchemy Core on SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        connect_args: dict[str, Any] | None = None,
        sqlite_synchronous: str = "full",
    ) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"database_url={url!r}: only sqlite and postgresql are supported")
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            _private_sqlite_file(Path(parsed.database))
        self.engine: AsyncEngine = create_async_engine(
            parsed, echo=echo, connect_args=connect_args or {}
        )
        self._sync_engine: Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_path = ""
        self._checkpoint_running = False
        self._written_since_checkpoint = 0
        if self.dialect == "sqlite":
            pragmas = _sqlite_pragmas(sqlite_synchronous)
            event.listen(self.engine.sync_engine, "connect", pragmas)
            self._sync_engine = create_engine(parsed.set(drivername="sqlite"), echo=echo)
            event.listen(self._sync_engine, "connect", pragmas)
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            # The writer never checkpoints (a checkpoint copies the WAL into the database
            # and fsyncs it: hundreds of ms every few MB, during which no ack or result
            # could be made durable); a second connection does, in its own thread, while
            # the writer goes on appending to the WAL (a PASSIVE checkpoint blocks no one).
            if parsed.database not in (None, "", ":memory:"):
                event.listen(self._sync_engine, "connect", _no_autocheckpoint)
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
            for statement in _MIGRATIONS[version]:
                conn.exec_driver_sql(statement)
            conn.execute(insert(schema_version).values(version=version + 1))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
        if self._writer is not None and self._sync_engine is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._writer, self._sync_engine.dispose)
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
                insert(bidders).values(
                    bidder_id=bidder_id,
                    public_key=record.public_key,
                    created_at_us=record.created_at_us,
                    no_reveal_rate=0.0,
                    blocked_until_us=0,
                    block_count=0,
                    block_reason=None,
                )
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
        return None if row is None else _bidder_from_row(row)

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
            return [_bidder_from_row(r) for r in rows]

    async def remove_bidder(self, bidder_id: str) -> bool:
        async def work(conn: AsyncConnection) -> bool:
            done = await conn.execute(delete(bidders).where(bidders.c.bidder_id == bidder_id))
            return bool(done.rowcount)

        return bool(await self._write(work))

    async def apply(self, writes: Sequence[Write]) -> None:
        parts = _split(writes)
        if not any(parts):
            return
        if self._sync_engine is not None:
            # SQLite: the whole transaction in one hop to the writer thread (aiosqlite
            # would hop to its thread and back for every statement).
            loop = asyncio.get_running_loop()
            async with self._write_lock:
                await loop.run_in_executor(self._writer, self._apply_in_thread, parts)
            self._written_since_checkpoint += len(writes)
            if (
                self._written_since_checkpoint >= _CHECKPOINT_EVERY_RECORDS
                and not self._checkpoint_running
                and self._checkpointer is not None
            ):
                self._written_since_checkpoint = 0
                self._checkpoint_running = True
                done = loop.run_in_executor(self._checkpointer, self._checkpoint_in_thread)
                done.add_done_callback(self._checkpoint_done)
            return
        async with self._write_lock, self.engine.begin() as conn:
            await conn.run_sync(_apply_rows, parts)

    def _checkpoint_in_thread(self) -> None:
        # Its own short-lived connection: nothing is shared with the writer's thread.
        connection = sqlite3.connect(self._checkpoint_path, timeout=10.0)
        try:
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def _checkpoint_done(self, done: asyncio.Future[None]) -> None:
        self._checkpoint_running = False
        if not done.cancelled() and done.exception() is not None:
            _log.warning("SQLite checkpoint failed: %r", done.exception())

    def _apply_in_thread(self, parts: _Parts) -> None:
        assert self._sync_engine is not None
        with self._sync_engine.begin() as conn:
            # SQLAlchemy opens and commits the transaction (and set the pragmas); the
            # rows go straight to the driver's connection.
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            _apply_sqlite(raw, parts)

    async def auction(self, auction_id: str) -> AuctionRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(auctions).where(auctions.c.auction_id == auction_id))
            ).first()
        return None if row is None else _auction_from_row(row)

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
        return None if row is None else _auction_from_row(row)

    async def open_auctions(self) -> list[AuctionRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(auctions)
                .where(auctions.c.status == "open")
                .order_by(auctions.c.opened_at_us)
            )
            return [_auction_from_row(r) for r in rows]

    async def events(self, auction_id: str) -> list[BidEvent]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(bid_events)
                .where(bid_events.c.auction_id == auction_id)
                .order_by(bid_events.c.event_id)
            )
            return [
                BidEvent(
                    auction_id=r.auction_id,
                    bidder_id=r.bidder_id,
                    kind=r.kind,
                    accepted=bool(r.accepted),
                    reason=r.reason,
                    nonce=r.nonce,
                    payload=json.loads(r.payload),
                    received_at_us=r.received_at_us,
                    event_id=r.event_id,
                )
                for r in rows
            ]

    async def last_nonces(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(bid_events.c.bidder_id, func.max(bid_events.c.nonce))
                .where(bid_events.c.kind == "commit", bid_events.c.accepted.is_(True))
                .group_by(bid_events.c.bidder_id)
            )
            return {bidder: int(nonce) for bidder, nonce in rows if nonce is not None}

    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        query = select(auctions.c.auction_id).order_by(auctions.c.opened_at_us)
        if status is not None:
            query = query.where(auctions.c.status == status)
        async with self.engine.connect() as conn:
            return [r[0] for r in await conn.execute(query)]


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
