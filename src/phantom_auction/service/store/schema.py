"""The SQL schema, and the one mapping between its columns and the store's records.

Every column is written once, here, in its :class:`~sqlalchemy.Table`. A column's value
in a record is the record's attribute of the same name, unless its ``info["field"]``
names another (a dotted path: ``penalty.reason``); JSON documents are ``json_text``
columns. The Core statements (:mod:`.sql`) and the raw SQLite writer (:mod:`.sqlite`)
both take their column lists and values from :class:`RowWrite`, so adding a column is
one line in a ``Table`` (and one field in its record).

Version 2 adds ``nonce_marks`` (each bidder's highest accepted nonce among the bid
events a prune removed: :meth:`~.interface.Store.prune`) and an index on the auctions'
end time (what a prune looks for). A version 1 program must not open a pruned
database: it would rebuild the nonce registry from the events alone.

Two columns keep their first names because renaming them would need a migration of
every existing database: ``collect_ends_at_us`` holds the commit deadline
(``AuctionRecord.commit_deadline_us``), ``reveal_ends_at_us`` the reveal deadline
(``AuctionRecord.reveal_deadline_us``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

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
)

from ..penalties import PenaltyState
from .records import AuctionFinished, AuctionRecord, BidderRecord, BidEvent, compact_json

__all__ = [
    "BIDDER_INSERT",
    "EVENT_INSERT",
    "FINISH_UPDATE",
    "MIGRATIONS",
    "OPEN_INSERT",
    "PENALTY_UPDATE",
    "SCHEMA_VERSION",
    "RowWrite",
    "auction_from_row",
    "auctions",
    "bid_events",
    "bidder_from_row",
    "bidders",
    "clients",
    "event_from_row",
    "metadata",
    "nonce_marks",
    "schema_version",
]

SCHEMA_VERSION = 2

#: Migrations from version ``v`` to ``v + 1`` (SQL statements), applied in order on start,
#: after ``create_all`` has made any new table (with its indexes) that was missing.
MIGRATIONS: dict[int, list[str]] = {
    1: ["CREATE INDEX IF NOT EXISTS ix_auctions_finished ON auctions (finished_at_us)"],
}

metadata = MetaData()

_EventId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: a ROWID alias


def json_text(name: str, *, nullable: bool) -> Column[Any]:
    """A column holding a JSON document as compact text."""
    return Column(name, Text, nullable=nullable, info={"json": True})


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
    Column(
        "no_reveal_rate",
        Double,
        nullable=False,
        default=0.0,
        info={"field": "penalty.no_reveal_rate"},
    ),
    Column(
        "blocked_until_us",
        BigInteger,
        nullable=False,
        default=0,
        info={"field": "penalty.blocked_until_us"},
    ),
    Column(
        "block_count", Integer, nullable=False, default=0, info={"field": "penalty.block_count"}
    ),
    Column("block_reason", Text, nullable=True, info={"field": "penalty.reason"}),
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
    Column("collect_ends_at_us", BigInteger, nullable=False, info={"field": "commit_deadline_us"}),
    Column("reveal_ends_at_us", BigInteger, nullable=False, info={"field": "reveal_deadline_us"}),
    Column("phantom_commitment", String(64), nullable=False),
    Column("phantom_seed", String(128), nullable=False),
    json_text("engine_params", nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(64), nullable=True),
    json_text("result", nullable=True),
    json_text("competition", nullable=True),
    Column("finished_at_us", BigInteger, nullable=True),
    UniqueConstraint("client_id", "idempotency_key", name="uq_auctions_client_key"),
    Index("ix_auctions_status", "status"),
    Index("ix_auctions_finished", "finished_at_us"),
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
    json_text("payload", nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    Index("ix_bid_events_auction", "auction_id", "event_id"),
    Index("ix_bid_events_bidder_nonce", "bidder_id", "kind", "accepted", "nonce"),
)

#: Each bidder's highest nonce in an accepted commit whose event a prune removed: with
#: the stored commits, what the nonce registry is rebuilt from (a replay stays refused).
#: Not tied to ``bidders``: a removed bidder's marks stay, as its events do.
nonce_marks = Table(
    "nonce_marks",
    metadata,
    Column("bidder_id", String(200), primary_key=True),
    Column("nonce", BigInteger, nullable=False),
)


def field_of(column: Column[Any]) -> str:
    """The record attribute (dotted path) that holds ``column``'s value."""
    return str(column.info.get("field", column.name))


def _is_json(column: Column[Any]) -> bool:
    return bool(column.info.get("json", False))


