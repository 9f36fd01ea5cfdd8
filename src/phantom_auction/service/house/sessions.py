"""Who is speaking: settlement clients' tokens, bidders' signed requests, their WebSocket
sessions and per-bidder state (penalty, rate limit), cached from the store.

:class:`Identities` answers "which client holds this token?" and "is this request really
from that bidder?"; registrations are read again from the store after
:data:`IDENTITY_TTL_S`, so ``clients revoke`` and ``bidders remove`` take effect within it.
While bidders are connected to this process, their registrations are also read again
every :data:`SESSION_RECHECK_S` (one read for all of them), and the WebSocket of a
removed bidder, or of one logged in with a key its registration no longer has, is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from ...config import AuctionConfig
from ...engine.clock import Clock, to_us
from ..auth import (
    BIDDER_ID,
    NO_ONE_KEY,
    PublicKeyCache,
    hash_token,
    request_signing_bytes,
    verify_signature,
)
from ..metrics import ServiceMetrics
from ..penalties import PenaltyState, is_blocked
from ..store import BidderRecord, ClientRecord, Store, compact_json
from ..ws_fastpath import text_frame
from .documents import iso_us
from .rate_limit import FloodGauge, TokenBucket

__all__ = [
    "CLOSE_KEY_CHANGED",
    "CLOSE_REMOVED",
    "CLOSE_REPLACED",
    "IDENTITY_TTL_S",
    "OUTBOX_LIMIT",
    "SESSION_RECHECK_S",
    "BidderSession",
    "BidderState",
    "Identities",
    "Rejected",
    "SeenRequests",
]

#: Seconds a client's token or a bidder's registration is trusted before it is read
#: again from the store (revocations made with the CLI take effect within this).
IDENTITY_TTL_S: Final = 30.0
#: Seconds between two reads of the registrations of the bidders connected to this
#: process (one store read for all of them, only while one is connected): a removed
#: bidder's WebSocket is closed within this plus the read, inside IDENTITY_TTL_S.
SESSION_RECHECK_S: Final = 15.0
#: Pushes queued for one WebSocket before the bidder is deemed too slow and dropped.
OUTBOX_LIMIT: Final = 10_000
#: The WebSocket close code (policy violation, as a refused login) and reasons when a
#: bidder's registration ends its session: removed, or registered with another key.
CLOSE_POLICY: Final = 1008
CLOSE_REMOVED: Final = "bidder_removed"
CLOSE_KEY_CHANGED: Final = "bidder_key_changed"
#: ... and when a newer login of the same bidder takes over (one session per bidder):
#: said, so that a second process running with the same key stops rather than take
#: turns with the first (the SDK audit: ~10 silent logins a second each).
CLOSE_REPLACED: Final = "session_replaced"

_log = logging.getLogger(__name__)


class Rejected(Exception):
    """A refused request: HTTP ``status_code``, stable ``reason`` code, ``detail`` naming
    the field and value; ``headers`` such as ``Retry-After``."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.status_code = status_code
        self.reason = reason
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    @classmethod
    def unknown_auction(cls, auction_id: str) -> Rejected:
        """404: the store holds no such auction (never opened, or pruned)."""
        return cls(404, "unknown_auction", f"auction_id={auction_id!r}: no such auction")


class SeenRequests:
    """Signatures of signed HTTP requests seen within their freshness window: each
    signed request is taken once (a replay inside the ±``challenge_ttl_s`` window is
    refused). Ed25519 signatures are deterministic, so the signature names the request."""

    __slots__ = ("_expiry", "limit")

    def __init__(self, limit: int = 1_000_000) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self.limit = limit

    def first_use(self, signature: str, now: float, expires_at: float) -> bool:
        """Record ``signature`` until ``expires_at``; False if already seen (monotonic s)."""
        key = signature.lower()
        expiry = self._expiry
        # Entries are added with the same lifetime, so the oldest expire first.
        while expiry:
            oldest, until = next(iter(expiry.items()))
            if until > now and len(expiry) < self.limit:
                break
            del expiry[oldest]
        if key in expiry:
            return False
        expiry[key] = expires_at
        return True


