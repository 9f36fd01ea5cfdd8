"""The auction house itself: it opens live auctions, runs their windows and ends them.

One concept past 600 lines: one live auction's life in the service (open, timers,
pushes, finalize, store, read back); the bid path, recovery, documents and identities
are already modules of their own beside it.

The engine's :class:`~phantom_auction.engine.Auction` decides everything about bids
(windows, nonces, commitments, validation, clearing). The house supplies what the
engine leaves out on purpose: a clock (:mod:`phantom_auction.engine.clock`), timers at
the window ends, identities (:mod:`.sessions`: who may speak for which bidder),
persistence (the group commit) and pushes to connected bidders.

Commits and reveals go one path (:mod:`.bids`, mixed into the house); auctions a crash
left open are ended on start (:mod:`.recovery`); the JSON documents live in
:mod:`.documents`.

One module for the house's own state (open auctions, their timers, who is connected);
the pieces that need none of it are the modules beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from ...config import AuctionConfig
from ...engine import (
    Auction,
    AuctionResult,
    NonceRegistry,
    Phase,
    SealedBid,
    SettlementRequest,
    abort_auction,
    finalize_auction,
)
from ...engine.admission import Overloaded, admission_for
from ...engine.clock import Clock, SystemClock, to_us
from ...engine.runner import DEFAULT_FINALIZE_MARGIN_MS
from ...errors import AuctionTimeout, InvalidBidParameters
from ..group_commit import GroupCommit, GroupCommitClosed
from ..metrics import ServiceMetrics
from ..penalties import record_reveal_outcome
from ..schemas import OpenAuctionBody
from ..store import (
    AuctionFinished,
    AuctionRecord,
    BidEvent,
    ClientRecord,
    PenaltyUpdate,
    Store,
    Write,
    compact_json,
)
from ..ws_fastpath import text_frame
from .bids import BidPath
from .documents import (
    announcement_document,
    auction_closed_documents,
    competition_document,
    competition_stored,
    competition_view,
    events_covered,
    is_competition_view,
    result_document,
    reveal_open_document,
)
from .live import AuctionHandle, LiveAuction
from .recovery import recover_open_auctions
from .sessions import BidderSession, BidderState, Identities, Rejected

if TYPE_CHECKING:
    from ..claim import SchemaClaim
    from .peers import HousePeers

__all__ = ["AuctionHouse"]

_log = logging.getLogger(__name__)

#: Ended auctions remembered by id (no store read to answer a straggler's message).
CLOSED_REMEMBERED: Final = 100_000
#: Bidders whose auctions' ends are kept for their next login, as they were not
#: connected to hear them (the oldest forgotten first), and the ends kept for each (its
#: latest auctions': a WebSocket bidder back from a dropped connection missed a few).
UNTOLD_BIDDERS: Final = 10_000
UNTOLD_PER_BIDDER: Final = 16
#: An auction finished this late (s) after its reveal deadline found this process
#: standing still through it: its no-reveals are not penalized (reveals sent in time may
#: have waited unread). Well above the event loop's lag under load (~20 ms).
STALL_S: Final = 0.25


def _request_digest(body: OpenAuctionBody) -> str:
    fields = body.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class AuctionHouse(BidPath):
    """Runs live auctions for settlement clients and bidders (one per service process)."""

    def __init__(
        self,
        config: AuctionConfig,
        store: Store,
        metrics: ServiceMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics or ServiceMetrics()
        #: Where every time the house uses comes from (the system's clocks by default).
        self.clock: Clock = SystemClock() if clock is None else clock
        self.group_commit = GroupCommit(store, self.metrics)
        self.nonces = NonceRegistry()
        self.identities = Identities(config, store, self.metrics, self.clock)
        self.keys = self.identities.keys
        #: Known bidders' states, by id (shared with :attr:`identities`).
        self.bidders = self.identities.bidders
        self.live: dict[str, LiveAuction] = {}
        # Ended auctions by id -> status. Only ids: a server keeping every finished
        # auction's objects would spend its time in the garbage collector.
        self.closed: OrderedDict[str, str] = OrderedDict()
        self._by_key: dict[tuple[int, str], LiveAuction] = {}
        self._key_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._configs: dict[int, AuctionConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.recovered: dict[str, str] = {}
        # The ``auction_closed`` pushes of auctions this process ended, by bidder and
        # auction, for those not connected here to hear them (one whose connection
        # dropped; after a restart, every bidder): sent as each logs in, here or
        # (``--workers``) at another process, which also says when it pushed them.
        self._untold: OrderedDict[str, dict[str, str]] = OrderedDict()
        #: Called with each auction this process finishes, once its end is durable: its
        #: record and bid events (what the explorer's feed summarizes without a read).
        self.finish_listeners: list[Callable[[AuctionRecord, list[BidEvent]], None]] = []
        #: Called with each auction this process opens, and with None once a graceful
        #: stop begins (no more will open): the explorer's feed answers waiting pages then.
        self.open_listeners: list[Callable[[str | None], None]] = []
        #: The other server processes (``serve --workers N``); None when this one is alone.
        self.peers: HousePeers | None = None
        #: The lock held on a PostgreSQL store's schema while this server runs (taken
        #: before recovery: :mod:`~phantom_auction.service.claim`); None for other stores.
        self.claim: SchemaClaim | None = None
        #: What this server lost that it cannot serve without (set by
        #: :meth:`lost_database`); ``stop`` is then called, which ``serve`` sets to end
        #: its server (by default nothing more happens than the log line).
        self.fatal: str | None = None
        self.stop: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Claim the store, create or migrate its schema, recover auctions a crash left
        open, load nonces."""
        if self.claim is not None:
            await self.claim.take()
        await self.store.start()
        self.group_commit.start()
        if self.peers is not None:
            await self.peers.start()
        self.recovered = await self._recover()
        if self.peers is not None:
            await self.peers.learn_running(self.config)
        # Into the registry, not a new one: nonces other processes published meanwhile stay.
        for bidder_id, nonce in (await self.store.last_nonces()).items():
            self.nonces.restore(bidder_id, nonce)

    def lost_database(self, what: str) -> None:
        """``what`` closed: a connection that held a lock other servers rely on (the
        schema claim, the liveness lock). Serving on would let another server end this
        one's auctions, so it stops; started again, it recovers as after a crash."""
        if self.fatal is not None or self._closing:
            return
        self.fatal = f"lost {what}: stopping"
        _log.critical("%s", self.fatal)
        self.stop()

    async def recover_stopped(self) -> None:
        """End the open auctions of server processes that have stopped (``serve
        --workers``): what a restarted process does at its start, done here as soon as
        one is found gone (the other processes are told)."""
        assert self.peers is not None
        try:
            ended = await self._recover()
        except Exception:
            _log.exception("could not end the auctions of a stopped process")
            return
        self.recovered.update(ended)
        self.peers.ended(ended)

    async def _recover(self) -> dict[str, str]:
        """:func:`recover_open_auctions`: under ``--workers`` only the auctions whose
        process is gone, one process at a time."""
        if self.peers is None:
            return await recover_open_auctions(
                self.store, self.config, self.clock, self.metrics, ended=self._tell_closed
            )
        async with self.peers.link.recovery_turn():
            return await recover_open_auctions(
                self.store,
                self.config,
                self.clock,
                self.metrics,
                self.peers.orphaned,
                ended=self._tell_closed,
            )

    def _tell_closed(
        self,
        result: AuctionResult,
        status: str,
        committed: Mapping[str, SealedBid],
        penalties: Sequence[PenaltyUpdate] = (),
    ) -> None:
        """Each committed bidder's ``auction_closed``, of an auction this process ended or
        recovered (the fault audit: those bidders never heard): pushed to those connected
        here, under ``--workers`` to the others' through them (with the penalty changes);
        kept for the next login of one not connected here (the process it is connected
        to, if any, says it pushed it: :meth:`told`). The SDK audit: a bidder whose
        connection dropped between its reveal and the end never learnt of its fill."""
        untold = self._untold
        for bidder_id, closed in auction_closed_documents(result, status, committed):
            state = self.bidders.get(bidder_id)
            if state is not None and state.session is not None:
                state.session.send(compact_json(closed))
                continue
            kept = untold.get(bidder_id)
            if kept is None:
                kept = untold[bidder_id] = {}
                if len(untold) > UNTOLD_BIDDERS:
                    untold.popitem(last=False)
            kept[result.auction_id] = compact_json(closed)
            if len(kept) > UNTOLD_PER_BIDDER:
                del kept[next(iter(kept))]
        if self.peers is not None:
            self.peers.closed(result, status, committed, penalties)

    def untold(self, bidder_id: str) -> dict[str, str]:
        """The ``auction_closed`` pushes (by auction id) of auctions this process ended
        that ``bidder_id`` has not been sent (once: forgotten here)."""
        return self._untold.pop(bidder_id, {})

    def told(self, auction_id: str, bidder_ids: Iterable[str]) -> None:
        """Another process pushed ``auction_id``'s end to these bidders."""
        for bidder_id in bidder_ids:
            untold = self._untold.get(bidder_id)
            if untold is not None:
                untold.pop(auction_id, None)
                if not untold:
                    del self._untold[bidder_id]

    async def close(self) -> None:
        """Graceful stop: end every live auction (finalize or abort), flush, close."""
        await self.end_auctions()
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        for state in self.bidders.values():
            if state.session is not None:
                state.session.close()
        await self.identities.close()
        await self.group_commit.close()
        if self.peers is not None:
            await self.peers.close()
        await self.store.close()
        if self.claim is not None:
            await self.claim.release()

    async def end_auctions(self) -> None:
        """The first step of a graceful stop: open no more auctions and end the running
        ones now (finalized if their reveal window is over or every bid is revealed,
        else aborted, which penalizes no one), while bidders are still connected to be
        told; ``serve`` calls it as soon as it is asked to stop."""
        self._closing = True
        for listener in self.open_listeners:
            listener(None)
        for live in list(self.live.values()):
            for timer in live.timers:
                timer.cancel()
            if not live.finishing:
                now = self.clock.now()
                auction = live.auction
                auction.advance(now)
                revealed_all = auction.phase is Phase.REVEALING and not auction.unrevealed
                if now >= auction.reveal_deadline or revealed_all:
                    await self._finish(live, now)
                else:
                    await self._finish(live, now, abort_reason="server shutting down")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ identities

    async def client_for_token(self, token: str) -> ClientRecord | None:
        """See :meth:`Identities.client_for_token`."""
        return await self.identities.client_for_token(token)

    async def bidder_state(self, bidder_id: str) -> BidderState | None:
        """See :meth:`Identities.bidder_state`."""
        return await self.identities.bidder_state(bidder_id)

    async def authenticate_request(
        self,
        bidder_id: str | None,
        timestamp_ms: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
    ) -> BidderState:
        """See :meth:`Identities.authenticate_request`."""
        return await self.identities.authenticate_request(
            bidder_id, timestamp_ms, signature, method, path, body
        )

    def attach(self, state: BidderState, session: BidderSession) -> None:
        """See :meth:`Identities.attach`; under ``serve --workers`` the other processes
        close the bidder's older session too (one session, one rate limit per bidder)."""
        self.identities.attach(state, session)
        if self.peers is not None:
            self.peers.logged_in(state.bidder_id, session.started_ns)

    def detach(self, state: BidderState, session: BidderSession) -> None:
        """See :meth:`Identities.detach`."""
        self.identities.detach(state, session)

    def status(self, state: BidderState) -> dict[str, Any]:
        """See :meth:`Identities.status`."""
        return self.identities.status(state)

    # ------------------------------------------------------------------ opening

    def _config_for_duration(self, duration_ms: int) -> AuctionConfig:
        pa = self.config.phantom_auction
        if duration_ms == pa.duration_ms:
            return self.config
        config = self._configs.get(duration_ms)
        if config is None:
            reveal = round(duration_ms * pa.reveal_delay_ms / pa.duration_ms)
            reveal = min(max(1, reveal), max(1, duration_ms - 1))
            config = self.config.model_copy(
                update={
                    "phantom_auction": pa.model_copy(
                        update={"duration_ms": duration_ms, "reveal_delay_ms": reveal}
                    )
                }
            )
            if len(self._configs) > 256:
                self._configs.clear()
            self._configs[duration_ms] = config
        return config

    def retry_after_s(self) -> int:
        """Seconds until the soonest live auction ends (at least 1): the 503's Retry-After."""
        if not self.live:
            return 1
        soonest = min(live.auction.reveal_deadline for live in self.live.values())
        return max(1, math.ceil((soonest - self.clock.now()).total_seconds()))

    async def open_auction(self, client: ClientRecord, body: OpenAuctionBody) -> AuctionHandle:
        """Open an auction for ``client`` (or return the one its ``idempotency_key`` names).

        Raises :class:`Rejected`: 409 if the key was used with other fields, 422 if the
        engine refuses the parameters or the deadline is too close, 503 when
        ``resources.max_concurrent_auctions`` auctions are running.
        """
        if self._closing:
            raise Rejected(
                503, "shutting_down", "the service is stopping", headers={"Retry-After": "1"}
            )
        digest = _request_digest(body)
        if body.idempotency_key is None:
            return self._open(client, body, digest)
        key = (client.client_id, body.idempotency_key)
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                live = self._by_key.get(key)
                record = live.record if live is not None else None
                if record is None:
                    record = await self.store.auction_by_key(*key)
                if record is None:
                    return self._open(client, body, digest)
                if record.request_digest != digest:
                    raise Rejected(
                        409,
                        "idempotency_key_reused",
                        f"idempotency_key={body.idempotency_key!r} was used for auction "
                        f"{record.auction_id} with other fields",
                        field="idempotency_key",
                    )
                if live is not None and not live.done.done():
                    return AuctionHandle(live.record, live.done, created=False)
                if live is not None:
                    record = live.done.result()
                if record.status == "open" and self.peers is not None:
                    # Running in another process: answer once it has ended there.
                    ended = asyncio.ensure_future(self._ended_elsewhere(record))
                    return AuctionHandle(record, ended, created=False)
                return AuctionHandle(record, None, created=False)
        finally:
            if not lock.locked() and key in self._key_locks and self._key_locks[key] is lock:
                del self._key_locks[key]

    async def _ended_elsewhere(self, record: AuctionRecord) -> AuctionRecord:
        """``record`` once another process has ended it (as stored then)."""
        assert self.peers is not None
        margin_s = 10.0  # the owner's finalization and write, on a loaded machine
        wait_s = (record.reveal_deadline_us - to_us(self.clock.now())) / 1e6 + margin_s
        await self.peers.wait_for_end(record.auction_id, max(margin_s, wait_s), self.store)
        return await self.store.auction(record.auction_id) or record

    def _open(self, client: ClientRecord, body: OpenAuctionBody, digest: str) -> AuctionHandle:
        resources = self.config.resources
        limit, share = resources.max_concurrent_auctions, resources.max_auctions_per_client
        busy = None
        if len(self.live) >= limit:
            busy = f"resources.max_concurrent_auctions={limit} auctions are running"
        elif len(self.live) >= share:  # only then can this client be at its share
            own = sum(live.record.client_id == client.client_id for live in self.live.values())
            if own >= share:
                busy = f"resources.max_auctions_per_client={share} of this client's are running"
        if busy is not None:
            raise Rejected(
                503,
                "too_many_auctions",
                busy,
                headers={"Retry-After": str(self.retry_after_s())},
            )
        now = self.clock.now()
        if body.deadline is not None:
            deadline = body.deadline.astimezone(UTC)
            config, reserve_ms = self.config, DEFAULT_FINALIZE_MARGIN_MS
            if body.duration_ms is not None:
                raise Rejected(
                    422,
                    "malformed",
                    "give deadline or duration_ms, not both",
                    field="duration_ms",
                )
        else:
            duration_ms = body.duration_ms or self.config.phantom_auction.duration_ms
            deadline = now + timedelta(milliseconds=duration_ms)
            config, reserve_ms = self._config_for_duration(duration_ms), 0.0
        auction_id = uuid.uuid4().hex
        try:
            request = SettlementRequest(
                body.token_in, body.token_out, body.amount, body.idempotency_key or ""
            )
            auction = Auction(
                request,
                body.baseline_price,
                body.amount,
                deadline,
                config=config,
                auction_id=auction_id,
                nonces=self.nonces,
                now=now,
                reserve_ms=reserve_ms,
            )
        except AuctionTimeout as exc:
            # Named as the request gave it: its deadline, its duration_ms, or neither.
            minimum = f"the minimum window of {exc.required_ms:g} ms"
            if body.deadline is not None:
                field: str | None = "deadline"
                why = (
                    f"deadline={body.deadline.isoformat()!r} leaves "
                    f"{exc.available_ms:.3f} ms: below {minimum}"
                )
            elif body.duration_ms is not None:
                field, why = "duration_ms", f"duration_ms={body.duration_ms}: below {minimum}"
            else:
                pa = self.config.phantom_auction
                field, why = None, f"phantom_auction.duration_ms={pa.duration_ms}: below {minimum}"
            why += " (auction_mechanics.min_window_ms)"
            raise Rejected(422, "deadline_too_close", why, field=field) from None
        except InvalidBidParameters as exc:
            raise Rejected(422, "malformed", str(exc), field=exc.field) from None
        admission = -1
        if body.deadline is not None:
            # A deadline is a promise: refuse it now if this loop cannot keep it without
            # making an auction already promised late (engine/admission.py).
            gate = admission_for(asyncio.get_running_loop())
            try:
                admission = gate.admit(
                    self.clock.loop_time(deadline), self.clock.loop_time(auction.reveal_deadline)
                )
            except Overloaded as exc:
                retry = str(max(1, math.ceil(exc.retry_after_s)))
                raise Rejected(
                    503, "overloaded", str(exc), headers={"Retry-After": retry}
                ) from None
            gate.waiting(
                admission,
                self.clock.loop_time(auction.reveal_deadline),
                self.clock.loop_time(deadline),
            )
        record = AuctionRecord(
            auction_id=auction_id,
            client_id=client.client_id,
            idempotency_key=body.idempotency_key,
            request_digest=digest,
            token_in=body.token_in,
            token_out=body.token_out,
            amount=auction.amount,
            baseline_price=auction.baseline_price,
            opened_at_us=to_us(auction.opened_at),
            commit_deadline_us=to_us(auction.commit_deadline),
            reveal_deadline_us=to_us(auction.reveal_deadline),
            phantom_commitment=auction.phantom_commitment.hex(),
            phantom_seed=auction.phantom_seed.hex(),
            engine_params={
                "config": {
                    "phantom_auction": config.phantom_auction.model_dump(),
                    "auction_mechanics": config.auction_mechanics.model_dump(),
                },
                "deadline_us": to_us(deadline),
                "reserve_ms": reserve_ms,
                "request_id": request.request_id,
                # Which process runs it (serve --workers): read by the others' recovery.
                **({} if self.peers is None else {"owner": self.peers.me}),
            },
        )
        loop = asyncio.get_running_loop()
        # Built once, sent as the same bytes to every bidder.
        announcement = compact_json(announcement_document(auction))
        live = LiveAuction(
            record=record,
            auction=auction,
            announcement=announcement,
            announcement_frame=text_frame(announcement),
            done=loop.create_future(),
            admission=admission,
        )
        self.live[auction_id] = live
        if body.idempotency_key is not None:
            self._by_key[(client.client_id, body.idempotency_key)] = live
        self.metrics.open_auctions.set(len(self.live))
        # Queued before any bid can be: the group commit's order puts the auction row first.
        opened = self.group_commit.submit(record)
        opened.add_done_callback(lambda f: self._opened_durably(live, f))
        live.timers = [
            loop.call_at(
                self.clock.loop_time(auction.commit_deadline), self._collection_over, live
            ),
            loop.call_at(self.clock.loop_time(auction.reveal_deadline), self._reveal_over, live),
        ]
        self.identities.broadcast(live.announcement, live.announcement_frame)
        if self.peers is not None:
            self.peers.opened(auction_id, announcement)
        for listener in self.open_listeners:
            listener(auction_id)
        return AuctionHandle(record, live.done, created=True, stored=opened)

    def _opened_durably(self, live: LiveAuction, opened: asyncio.Future[None]) -> None:
        if opened.cancelled() or opened.exception() is not None:
            _log.error("auction %s could not be stored: %r", live.record.auction_id, opened)
            live.store_failed = True
            # Its client was answered store_unavailable: a retry under the same key opens
            # a new auction (this one never existed for the store), and its bidders are
            # told at once that it is over, instead of sending bids it cannot keep.
            self._drop_key(live)
            if not live.finishing:
                self._spawn(self._finish(live, self.clock.now()))

    def still_collecting(self) -> list[tuple[str, bytes]]:
        """The ``auction_opened`` pushes (text, frame) of every auction still taking
        commits, this process's and under ``--workers`` the others': sent to a bidder as
        it logs in, so that one reconnecting mid-auction (after a restart, say) can
        still bid in it (the fault audit: a quarter of the auctions right after a
        restart ended ``no_bids``)."""
        now = self.clock.now()
        return [
            (text, text_frame(text))
            for text in self._open_texts()
            if datetime.fromisoformat(json.loads(text)["commit_deadline"]) > now
        ]

    def open_announcements(self) -> list[dict[str, Any]]:
        """``auction_opened`` documents of every auction still collecting or revealing."""
        return [json.loads(text) for text in self._open_texts()]

    def _open_texts(self) -> list[str]:
        """The ``auction_opened`` texts of every auction still collecting or revealing,
        this process's and under ``--workers`` the others'."""
        texts = [
            live.announcement
            for live in self.live.values()
            if not live.finishing and live.auction.phase in (Phase.COLLECTING, Phase.REVEALING)
        ]
        if self.peers is not None:
            texts += self.peers.open_announcements()
        return texts

    # ------------------------------------------------------------------ windows and ends

    def _collection_over(self, live: LiveAuction) -> None:
        if live.finishing:
            return
        auction = live.auction
        auction.advance(max(self.clock.now(), auction.commit_deadline))
        live.reveal_open_us = to_us(self.clock.now())
        message = compact_json(reveal_open_document(auction))
        self.identities.push(auction.commitments, message, text_frame(message))
        if self.peers is not None:
            self.peers.reveal_open(auction.auction_id, message, auction.commitments)
        if not auction.unrevealed and self.config.service.finish_early:
            self._spawn(self._finish(live, self.clock.now()))

    def _reveal_over(self, live: LiveAuction) -> None:
        if not live.finishing:
            self._spawn(self._finish(live, max(self.clock.now(), live.auction.reveal_deadline)))

    async def _finish(
        self, live: LiveAuction, now: datetime, abort_reason: str | None = None
    ) -> None:
        """Finalize (or abort) ``live``, make it durable with the penalties, tell everyone."""
        if live.finishing:
            return
        live.finishing = True
        auction = live.auction
        triggered = self.clock.now().timestamp()
        # A message whose write fails is withdrawn: settle that before clearing.
        await live.wait_settled()
        if abort_reason is None and auction.phase is Phase.REVEALING and auction.unrevealed:
            if self._closing:
                abort_reason = "server shutting down"  # end_auctions has passed it by
            elif self.clock.now() < auction.reveal_deadline:
                # Finishing early, once every bid was revealed, but a reveal's write
                # failed and it was withdrawn: the auction runs on (the bidder may send
                # it again) to its reveal deadline, on a timer armed anew (the first
                # may have fired while this waited).
                live.finishing = False
                deadline = self.clock.loop_time(auction.reveal_deadline)
                loop = asyncio.get_running_loop()
                live.timers.append(loop.call_at(deadline, self._reveal_over, live))
                return
            else:
                now = max(now, auction.reveal_deadline)
        for timer in live.timers:
            timer.cancel()
        live.cleared = True
        if live.store_failed and abort_reason is None:
            abort_reason = "the auction could not be stored"
        result = None
        if abort_reason is None:
            try:
                result = finalize_auction(auction, now=max(now, auction.clock))
                status = "finalized"
            except Exception as exc:
                # A clearing bug must not leave the auction open for good, its bidders
                # and settlement request never answered: the user gets the baseline.
                _log.exception("auction %s could not be cleared", auction.auction_id)
                abort_reason = f"the auction could not be cleared: {exc}"
        if result is None:
            assert abort_reason is not None
            result = abort_auction(auction, abort_reason, now=max(now, auction.clock))
            status = "aborted"
        unrevealed = set(result.unrevealed)
        # Blocks start at the engine's finalization time, which the result publishes.
        penalized_at = to_us(result.finalized_at)
        penalties: list[Write] = []
        newly_blocked: list[BidderState] = []
        # This process stood still past the reveal deadline (a VM pause, SIGSTOP, a
        # loop blocked): reveals sent in time may have been read after it.
        stalled = triggered - auction.reveal_deadline.timestamp() > STALL_S
        if status == "finalized" and self._reveal_was_possible(live) and not stalled:
            for bidder_id in auction.commitments:
                state = self.bidders.get(bidder_id)
                if state is None or bidder_id in live.lost_by:  # the store lost its message
                    continue
                before = state.penalty
                after = record_reveal_outcome(
                    before,
                    revealed=bidder_id not in unrevealed,
                    now_us=penalized_at,
                    security=self.config.security,
                )
                if after == before:
                    # A bidder that keeps revealing keeps a rate of 0: nothing to store
                    # (saves a row update per bidder and auction in the common case).
                    continue
                state.penalty = after
                penalties.append(PenaltyUpdate(bidder_id, after))
                if after.block_count > before.block_count:
                    newly_blocked.append(state)
        finished = AuctionFinished(
            auction.auction_id,
            status,  # type: ignore[arg-type]
            str(result.outcome),
            result_document(result),
            # Stored without the parts that repeat the events (built again on read);
            # whole if an event was lost: the store lacks it, the document tells it.
            (competition_document if live.lost_by else competition_stored)(
                live.record,
                live.events,
                result,
                status,
                self.identities.public_keys(dict.fromkeys(e.bidder_id for e in live.events)),
                auction.rule_book,
            ),
            to_us(self.clock.now()),
        )
        if not await self._holds_auctions(live):
            return
        # An auction whose opening was never stored has no row to end: it is only told.
        if not live.store_failed and not await self._store_end(live, finished, penalties):
            return
        done_at = self.clock.now().timestamp()
        live.record = replace(
            live.record,
            status=finished.status,
            outcome=finished.outcome,
            result=finished.result,
            competition=finished.competition,
            finished_at_us=finished.finished_at_us,
        )
        self._forget(live)
        self.closed[auction.auction_id] = status
        if len(self.closed) > CLOSED_REMEMBERED:
            self.closed.popitem(last=False)
        if not live.done.done():
            live.done.set_result(live.record)
        if not live.store_failed:  # one the store never had is no one's to list
            for listener in self.finish_listeners:
                listener(live.record, live.events)
        self.metrics.count_auction(str(result.outcome))
        bidding_ended = min(triggered, auction.reveal_deadline.timestamp())
        self.metrics.result_latency.observe(max(0.0, done_at - bidding_ended))
        changed = [p for p in penalties if isinstance(p, PenaltyUpdate)]
        self._tell_closed(result, status, auction.commitments, changed)
        for state in newly_blocked:
            if state.session is not None:
                state.session.send(compact_json({"type": "blocked", **self.status(state)}))

    async def _holds_auctions(self, live: LiveAuction) -> bool:
        """Whether this process still holds the locks that keep other servers off its
        auctions (a PostgreSQL store's claim; under ``--workers`` its liveness lock).
        After a pause longer than the lease another server may have ended ``live`` by
        recovery: this one must then not tell anyone its own end (the fault audit's VM
        pause: clients and bidders were told one outcome while another was stored)."""
        for lease in (self.claim, None if self.peers is None else self.peers.link):
            if lease is not None and not await lease.holds():
                _log.error(
                    "auction %s: not ended here: this server lost its lock on the store "
                    "(another server ends its auctions)",
                    live.record.auction_id,
                )
                if not live.done.done():
                    detail = "this server lost its lock on the store: ask again"
                    live.done.set_exception(Rejected(503, "store_unavailable", detail))
                    live.done.exception()  # retrieved: waiters may have gone
                self._forget(live)
                return False
        return True

    def _reveal_was_possible(self, live: LiveAuction) -> bool:
        """Whether a no-reveal in ``live`` may be penalized: the reveal window, counted
        from when the ``reveal_open`` push actually went out, lasted at least
        ``security.min_penalized_reveal_ms``. A shorter window (a client's very short
        auction, or the venue's own lag) is the venue's doing, not the bidder's."""
        auction = live.auction
        opened_us = max(to_us(auction.commit_deadline), live.reveal_open_us or 0)
        window_ms = (to_us(auction.reveal_deadline) - opened_us) / 1000.0
        return window_ms >= self.config.security.min_penalized_reveal_ms

    async def _store_end(
        self, live: LiveAuction, finished: AuctionFinished, penalties: list[Write]
    ) -> bool:
        """Write an auction's end, trying again (every 0.5 s, doubling to 5 s) while the
        store refuses it: given up, the auction stayed open for good, its bidders never
        told (the operator audit's PostgreSQL outage). The first failure answers the
        waiting settlement requests ``store_unavailable``. False if the server stopped
        first (a restart's recovery ends the auction)."""
        delay, failed_at = 0.5, None
        while True:
            try:
                await self.group_commit.write(finished, *penalties)
            except Exception as exc:
                if failed_at is None:
                    failed_at = self.clock.monotonic()
                    _log.error(
                        "auction %s: its result could not be stored (trying again): %r",
                        finished.auction_id,
                        exc,
                    )
                    if not live.done.done():
                        detail = f"the result could not be stored: {exc}"
                        live.done.set_exception(Rejected(503, "store_unavailable", detail))
                        live.done.exception()  # retrieved: waiters may have gone
                if self._closing or isinstance(exc, GroupCommitClosed):
                    self._forget(live)
                    return False
                await asyncio.sleep(delay)
                delay = min(5.0, 2 * delay)
                continue
            if failed_at is not None:
                waited = self.clock.monotonic() - failed_at
                _log.warning("auction %s: result stored after %.1f s", finished.auction_id, waited)
            return True

    def _forget(self, live: LiveAuction) -> None:
        if live.admission >= 0:
            admission_for(asyncio.get_running_loop()).finished(live.admission)
            live.admission = -1
        self.live.pop(live.record.auction_id, None)
        self._drop_key(live)
        self.metrics.open_auctions.set(len(self.live))

    def _drop_key(self, live: LiveAuction) -> None:
        """Forget ``live``'s idempotency key: a request under it opens a new auction."""
        record = live.record
        if record.idempotency_key is not None:
            key = (record.client_id, record.idempotency_key)
            if self._by_key.get(key) is live:
                del self._by_key[key]

    # ------------------------------------------------------------------ reading

    async def competition(self, record: AuctionRecord) -> dict[str, Any] | None:
        """The published competition document of ``record`` (None while it runs); raises
        :class:`Rejected` 404 if the auction was pruned after ``record`` was read."""
        stored = record.competition
        if stored is None:
            return None
        if not is_competition_view(stored):
            return stored
        events = await self.store.events(record.auction_id)
        if len(events) < events_covered(stored):
            # Pruned between reading the auction and its events: gone, as after the prune.
            raise Rejected.unknown_auction(record.auction_id)
        return competition_view(stored, events)

    async def auction_record(self, auction_id: str) -> AuctionRecord | None:
        """The auction as stored (live ones from memory)."""
        live = self.live.get(auction_id)
        if live is not None:
            return live.record
        return await self.store.auction(auction_id)
