"""What the house keeps per live auction, and what it answers: verdicts and handles."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ...engine import Auction
from ..store import AuctionRecord, BidEvent

__all__ = ["AuctionHandle", "LiveAuction", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one commit or reveal: ``accepted``, or ``reason`` and ``detail``."""

    kind: str
    auction_id: str | None
    accepted: bool
    reason: str | None = None
    detail: str | None = None


@dataclass(slots=True, eq=False)
class LiveAuction:
    """An auction the house is running (dropped once its end is durable)."""

    record: AuctionRecord
    auction: Auction
    announcement: str
    announcement_frame: bytes
    done: asyncio.Future[AuctionRecord]
    events: list[BidEvent] = field(default_factory=list)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)
    finishing: bool = False
    store_failed: bool = False
    #: The bidders of the bid events whose write failed (kept here as store_unavailable,
    #: absent from the store): not penalized for a no-reveal in this auction.
    lost_by: set[str] = field(default_factory=set)
    #: Bid events submitted and not yet durable (the result waits for them).
    unsettled: int = 0
    #: Resolved when ``unsettled`` drops to 0 (made by whoever waits for that).
    all_settled: asyncio.Future[None] | None = None
    #: Set once the result is computed: nothing can be withdrawn any more.
    cleared: bool = False
    #: When the reveal_open push went out (unix us): bidders could reveal from then on.
    reveal_open_us: int | None = None
    #: Its admission token (engine/admission.py) when it was opened with a deadline.
    admission: int = -1
    #: Refused messages stored, by bidder (see ``bids.MAX_STORED_REFUSALS``).
    refusals: dict[str, int] = field(default_factory=dict)

    def settled_one(self) -> None:
        """One submitted bid event is durable (or failed)."""
        self.unsettled -= 1
        waiter = self.all_settled
        if self.unsettled == 0 and waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_settled(self) -> None:
        """Until every submitted bid event is durable (or failed)."""
        while self.unsettled:
            if self.all_settled is None or self.all_settled.done():
                self.all_settled = asyncio.get_running_loop().create_future()
            await asyncio.shield(self.all_settled)


@dataclass(frozen=True, slots=True)
class AuctionHandle:
    """What ``open_auction`` gives back: the record now, whether it is durable yet
    (``stored``; await it before telling anyone the auction exists) and, while the
    auction runs, its end (``done``)."""

    record: AuctionRecord
    done: asyncio.Future[AuctionRecord] | None
    created: bool
    stored: asyncio.Future[None] | None = None
