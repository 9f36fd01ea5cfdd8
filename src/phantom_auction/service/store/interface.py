"""The :class:`Store` interface: what the auction house persists, on any backend."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from .records import (
    AuctionRecord,
    AuctionStatus,
    BidderRecord,
    BidEvent,
    ClientRecord,
    EventMark,
    Pruned,
    Write,
)

__all__ = ["PRUNE_BATCH_AUCTIONS", "PRUNE_PAUSE_RATIO", "Store", "check_prune_pace"]

#: Auctions a prune removes per transaction: at 20 bidders (40 bid events an auction)
#: ~10 ms a transaction on SQLite (``benchmarks/bench_prune.py``), which a server's own
#: writes wait behind (SQLite has one writer).
PRUNE_BATCH_AUCTIONS = 25
#: After each of its transactions a prune waits this many times as long as it took: it
#: holds the database (and a CPU) a quarter of the time at most, and a server beside it
#: keeps its pace (``docs/service.md``, "Retention").
PRUNE_PAUSE_RATIO = 3.0


def check_prune_pace(batch_auctions: int, pause_ratio: float) -> None:
    """A clear error for a pace :meth:`Store.prune` cannot keep."""
    if batch_auctions < 1:
        raise ValueError(f"batch_auctions={batch_auctions!r}: must be at least 1")
    if not 0.0 <= pause_ratio < float("inf"):
        raise ValueError(f"pause_ratio={pause_ratio!r}: must be a finite number >= 0")


class Store(abc.ABC):
    """What the service persists. Every method is safe to call concurrently."""

    #: False only for the in-memory store: nothing survives the process.
    durable: bool = True

    @abc.abstractmethod
    async def start(self) -> None:
        """Create the schema, or migrate it to :data:`~.schema.SCHEMA_VERSION`."""

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
    async def auctions(self, auction_ids: Sequence[str]) -> list[AuctionRecord]:
        """The auctions of ``auction_ids`` that exist, in one read (in no given order)."""

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
    async def event_marks(self, auction_ids: Sequence[str]) -> dict[str, list[EventMark]]:
        """Per auction of ``auction_ids`` that has bid events, each event's ``(bidder_id,
        kind, accepted)`` in the order the engine saw them: what the explorer counts,
        without reading and decoding the events' payloads."""

    @abc.abstractmethod
    async def last_nonces(self) -> dict[str, int]:
        """Each bidder's highest nonce in an accepted commit (replay protection), pruned
        commits included (their nonce marks)."""

    @abc.abstractmethod
    async def auction_ids(self, status: AuctionStatus | None = None) -> list[str]:
        """Ids of every auction, or of those with ``status``."""

    @abc.abstractmethod
    async def latest_ended(self, limit: int, ended_by_us: int | None = None) -> list[AuctionRecord]:
        """The ``limit`` auctions that ended (finalized or aborted) last, at or before
        ``ended_by_us`` (unix us) if given, the earliest end first: what the explorer's
        feed starts from, read through the end-time index rather than every id of a
        store that may hold months of auctions."""

    @abc.abstractmethod
    async def prune(
        self,
        ended_before_us: int,
        *,
        batch_auctions: int = PRUNE_BATCH_AUCTIONS,
        pause_ratio: float = PRUNE_PAUSE_RATIO,
    ) -> Pruned:
        """Remove every auction that ended (finalized or aborted) before
        ``ended_before_us`` (unix us), with its bid events, ``batch_auctions`` auctions
        a transaction, oldest first, pausing after each ``pause_ratio`` times as long
        as it took (so that a server's writes find the database free and its CPU is
        not taken); open auctions are never touched.

        Each bidder's highest accepted nonce among the removed events is kept (its nonce
        mark), so :meth:`last_nonces`, and with it replay protection, does not change.
        Safe while a server writes to the same store."""

    @abc.abstractmethod
    async def count_ended(self, ended_before_us: int) -> Pruned:
        """What :meth:`prune` would remove now, removing nothing: the auctions that
        ended before ``ended_before_us`` (unix us) and their bid events."""
