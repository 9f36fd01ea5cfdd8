"""The commit and reveal path of the auction house: one path for both messages.

Each message goes: rate limit -> identity, signature and block check (commits) ->
engine (synchronously, so auctions see messages in arrival order) -> group commit; the
verdict is acknowledged only once its event is durable. A write that fails costs that
one message (withdrawn from the auction and answered ``store_unavailable``), never the
auction. :class:`BidPath` is the part of :class:`~.auction_house.AuctionHouse` that does
this (the house mixes it in; the attributes below are the house's).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...config import AuctionConfig
from ...engine import (
    CommitRejected,
    NonceRegistry,
    Phase,
    RevealRejected,
    SealedBid,
    make_bid,
)
from ...engine.clock import Clock, to_us
from ...errors import PhantomAuctionError
from ..auth import commit_signing_bytes
from ..group_commit import GroupCommit
from ..metrics import ServiceMetrics
from ..penalties import is_blocked
from ..schemas import CommitBody, RevealBody
from ..store import BidEvent, Store
from ..store.records import EventKind
from .documents import iso_us
from .live import LiveAuction, Verdict
from .sessions import BidderState, Identities

if TYPE_CHECKING:
    from .peers import HousePeers

__all__ = ["BidPath", "message_payload"]

_log = logging.getLogger(__name__)


def message_payload(body: CommitBody | RevealBody, transport: str) -> dict[str, Any]:
    """What is stored (and published) of a commit or reveal: the fields the bidder sent."""
    if isinstance(body, CommitBody):
        return {
            "transport": transport,
            "token_pair": list(body.token_pair),
            "commitment": body.commitment.lower(),
            "nonce": body.nonce,
            "signature": body.signature.lower(),
        }
    return {
        "transport": transport,
        "token_pair": list(body.token_pair),
        "improved_price": body.improved_price,
        "volume": body.volume,
        "priority_fee": body.priority_fee,
        "nonce": body.nonce,
        "salt": body.salt.lower(),
    }


class BidPath:
    """Commits and reveals, for :class:`~.auction_house.AuctionHouse`."""

    config: AuctionConfig
    store: Store
    metrics: ServiceMetrics
    clock: Clock
    group_commit: GroupCommit
    nonces: NonceRegistry
    identities: Identities
    live: dict[str, LiveAuction]
    closed: OrderedDict[str, str]
    _closing: bool

    peers: HousePeers | None

    if TYPE_CHECKING:

        def _spawn(self, coro: Any) -> asyncio.Task[Any]: ...

        async def _finish(
            self, live: LiveAuction, now: datetime, abort_reason: str | None = None
        ) -> None: ...

    def _immediate(self, verdict: Verdict) -> asyncio.Future[Verdict]:
        done: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        done.set_result(verdict)
        if verdict.reason is not None:
            self.metrics.count_rejection(verdict.reason)
        return done

    def _record(
        self,
        live: LiveAuction,
        event: BidEvent,
        verdict: Verdict,
        previous_nonce: int | None = None,
    ) -> asyncio.Future[Verdict]:
        """GroupCommit ``event`` and answer ``verdict`` once it is durable.

        If the write fails, only this message is lost: an accepted commit or reveal is
        withdrawn from the auction (and a commit's nonce given back, ``previous_nonce``
        being the bidder's last before it), the bidder is told ``store_unavailable`` and
        may send it again; the auction and everyone else's acks go on.
        """
        received = self.clock.monotonic()
        index = len(live.events)
        live.events.append(event)
        if verdict.reason is not None:
            self.metrics.count_rejection(verdict.reason)
        answer: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()

        def durable(written: asyncio.Future[None]) -> None:
            live.pending.discard(written)
            if answer.done():
                return
            error = None if written.cancelled() else written.exception()
            if written.cancelled() or error is not None:
                _log.error(
                    "%s from %s in auction %s could not be stored: %r",
                    event.kind,
                    event.bidder_id,
                    event.auction_id,
                    error,
                )
                detail = "the message could not be stored and was not taken: send it again"
                if event.accepted:
                    self._withdraw(live, event, detail, previous_nonce)
                live.events[index] = replace(
                    event,
                    accepted=False,
                    reason="store_unavailable",
                    payload={**event.payload, "detail": detail},
                )
                self.metrics.count_rejection("store_unavailable")
                answer.set_result(
                    replace(verdict, accepted=False, reason="store_unavailable", detail=detail)
                )
                return
            self.metrics.ack_latency.observe(self.clock.monotonic() - received)
            answer.set_result(verdict)

        written = self.group_commit.submit(event)
        live.pending.add(written)
        written.add_done_callback(durable)
        return answer

    def _withdraw(
        self, live: LiveAuction, event: BidEvent, detail: str, previous_nonce: int | None
    ) -> None:
        """Take back an accepted message whose event the store lost."""
        if live.cleared:
            # Only reachable if a write outlives the wait in _finish: the result has it.
            _log.error("auction %s: lost %s is already in the result", event.auction_id, event)
            return
        if event.kind == "commit":
            live.auction.withdraw(event.bidder_id, detail)
            if event.nonce is not None:
                self.nonces.release(event.bidder_id, event.nonce, previous_nonce)
        else:
            live.auction.withdraw_reveal(event.bidder_id, detail)

    async def _not_live(
        self, kind: EventKind, auction_id: str, bidder_id: str, payload: dict[str, Any]
    ) -> Verdict:
        """A message for an auction that is not running: ended, or unknown."""
        status = self.closed.get(auction_id)
        if status is None:
            record = await self.store.auction(auction_id)
            status = None if record is None else record.status
        if status is None:
            verdict = Verdict(
                kind,
                auction_id,
                False,
                "unknown_auction",
                f"auction_id={auction_id!r}: no such auction",
            )
            self.metrics.count_rejection("unknown_auction")
            return verdict
        detail = f"auction_id={auction_id!r} has ended ({status}): nothing more is accepted"
        verdict = Verdict(kind, auction_id, False, "auction_closed", detail)
        event = BidEvent(
            auction_id,
            bidder_id,
            kind,
            False,
            "auction_closed",
            payload.get("nonce"),
            {**payload, "detail": detail},
            to_us(self.clock.now()),
        )
        self.metrics.count_rejection("auction_closed")
        await self.group_commit.write(event)
        return verdict

    async def _elsewhere(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        payload: dict[str, Any],
        last_nonce: int | None,
    ) -> Verdict:
        """A message for an auction this process does not run: to its owner if another
        process runs it (``serve --workers``), else ended or unknown. ``last_nonce``:
        the bidder's last accepted nonce known here when the message came."""
        assert self.peers is not None
        owner = self.peers.owner_of(auction_id)
        if owner is None and auction_id not in self.closed:
            # Opened before this process was listening: the store names the owner.
            record = await self.store.auction(auction_id)
            if record is not None and record.status == "open":
                stored = record.engine_params.get("owner")
                if isinstance(stored, int) and stored != self.peers.me:
                    owner = stored
        if owner is not None:
            return await self.peers.forward(
                owner, kind, state.bidder_id, body, auction_id, transport, last_nonce
            )
        return await self._not_live(kind, auction_id, state.bidder_id, payload)

    def commit(
        self, state: BidderState, body: CommitBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        """Check and submit a sealed bid; the future gives the verdict once it is durable."""
        return self._message("commit", state, body, auction_id, transport)

    def reveal(
        self, state: BidderState, body: RevealBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        """Check and submit a reveal; the future gives the verdict once it is durable."""
        return self._message("reveal", state, body, auction_id, transport)

    def take_forwarded(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
    ) -> asyncio.Future[Verdict]:
        """A message another process received for an auction of this one (``serve
        --workers``): counted and rate-limited there, taken here, never sent on."""
        return self._message(kind, state, body, auction_id, transport, forwarded=True)

    def _message(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        *,
        forwarded: bool = False,
    ) -> asyncio.Future[Verdict]:
        """One path for commits and reveals: rate limit, identity, signature and block
        (commits), the engine's verdict, the group commit; see the module docstring."""
        if self._closing:
            return self._immediate(
                Verdict(kind, auction_id, False, "shutting_down", "the service is stopping")
            )
        try:
            return self._take(kind, state, body, auction_id, transport, forwarded)
        except PhantomAuctionError as exc:  # a value the engine refuses to even represent
            return self._immediate(Verdict(kind, auction_id, False, "malformed", str(exc)))

    def _take(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        forwarded: bool = False,
    ) -> asyncio.Future[Verdict]:
        if not forwarded:
            self.metrics.count_message(kind, transport)
            if not state.bucket.allow(self.clock.monotonic()):
                rate = self.config.resources.max_messages_per_second
                limit = f"more than resources.max_messages_per_second={rate:g} messages per second"
                return self._immediate(Verdict(kind, auction_id, False, "rate_limited", limit))
        payload = message_payload(body, transport)
        live = self.live.get(auction_id)
        if live is None:
            if self.peers is not None and not forwarded:
                # The bidder's last nonce as of now, in the order its messages came.
                last = self.nonces.last(state.bidder_id)
                return asyncio.ensure_future(
                    self._elsewhere(kind, state, body, auction_id, transport, payload, last)
                )
            return asyncio.ensure_future(self._not_live(kind, auction_id, state.bidder_id, payload))
        received = self.clock.now()
        received_us = to_us(received)
        refusal = self._refusal(state, body, auction_id, received_us)
        if refusal is not None:
            code, why = refusal
            event = BidEvent(
                auction_id,
                state.bidder_id,
                kind,
                False,
                code,
                body.nonce,
                {**payload, "detail": why},
                received_us,
            )
            return self._record(live, event, Verdict(kind, auction_id, False, code, why))
        auction = live.auction
        pair = (body.token_pair[0], body.token_pair[1])
        previous_nonce = None
        bid = None
        if isinstance(body, CommitBody):
            previous_nonce = self.nonces.last(state.bidder_id)
            sealed = SealedBid(
                state.bidder_id, pair, bytes.fromhex(payload["commitment"]), body.nonce, received
            )
            accepted = auction.commit(sealed, received)
        else:
            bid = make_bid(
                auction_id,
                state.bidder_id,
                pair,
                body.improved_price,
                body.volume,
                body.priority_fee,
                body.nonce,
                salt=bytes.fromhex(body.salt),
                timestamp=received,
            )
            accepted = auction.reveal(bid, received)
        audit = auction.last_event
        reason: str | None = None
        detail: str | None = None
        if isinstance(audit, CommitRejected | RevealRejected):
            reason, detail = audit.reason.value, audit.detail
            payload["detail"] = detail
        if bid is not None:
            payload["commitment"] = bid.commitment_hash.hex()
        payload["at_us"] = to_us(audit.at)
        event = BidEvent(
            auction_id, state.bidder_id, kind, accepted, reason, body.nonce, payload, received_us
        )
        answer = self._record(
            live, event, Verdict(kind, auction_id, accepted, reason, detail), previous_nonce
        )
        if (
            bid is not None
            and accepted
            and self.config.service.finish_early
            and not live.finishing
            and auction.phase is Phase.REVEALING
            and not auction.unrevealed
        ):
            # Every commitment is revealed: nothing can change the result any more.
            self._spawn(self._finish(live, received))
        return answer

    def _refusal(
        self, state: BidderState, body: CommitBody | RevealBody, auction_id: str, now_us: int
    ) -> tuple[str, str] | None:
        """Why the house refuses the message before the engine sees it (reason, detail)."""
        if body.bidder_id is not None and body.bidder_id != state.bidder_id:
            return (
                "impersonation",
                f"bidder_id={body.bidder_id!r}: authenticated as {state.bidder_id!r}",
            )
        if not isinstance(body, CommitBody):
            return None
        commitment = body.commitment.lower()
        signed = commit_signing_bytes(auction_id, state.bidder_id, commitment, body.nonce)
        if not self.identities.verify(state, body.signature, signed):
            return (
                "bad_signature",
                f"signature does not verify for {state.bidder_id!r} over auction {auction_id}, "
                f"commitment {commitment}, nonce {body.nonce}",
            )
        if is_blocked(state.penalty, now_us):
            penalty = state.penalty
            return "blocked", f"blocked until {iso_us(penalty.blocked_until_us)}: {penalty.reason}"
        return None
