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
from collections.abc import Callable, Coroutine
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
from ..group_commit import GroupCommit, GroupCommitClosed
from ..metrics import ServiceMetrics
from ..penalties import is_blocked
from ..schemas import CommitBody, RevealBody
from ..store import BidEvent, Store
from ..store.records import EventKind
from .documents import iso_us
from .live import LiveAuction, Verdict
from .rate_limit import over_limit_detail
from .sessions import BidderState, Identities

if TYPE_CHECKING:
    from .peers import HousePeers

__all__ = ["MAX_STORED_REFUSALS", "BidPath", "Reply", "message_payload"]

#: Where a message's verdict goes (called once, on the event loop).
Reply = Callable[["Verdict"], None]

#: Refused messages of one bidder stored (and published) per auction; later ones are
#: answered ``too_many_rejections`` and not stored. Without a cap, one bidder at its
#: rate limit filled memory and the competition document for the auction's whole life
#: (2,380 bad signatures in 12 s made a 2.1 MB document; an hour, ~650 MB).
MAX_STORED_REFUSALS = 100

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

    def _immediate(self, verdict: Verdict, reply: Reply) -> None:
        if verdict.reason is not None:
            self.metrics.count_rejection(verdict.reason)
        reply(verdict)

    def _record(
        self,
        live: LiveAuction,
        event: BidEvent,
        verdict: Verdict,
        reply: Reply,
        previous_nonce: int | None = None,
    ) -> None:
        """GroupCommit ``event`` and ``reply(verdict)`` once it is durable.

        ``reply`` is called from the group commit's own turn of the event loop, with
        everyone else's in the same transaction (no future or callback hop per message).
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
            live.refusals[event.bidder_id] = live.refusals.get(event.bidder_id, 0) + 1

        def durable(error: BaseException | None) -> None:
            live.settled_one()
            if error is not None:
                _log.error(
                    "%s from %s in auction %s could not be stored: %r",
                    event.kind,
                    event.bidder_id,
                    event.auction_id,
                    error,
                )
                detail = "the message could not be stored and was not taken: send it again"
                live.lost_by.add(event.bidder_id)
                if event.accepted and not self._withdrawn_with_commit(live, event):
                    self._withdraw(live, event, detail, previous_nonce)
            elif event.accepted and self._withdrawn_with_commit(live, event):
                # Stored, but its commit's write failed first and took this reveal with it.
                detail = "its commit could not be stored, so this reveal was withdrawn with it"
            else:
                self.metrics.ack_latency.observe(self.clock.monotonic() - received)
                reply(verdict)
                return
            live.events[index] = replace(
                event,
                accepted=False,
                reason="store_unavailable",
                payload={**event.payload, "detail": detail},
            )
            self.metrics.count_rejection("store_unavailable")
            reply(replace(verdict, accepted=False, reason="store_unavailable", detail=detail))

        live.unsettled += 1
        self.group_commit.submit_then(event, durable)

    @staticmethod
    def _withdrawn_with_commit(live: LiveAuction, event: BidEvent) -> bool:
        """Whether ``event``, an accepted reveal, is no longer in the auction because
        its commit's write failed (withdrawing a commit takes its reveal with it)."""
        return (
            event.kind == "reveal"
            and not live.cleared
            and event.bidder_id not in live.auction.reveals
        )

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
        try:
            await self.group_commit.write(event)
        except GroupCommitClosed:
            raise
        except Exception:
            if await self.store.auction(auction_id) is not None:
                raise
            # Pruned since it ended (``auctions prune``): no row left to keep this with.
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
        return self._answer("commit", state, body, auction_id, transport)

    def reveal(
        self, state: BidderState, body: RevealBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        """Check and submit a reveal; the future gives the verdict once it is durable."""
        return self._answer("reveal", state, body, auction_id, transport)

    def take(
        self,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        reply: Reply,
    ) -> None:
        """:meth:`commit` or :meth:`reveal` without a future: ``reply(verdict)`` once it
        is durable (the WebSocket path: its acks go out in the group commit's turn)."""
        kind: EventKind = "commit" if isinstance(body, CommitBody) else "reveal"
        self._message(kind, state, body, auction_id, transport, reply)

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
        return self._answer(kind, state, body, auction_id, transport, forwarded=True)

    def _answer(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        *,
        forwarded: bool = False,
    ) -> asyncio.Future[Verdict]:
        answer: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._message(kind, state, body, auction_id, transport, answer.set_result, forwarded)
        return answer

    def _message(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        reply: Reply,
        forwarded: bool = False,
    ) -> None:
        """One path for commits and reveals: rate limit, identity, signature and block
        (commits), the engine's verdict, the group commit; see the module docstring.
        ``reply`` is called once, with the verdict."""
        if self._closing:
            verdict = Verdict(kind, auction_id, False, "shutting_down", "the service is stopping")
            self._immediate(verdict, reply)
            return
        try:
            self._take(kind, state, body, auction_id, transport, reply, forwarded)
        except PhantomAuctionError as exc:  # a value the engine refuses to even represent
            self._immediate(Verdict(kind, auction_id, False, "malformed", str(exc)), reply)

    def _later(
        self, kind: EventKind, auction_id: str, reply: Reply, coro: Coroutine[Any, Any, Verdict]
    ) -> None:
        """``reply`` with what ``coro`` decides (a store read, a forward to another
        process); a failure there is answered ``store_unavailable``."""

        def settle(task: asyncio.Task[Verdict]) -> None:
            if task.cancelled() or task.exception() is not None:
                _log.error("%s for auction %s failed: %r", kind, auction_id, task)
                self.metrics.count_rejection("store_unavailable")
                reply(Verdict(kind, auction_id, False, "store_unavailable", "internal error"))
            else:
                reply(task.result())

        asyncio.ensure_future(coro).add_done_callback(settle)

    def _take(
        self,
        kind: EventKind,
        state: BidderState,
        body: CommitBody | RevealBody,
        auction_id: str,
        transport: str,
        reply: Reply,
        forwarded: bool = False,
    ) -> None:
        if not forwarded:
            self.metrics.count_message(kind, transport)
            if not state.bucket.allow(self.clock.monotonic()):
                limit = over_limit_detail(self.config.resources.max_messages_per_second)
                self._immediate(Verdict(kind, auction_id, False, "rate_limited", limit), reply)
                return
        payload = message_payload(body, transport)
        live = self.live.get(auction_id)
        if live is None:
            if self.peers is not None and not forwarded:
                # The bidder's last nonce as of now, in the order its messages came.
                last = self.nonces.last(state.bidder_id)
                elsewhere = self._elsewhere(kind, state, body, auction_id, transport, payload, last)
                self._later(kind, auction_id, reply, elsewhere)
                return
            self._later(
                kind, auction_id, reply, self._not_live(kind, auction_id, state.bidder_id, payload)
            )
            return
        received = self.clock.now()
        received_us = to_us(received)
        if live.refusals.get(state.bidder_id, 0) >= MAX_STORED_REFUSALS:
            why = (
                f"{MAX_STORED_REFUSALS} messages of {state.bidder_id!r} already refused in "
                f"auction {auction_id}: no more are taken from it there"
            )
            self._immediate(Verdict(kind, auction_id, False, "too_many_rejections", why), reply)
            return
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
            self._record(live, event, Verdict(kind, auction_id, False, code, why), reply)
            return
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
            # An accepted reveal hashes to its commit in that commit's version (1 or 2):
            # publish that hash, the one a verifier compares (the JS bidder's audit: a
            # version 1 bid's reveal showed its version 2 hash).
            committed = auction.commitments.get(state.bidder_id) if accepted else None
            digest = bid.commitment_hash if committed is None else committed.commitment_hash
            payload["commitment"] = digest.hex()
        payload["at_us"] = to_us(audit.at)
        event = BidEvent(
            auction_id, state.bidder_id, kind, accepted, reason, body.nonce, payload, received_us
        )
        verdict = Verdict(kind, auction_id, accepted, reason, detail)
        self._record(live, event, verdict, reply, previous_nonce)
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
