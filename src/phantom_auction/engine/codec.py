"""JSON-ready forms of the engine's records, so that a store can persist and replay them.

``to_jsonable`` turns any engine record (bids, audit events, results, announcements)
into dicts, lists, strings and numbers: bytes as lowercase hex, datetimes as ISO 8601
with offset, enums as their values, tuples as lists; each dataclass carries its class
name under ``"type"``. ``event_from_jsonable`` reads an audit event back exactly, for
:meth:`Auction.replay`.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

from ..errors import InvalidBidParameters
from .audit import (
    AuctionAborted,
    AuctionFinalized,
    AuctionOpened,
    AuditEvent,
    CommitAccepted,
    CommitRejected,
    Outcome,
    Phase,
    PhaseChanged,
    RejectReason,
    RevealAccepted,
    RevealRejected,
)
from .bids import ImprovementBid, SealedBid
from .phantoms import PhantomBids
from .result import Ranking

__all__ = ["event_from_jsonable", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """A JSON-ready copy of ``obj`` (see the module docstring)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"type": type(obj).__name__}
        for field in dataclasses.fields(obj):
            out[field.name] = to_jsonable(getattr(obj, field.name))
        return out
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, tuple | list | Ranking | PhantomBids):
        return [to_jsonable(item) for item in obj]
    if isinstance(obj, dict):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    return obj


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(value)


def _sealed(data: dict[str, Any]) -> SealedBid:
    return SealedBid(
        data["bidder_id"],
        (int(data["token_pair"][0]), int(data["token_pair"][1])),
        bytes.fromhex(data["commitment_hash"]),
        int(data["nonce"]),
        _time(data["timestamp"]),
    )


def _full(data: dict[str, Any]) -> ImprovementBid:
    return ImprovementBid(
        data["bidder_id"],
        (int(data["token_pair"][0]), int(data["token_pair"][1])),
        float(data["improved_price"]),
        float(data["volume"]),
        float(data["priority_fee"]),
        bytes.fromhex(data["commitment_hash"]),
        int(data["nonce"]),
        _time(data["timestamp"]),
        bytes.fromhex(data["salt"]),
    )


def event_from_jsonable(data: dict[str, Any]) -> AuditEvent:
    """The audit event that :func:`to_jsonable` wrote as ``data``."""
    kind = data.get("type")
    at = _time(data["at"]) if "at" in data else None
    if at is None:
        raise InvalidBidParameters("event.at", data.get("at"), "missing")
    if kind == "AuctionOpened":
        return AuctionOpened(
            at,
            data["auction_id"],
            bytes.fromhex(data["phantom_commitment"]),
            _time(data["commit_deadline"]),
            _time(data["reveal_deadline"]),
            _time(data["deadline"]),
            data["mechanism"],
        )
    if kind == "CommitAccepted":
        return CommitAccepted(at, _sealed(data["bid"]))
    if kind == "CommitRejected":
        return CommitRejected(
            at, _sealed(data["bid"]), RejectReason(data["reason"]), data["detail"]
        )
    if kind == "RevealAccepted":
        return RevealAccepted(at, _full(data["bid"]))
    if kind == "RevealRejected":
        return RevealRejected(at, _full(data["bid"]), RejectReason(data["reason"]), data["detail"])
    if kind == "PhaseChanged":
        return PhaseChanged(at, Phase(data["previous"]), Phase(data["phase"]), data["cause"])
    if kind == "AuctionFinalized":
        return AuctionFinalized(
            at, Outcome(data["outcome"]), float(data["price"]), int(data["num_participants"])
        )
    if kind == "AuctionAborted":
        return AuctionAborted(at, data["reason"])
    raise InvalidBidParameters("event.type", kind, "not an audit event type")