@dataclass(frozen=True, eq=False)
class RowWrite:
    """One kind of write: an ``INSERT`` of ``columns``, or an ``UPDATE`` of ``columns``
    of the row whose ``key`` matches (and, with ``while_open``, whose ``status`` is still
    ``open``). :meth:`values` reads them from a record, in order (the key last), JSON
    columns as text."""

    table: Table
    columns: tuple[Column[Any], ...]
    key: Column[Any] | None = None
    while_open: bool = False

    def __post_init__(self) -> None:
        wanted = (*self.columns, self.key) if self.key is not None else self.columns
        # One C-level getter for the whole row; JSON columns are then encoded in place.
        getter: Callable[[Any], Any] = attrgetter(*(field_of(c) for c in wanted))
        if len(wanted) == 1:
            one = getter
            getter = lambda record: (one(record),)  # noqa: E731 - attrgetter of one name
        object.__setattr__(self, "_get", getter)
        json_at = tuple(i for i, c in enumerate(wanted) if _is_json(c))
        object.__setattr__(self, "_json_at", json_at)

    def values(self, record: Any) -> tuple[Any, ...]:
        """The record's values for :attr:`columns` (then :attr:`key`), ready to bind."""
        row: tuple[Any, ...] = self._get(record)  # type: ignore[attr-defined]
        json_at: tuple[int, ...] = self._json_at  # type: ignore[attr-defined]
        if not json_at:
            return row
        out = list(row)
        for i in json_at:
            if out[i] is not None:
                out[i] = compact_json(out[i])
        return tuple(out)

    def names(self) -> list[str]:
        """The SQL names of :attr:`columns` (then :attr:`key`), in :meth:`values` order."""
        wanted = (*self.columns, self.key) if self.key is not None else self.columns
        return [c.name for c in wanted]


def _inserted(table: Table) -> tuple[Column[Any], ...]:
    """Every column but an autoincrementing key (the database assigns it)."""
    return tuple(c for c in table.columns if c is not table.autoincrement_column)


def _fields_of(record_type: type, table: Table, *, prefix: str = "") -> tuple[Column[Any], ...]:
    """The columns of ``table`` that hold a field of ``record_type`` (under ``prefix``)."""
    wanted = {prefix + f.name for f in fields(record_type)}
    return tuple(c for c in table.columns if field_of(c) in wanted)


#: A newly opened auction (every column).
OPEN_INSERT = RowWrite(auctions, _inserted(auctions))
#: A commit or reveal (the database numbers it).
EVENT_INSERT = RowWrite(bid_events, _inserted(bid_events))
#: A newly registered bidder.
BIDDER_INSERT = RowWrite(bidders, _inserted(bidders))
#: An auction's end: the columns of :class:`AuctionFinished` but its id. Only an open
#: auction's: the first end stored stands (two servers that both ended an auction, one
#: of them cut off from the database meanwhile, stored two outcomes, the later over the
#: earlier).
FINISH_UPDATE = RowWrite(
    auctions,
    tuple(c for c in _fields_of(AuctionFinished, auctions) if c is not auctions.c.auction_id),
    key=auctions.c.auction_id,
    while_open=True,
)
#: A bidder's penalty state: the columns of :class:`PenaltyState`.
PENALTY_UPDATE = RowWrite(
    bidders, _fields_of(PenaltyState, bidders, prefix="penalty."), key=bidders.c.bidder_id
)


def _decoded(column: Column[Any], value: Any) -> Any:
    return json.loads(value) if _is_json(column) and value is not None else value


def auction_from_row(row: Any) -> AuctionRecord:
    """The :class:`AuctionRecord` of an ``auctions`` row."""
    mapping = row._mapping
    return AuctionRecord(**{field_of(c): _decoded(c, mapping[c.name]) for c in auctions.columns})


def event_from_row(row: Any) -> BidEvent:
    """The :class:`BidEvent` of a ``bid_events`` row."""
    mapping = row._mapping
    values = {field_of(c): _decoded(c, mapping[c.name]) for c in bid_events.columns}
    values["accepted"] = bool(values["accepted"])
    return BidEvent(**values)


def bidder_from_row(row: Any) -> BidderRecord:
    """The :class:`BidderRecord` of a ``bidders`` row (its penalty columns nested)."""
    mapping = row._mapping
    penalty = {
        field_of(c).removeprefix("penalty."): mapping[c.name] for c in PENALTY_UPDATE.columns
    }
    return BidderRecord(
        bidder_id=mapping["bidder_id"],
        public_key=bytes(mapping["public_key"]),
        created_at_us=mapping["created_at_us"],
        penalty=PenaltyState(**penalty),
    )
