"""The auction house: live auctions driven through the engine, durably, for many clients.

The rooms: :mod:`.auction_house` (the house itself: open, finish), :mod:`.bids` (the
one commit and reveal path), :mod:`.live` (a live auction, verdicts, handles),
:mod:`.sessions` (clients' tokens, bidders' signatures and WebSocket sessions),
:mod:`.rate_limit` (a token bucket per bidder), :mod:`.documents` (the public JSON
documents: result, competition, auction, announcement) and :mod:`.recovery` (ending
the auctions a crash left open).
"""

from __future__ import annotations

from ...engine.clock import from_us, to_us
from .auction_house import AuctionHouse
from .bids import message_payload
from .documents import (
    announcement_document,
    auction_document,
    competition_document,
    result_document,
)
from .live import AuctionHandle, LiveAuction, Verdict
from .rate_limit import TokenBucket
from .recovery import accepted_events
from .sessions import BidderSession, BidderState, Identities, Rejected

__all__ = [
    "AuctionHandle",
    "AuctionHouse",
    "BidderSession",
    "BidderState",
    "Identities",
    "LiveAuction",
    "Rejected",
    "TokenBucket",
    "Verdict",
    "accepted_events",
    "announcement_document",
    "auction_document",
    "competition_document",
    "from_us",
    "message_payload",
    "result_document",
    "to_us",
]