class BidderSession:
    """One logged-in WebSocket. Pushes go straight to the connection's output when it
    offers ``push`` (:class:`~..ws_fastpath.DirectWebSocketProtocol`), else through
    ``outbox`` to a writer task."""

    __slots__ = (
        "_push",
        "bidder_id",
        "close_code",
        "close_reason",
        "closed",
        "ended",
        "flood",
        "outbox",
        "started_ns",
    )

    def __init__(self, bidder_id: str, push: Callable[[bytes], bool] | None = None) -> None:
        self.bidder_id = bidder_id
        #: When the login completed (wall clock, ns): the newer of two sessions wins.
        self.started_ns = time.time_ns()
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        #: Set once the session is closed (by the house or the connection).
        self.ended = asyncio.Event()
        #: The WebSocket close code and reason the connection closes with.
        self.close_code = 1000
        self.close_reason = ""
        #: Its refusals for the rate limit, from the first one on (``bidder_socket``
        #: closes a flooding socket).
        self.flood: FloodGauge | None = None
        self._push = push

    def send(self, text: str, frame: bytes | None = None) -> None:
        """Queue ``text`` (``frame``: its :func:`~..ws_fastpath.text_frame`, if already built);
        a bidder that lets :data:`OUTBOX_LIMIT` messages (or the connection's buffer
        limit) pile up is disconnected."""
        if self.closed:
            return
        if self._push is not None:
            if not self._push(text_frame(text) if frame is None else frame):
                self.close()
            return
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            self.close()
            return
        self.outbox.put_nowait(text)

    def replaced(self) -> None:
        """A newer login of this bidder took over: say so (an ``error`` message), close
        (:data:`CLOSE_POLICY`, :data:`CLOSE_REPLACED`)."""
        if not self.closed:
            self.send(compact_json({"type": "error", "reason": CLOSE_REPLACED, "detail": (
                f"bidder_id={self.bidder_id!r} logged in again on another connection, "
                "which replaces this one (one session per bidder: is it running twice?)"
            )}))  # fmt: skip
            self.close(CLOSE_POLICY, CLOSE_REPLACED)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Ask the connection to close with ``code`` and ``reason`` (its writer stops at
        the ``None`` marker)."""
        if not self.closed:
            self.close_code, self.close_reason = code, reason
            self.closed = True
            self.ended.set()
            self.outbox.put_nowait(None)


@dataclass(slots=True)
class BidderState:
    """What the house keeps per known bidder."""

    record: BidderRecord
    penalty: PenaltyState
    bucket: TokenBucket
    #: When the registration was last read from the store (monotonic s).
    checked_at: float
    session: BidderSession | None = None
    #: :attr:`Identities.reads` when the registration was last read alone (a re-read
    #: of all of them that began before leaves it be).
    read_seq: int = 0

    @property
    def bidder_id(self) -> str:
        return self.record.bidder_id


class Identities:
    """Clients and bidders known to the house, their signatures and sessions."""

    def __init__(
        self, config: AuctionConfig, store: Store, metrics: ServiceMetrics, clock: Clock
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.keys = PublicKeyCache()
        self.bidders: dict[str, BidderState] = {}
        self._clients: dict[str, tuple[ClientRecord, float]] = {}
        self._requests = SeenRequests()
        #: Seconds between re-reads of the connected bidders' registrations.
        self.recheck_s = SESSION_RECHECK_S
        #: Reads of one bidder's registration so far (orders them against a re-read).
        self.reads = 0
        #: Sessions attached and not yet detached (the sweep runs while there are any).
        self.attached = 0
        self._sweeper: asyncio.Task[None] | None = None
        #: Set to end the sweep early (made with the sweep, in its event loop).
        self._wake: asyncio.Event | None = None

    async def client_for_token(self, token: str) -> ClientRecord | None:
        """The settlement client holding bearer ``token`` (cached for
        :data:`IDENTITY_TTL_S`, so that ``clients revoke`` takes effect within it)."""
        digest = hash_token(token)
        cached = self._clients.get(digest)
        if cached is not None and self.clock.monotonic() - cached[1] < IDENTITY_TTL_S:
            return cached[0]
        client = await self.store.client_by_token_hash(digest)
        if client is None:
            self._clients.pop(digest, None)
        else:
            self._clients[digest] = (client, self.clock.monotonic())
        return client

    def cached_bidder_state(self, bidder_id: str) -> BidderState | None:
        """The bidder's state if it is loaded and was read within :data:`IDENTITY_TTL_S`
        (what :meth:`bidder_state` would return without reading the store), else None."""
        state = self.bidders.get(bidder_id)
        if state is None or self.clock.monotonic() - state.checked_at >= IDENTITY_TTL_S:
            return None
        return state

    async def bidder_state(self, bidder_id: str) -> BidderState | None:
        """The bidder's state (loaded from the store on first use), or None if unknown.

        The registration is read again after :data:`IDENTITY_TTL_S` (so that ``bidders
        remove`` takes effect within it: the bidder's session is closed); the penalty
        state stays the house's own.
        """
        state = self.bidders.get(bidder_id)
        if state is not None and self.clock.monotonic() - state.checked_at >= IDENTITY_TTL_S:
            self.reads += 1
            seq = self.reads
            record = await self.store.bidder(bidder_id)
            state.read_seq = max(state.read_seq, seq)
            return self._apply(state, record, self.clock.monotonic())
        if state is None:
            self.reads += 1
            seq = self.reads
            record = await self.store.bidder(bidder_id)
            if record is None:
                return None
            state = self.bidders.get(bidder_id)  # another task may have loaded it meanwhile
            if state is None:
                now = self.clock.monotonic()
                state = BidderState(
                    record,
                    record.penalty,
                    TokenBucket(self.config.resources.max_messages_per_second, now=now),
                    checked_at=now,
                    read_seq=seq,
                )
                self.bidders[bidder_id] = state
        return state

    async def refused(self, state: BidderState) -> None:
        """After a known bidder's signature failed: read its registration again (and take
        it), the store read an unknown id's lookup costs, so that a failed signature takes
        as long for a known id as for an unknown one (timing would otherwise tell which
        bidder ids exist: ~0.9 ms against ~1.5 ms, measured). Honest bidders rarely pay
        it; a key changed meanwhile is known at once."""
        self.reads += 1
        seq = self.reads
        record = await self.store.bidder(state.bidder_id)
        state.read_seq = max(state.read_seq, seq)
        self._apply(state, record, self.clock.monotonic())

    def _apply(
        self, state: BidderState, record: BidderRecord | None, now: float
    ) -> BidderState | None:
        """Take ``record`` (None: removed), just read, as ``state``'s registration: a
        removed bidder is forgotten and its session closed; so is the session of one
        whose key changed (it logged in with the old key), which then needs a new login."""
        state.checked_at = now
        bidder_id = state.bidder_id
        if record is None:
            if self.bidders.get(bidder_id) is state:
                del self.bidders[bidder_id]
            self._end_session(
                state,
                CLOSE_REMOVED,
                f"bidder_id={bidder_id!r} is no longer registered (bidders remove)",
            )
            return None
        if record.public_key != state.record.public_key:
            self._end_session(
                state,
                CLOSE_KEY_CHANGED,
                f"bidder_id={bidder_id!r} is registered with another public key now: "
                "log in again with it",
            )
        state.record = replace(record, penalty=state.penalty)
        return state

    @staticmethod
    def _end_session(state: BidderState, reason: str, detail: str) -> None:
        """Tell ``state``'s connected session why (an ``error`` message) and close it
        (:data:`CLOSE_POLICY`, ``reason``)."""
        session = state.session
        if session is None or session.closed:
            return
        _log.info("closing %s's WebSocket: %s", state.bidder_id, detail)
        session.send(compact_json({"type": "error", "reason": reason, "detail": detail}))
        session.close(CLOSE_POLICY, reason)

    async def recheck(self) -> None:
        """Read every registration once and apply it to the loaded bidders (those read
        alone since this read began keep what that newer read found)."""
        seq = self.reads
        records = {record.bidder_id: record for record in await self.store.bidders()}
        now = self.clock.monotonic()
        for bidder_id, state in list(self.bidders.items()):
            if state.read_seq <= seq:
                self._apply(state, records.get(bidder_id), now)

    @property
    def sweeping(self) -> bool:
        """True while the periodic re-read runs (some bidder is connected here)."""
        return self._sweeper is not None and not self._sweeper.done()

    async def _sweep(self, wake: asyncio.Event) -> None:
        """Every :attr:`recheck_s` while a bidder is connected to this process: read the
        registrations again (:meth:`recheck`). Ends once no one is connected (``wake``
        is set by the last :meth:`detach`; :meth:`close` cancels it)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.recheck_s)
            wake.clear()
            if not self.attached:
                return
            try:
                await self.recheck()
            except Exception:
                if self.attached:  # (else the store may be closing with the server)
                    _log.warning("could not read the bidders' registrations", exc_info=True)

    async def close(self) -> None:
        """Stop the periodic re-read (the server is stopping)."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None and not sweeper.done():
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper

    def verify(self, state: BidderState, signature: str, message: bytes) -> bool:
        """True iff ``signature`` is ``state``'s bidder's Ed25519 signature of ``message``."""
        return verify_signature(state.record.public_key, signature, message, self.keys)

    async def authenticate_request(
        self,
        bidder_id: str | None,
        timestamp_ms: str | None,
        signature: str | None,
        method: str,
        path: str,
        body: bytes,
    ) -> BidderState:
        """The bidder behind a signed HTTP request, or :class:`Rejected` (401)."""
        if not bidder_id or not timestamp_ms or not signature:
            raise Rejected(
                401,
                "not_authenticated",
                "bidder requests need X-Bidder-Id, X-Bidder-Timestamp and X-Bidder-Signature",
            )
        try:
            stamp = int(timestamp_ms)
        except ValueError:
            raise Rejected(
                401, "not_authenticated", f"X-Bidder-Timestamp={timestamp_ms!r}: not an integer"
            ) from None
        skew_ms = abs(to_us(self.clock.now()) / 1000.0 - stamp)
        ttl_ms = self.config.security.challenge_ttl_s * 1000.0
        if skew_ms > ttl_ms:
            raise Rejected(
                401,
                "stale_request",
                f"X-Bidder-Timestamp={stamp} is {skew_ms:.0f} ms from the server's clock "
                f"(limit security.challenge_ttl_s={self.config.security.challenge_ttl_s} s)",
            )
        # An unknown id and a wrong signature get the same answer (after the same work):
        # the service must not tell anyone which bidder ids exist.
        refused = Rejected(
            401, "bad_signature", f"X-Bidder-Signature does not verify for {bidder_id!r}"
        )
        state = None
        if BIDDER_ID.fullmatch(bidder_id):
            state = await self.bidder_state(bidder_id)
        message = request_signing_bytes(bidder_id, method, path, stamp, body)
        if state is None:
            verify_signature(NO_ONE_KEY, signature, message, self.keys)
            raise refused
        if not self.verify(state, signature, message):
            await self.refused(state)
            raise refused
        # Remembered for as long as the timestamp passes the freshness check above (until
        # the server's clock is ttl past it): a request stamped ahead would otherwise be
        # taken again once a memory of ttl from its receipt had gone.
        now = self.clock.monotonic()
        fresh_ms = max(ttl_ms, stamp + ttl_ms - to_us(self.clock.now()) / 1000.0)
        if not self._requests.first_use(signature, now, now + fresh_ms / 1000.0):
            raise Rejected(
                401,
                "replayed_request",
                "this signed request was already received: sign each request anew "
                "(a new X-Bidder-Timestamp)",
            )
        return state

    def attach(self, state: BidderState, session: BidderSession) -> None:
        """Make ``session`` the bidder's push channel (a newer login replaces an older one)."""
        previous = state.session
        state.session = session
        if previous is not None and previous is not session:
            previous.replaced()
        else:
            self.metrics.connected_bidders.inc()
            self.attached += 1
        if not self.sweeping:
            self._wake = asyncio.Event()
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(self._wake))

    def detach(self, state: BidderState, session: BidderSession) -> None:
        """Forget ``session`` if it is still the bidder's push channel."""
        session.close()
        if state.session is session:
            state.session = None
            self.metrics.connected_bidders.dec()
            self.attached -= 1
            if not self.attached and self._wake is not None:
                self._wake.set()  # no one left to re-read for: the sweep ends now

    def status(self, state: BidderState) -> dict[str, Any]:
        """The bidder's penalty record and block (``BidderStatus``)."""
        penalty = state.penalty
        blocked = is_blocked(penalty, to_us(self.clock.now()))
        return {
            "bidder_id": state.bidder_id,
            "no_reveal_rate": penalty.no_reveal_rate,
            "no_reveal_threshold": self.config.security.no_reveal_threshold,
            "blocked": blocked,
            "blocked_until": iso_us(penalty.blocked_until_us) if penalty.block_count else None,
            "block_count": penalty.block_count,
            "reason": penalty.reason,
        }

    def broadcast(self, text: str, frame: bytes) -> None:
        """Push ``text`` (``frame``: its WebSocket frame) to every connected, unblocked bidder."""
        now_us = to_us(self.clock.now())
        for state in self.bidders.values():
            session = state.session
            if session is not None and not is_blocked(state.penalty, now_us):
                session.send(text, frame)

    def push(self, bidder_ids: Iterable[str], text: str, frame: bytes | None = None) -> None:
        """Push ``text`` to those of ``bidder_ids`` that are connected."""
        for bidder_id in bidder_ids:
            state = self.bidders.get(bidder_id)
            if state is not None and state.session is not None:
                state.session.send(text, frame)

    def public_keys(self, bidder_ids: Iterable[str]) -> dict[str, str]:
        """Public keys (hex) of the loaded bidders among ``bidder_ids``."""
        keys: dict[str, str] = {}
        for bidder_id in bidder_ids:
            state = self.bidders.get(bidder_id)
            if state is not None:
                keys[bidder_id] = state.record.public_key.hex()
        return keys
