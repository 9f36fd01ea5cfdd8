"""The auction's vocabulary of phases, outcomes and rejection reasons, and its audit events.

Every command an :class:`~phantom_auction.engine.auction.Auction` handles appends plain
frozen events to ``auction.audit``; together with the auction's opening parameters and
its phantom seed they are enough to rebuild the auction (``Auction.replay``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, TypeAlias

from ..mechanisms.rules import RejectReason
from .bids import ImprovementBid, SealedBid

__all__ = [
    "AuctionAborted",
    "AuctionFinalized",
    "AuctionOpened",
    "AuditEvent",
    "Command",
    "CommitAccepted",
    "CommitRejected",
    "Outcome",
    "Phase",
    "PhaseChanged",
    "RejectReason",
    "RevealAccepted",
    "RevealRejected",
]


class Phase(StrEnum):
    """Where an auction is: ``COLLECTING -> REVEALING -> FINALIZED`` (or ``ABORTED``)."""

    COLLECTING = "collecting"
    REVEALING = "revealing"
    FINALIZED = "finalized"
    ABORTED = "aborted"


class Command(StrEnum):
    """What can happen to an auction; values are the public calls' names."""

    COMMIT = "submit_bid"
    REVEAL = "reveal_bid"
    CLOSE_COLLECTION = "close_collection"
    CLOCK = "clock"  # the collection window's end passing
    FINALIZE = "finalize_auction"
    ABORT = "abort_auction"


class Outcome(StrEnum):
    """How an auction ended (``AuctionResult.outcome``).

    - ``filled``: at least one real bid fills part of the order.
    - ``phantom_won``: phantoms took every unit the rule allocated; the user gets the
      baseline from the CFMM (phantoms never fill).
    - ``no_bids``: no revealed real bid, and no phantom at all (``reserve``) or any
      number of phantoms (``floor``, where phantoms only set a price floor).
    - ``insufficient_participants``: fewer participants (real + phantom) than
      ``min_participants``; nothing is cleared and the user gets the baseline.
    - ``aborted``: the auction was stopped before clearing (``abort_auction``).
    """

    FILLED = "filled"
    PHANTOM_WON = "phantom_won"
    NO_BIDS = "no_bids"
    INSUFFICIENT_PARTICIPANTS = "insufficient_participants"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class AuctionOpened:
    """The auction opened at ``at`` with these windows and phantom commitment."""

    kind: ClassVar[str] = "auction_opened"
    at: datetime
    auction_id: str
    phantom_commitment: bytes
    commit_deadline: datetime
    reveal_deadline: datetime
    deadline: datetime
    mechanism: str


@dataclass(frozen=True, slots=True)
class CommitAccepted:
    """A sealed bid was stored; its nonce is now the bidder's last accepted nonce."""

    kind: ClassVar[str] = "commit_accepted"
    at: datetime
    bid: SealedBid


@dataclass(frozen=True, slots=True)
class CommitRejected:
    """A sealed bid was refused with ``reason`` (``detail`` names the values)."""

    kind: ClassVar[str] = "commit_rejected"
    at: datetime
    bid: SealedBid
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class RevealAccepted:
    """A revealed bid matched its commitment and passed validation."""

    kind: ClassVar[str] = "reveal_accepted"
    at: datetime
    bid: ImprovementBid


@dataclass(frozen=True, slots=True)
class RevealRejected:
    """A revealed bid was refused with ``reason`` (``detail`` names the values)."""

    kind: ClassVar[str] = "reveal_rejected"
    at: datetime
    bid: ImprovementBid
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """The phase moved from ``previous`` to ``phase`` (``cause`` says why)."""

    kind: ClassVar[str] = "phase_changed"
    at: datetime
    previous: Phase
    phase: Phase
    cause: str


@dataclass(frozen=True, slots=True)
class AuctionFinalized:
    """The auction cleared: ``outcome`` and the user's volume-weighted ``price`` (B per A)."""

    kind: ClassVar[str] = "auction_finalized"
    at: datetime
    outcome: Outcome
    price: float
    num_participants: int


@dataclass(frozen=True, slots=True)
class AuctionAborted:
    """The auction was stopped before clearing; the user gets the baseline."""

    kind: ClassVar[str] = "auction_aborted"
    at: datetime
    reason: str


AuditEvent: TypeAlias = (
    AuctionOpened
    | CommitAccepted
    | CommitRejected
    | RevealAccepted
    | RevealRejected
    | PhaseChanged
    | AuctionFinalized
    | AuctionAborted
)
