"""What the store keeps: one frozen record per row kind, and the batch of writes.

Times are unix microseconds (integers, exact on every backend); JSON documents are
stored as compact text (:func:`compact_json`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import orjson

from ..penalties import PenaltyState

__all__ = [
    "REVOKED_PREFIX",
    "AuctionFinished",
    "AuctionRecord",
    "AuctionStatus",
    "BidEvent",
    "BidderRecord",
    "ClientRecord",
    "EventKind",
    "EventMark",
    "PenaltyUpdate",
    "Pruned",
    "StoreConflict",
    "Write",
    "WriteBatch",
    "compact_json",
    "now_us",
    "split_writes",
]

AuctionStatus = Literal["open", "finalized", "aborted"]
EventKind = Literal["commit", "reveal"]
#: A bid event as the explorer counts it: ``(bidder_id, kind, accepted)``.
EventMark: TypeAlias = tuple[str, str, bool]


def now_us() -> int:
    """The current wall-clock time in unix microseconds."""
    return time.time_ns() // 1_000


def compact_json(document: object) -> str:
    """``document`` as compact JSON text (what the store keeps and the WebSocket sends)."""
    # orjson: the same compact JSON about ten times faster (competition documents are
    # written for every auction); the standard library for anything it does not know.
    try:
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        return json.dumps(document, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What :meth:`Store.prune <.interface.Store.prune>` removed: ended auctions and
    their bid events."""

    auctions: int = 0
    events: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.auctions + other.auctions, self.events + other.events)


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
    ``idempotency_key`` but different fields is recognised. ``commit_deadline_us`` and
    ``reveal_deadline_us`` are the engine's ``commit_deadline`` and ``reveal_deadline``
    (the ends of the commit and reveal windows). ``phantom_seed`` (hex) stays secret
    until the auction ends; ``engine_params`` holds what rebuilding the engine's auction
    needs beyond these fields (its configuration sections, deadline, reserve), so a
    restart replays the auction under the same rules. ``result`` and ``competition``
    are JSON documents written when ``status`` leaves ``open``.
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
    commit_deadline_us: int
    reveal_deadline_us: int
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

#: A batch of writes by kind, in the order a store applies them.
WriteBatch: TypeAlias = tuple[
    list[AuctionRecord], list[BidEvent], list[AuctionFinished], list[PenaltyUpdate]
]


def split_writes(writes: Sequence[Write]) -> WriteBatch:
    """``writes`` by kind: opened auctions, bid events, finished auctions, penalty updates."""
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
