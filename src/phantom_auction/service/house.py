"""The auction house: live auctions driven through the engine, durably, for many clients.

Past 600 lines and several concepts (rate limits, sessions, public documents, recovery):
the split is open work (issue 15), not a design choice.

The engine's :class:`~phantom_auction.engine.Auction` decides everything about bids
(windows, nonces, commitments, validation, clearing). The house supplies what the
engine leaves out on purpose: a clock, timers at the window ends, identities (who may
speak for which bidder), persistence and pushes to connected bidders.

Each commit or reveal goes: rate limit -> identity and signature -> block check ->
engine (synchronously, so auctions see messages in arrival order) -> journal. The
verdict is acknowledged only when its event is durable. On start, auctions that a
crash left open are rebuilt from their stored events with ``Auction.replay``: those
past their reveal window are finalized, the others aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..config import AuctionConfig, AuctionMechanicsConfig, PhantomAuctionConfig
from ..engine import (
    Auction,
    AuctionResult,
    CommitAccepted,
    CommitRejected,
    ImprovementBid,
    NonceRegistry,
    Phase,
    RankedBid,
    RevealAccepted,
    RevealRejected,
    SealedBid,
    SettlementRequest,
    abort_auction,
    finalize_auction,
    make_bid,
    to_jsonable,
)
from ..engine.admission import Overloaded, admission_for
from ..engine.runner import DEFAULT_FINALIZE_MARGIN_MS
from ..errors import AuctionTimeout, InvalidBidParameters, PhantomAuctionError
from .auth import (
    BIDDER_ID,
    NO_ONE_KEY,
    PublicKeyCache,
    commit_signing_bytes,
    hash_token,
    request_signing_bytes,
    verify_signature,
)
from .journal import Journal
from .metrics import ServiceMetrics
from .penalties import PenaltyState, is_blocked, record_reveal_outcome
from .schemas import CommitBody, OpenAuctionBody, RevealBody
from .store import (
    AuctionFinished,
    AuctionRecord,
    BidderRecord,
    BidEvent,
    ClientRecord,
    PenaltyUpdate,
    Store,
    Write,
    compact_json,
    now_us,
)
from .wsdirect import text_frame

__all__ = [
    "AuctionHandle",
    "AuctionHouse",
    "BidderSession",
    "BidderState",
    "Rejected",
    "TokenBucket",
    "Verdict",
    "accepted_events",
    "announcement_document",
    "auction_view",
    "competition_document",
    "from_us",
    "result_document",
    "to_us",
]

_log = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
#: Ended auctions remembered by id (no store read to answer a straggler's message).
_CLOSED_REMEMBERED: Final = 100_000
#: Seconds a client's token or a bidder's registration is trusted before it is read
#: again from the store (revocations made with the CLI take effect within this).
IDENTITY_TTL_S: Final = 30.0
#: Pushes queued for one WebSocket before the bidder is deemed too slow and dropped.
OUTBOX_LIMIT: Final = 10_000


def to_us(moment: datetime) -> int:
    """Unix microseconds of an aware datetime (exact)."""
    return (moment - _EPOCH) // _US


def from_us(us: int) -> datetime:
    """The UTC datetime of unix microseconds (exact)."""
    return _EPOCH + timedelta(microseconds=us)


def _iso_us(us: int | None) -> str | None:
    return None if us is None else from_us(us).isoformat()


class SeenRequests:
    """Signatures of signed HTTP requests seen within their freshness window: each
    signed request is taken once (a replay inside the ±``challenge_ttl_s`` window is
    refused). Ed25519 signatures are deterministic, so the signature names the request."""

    __slots__ = ("_expiry", "limit")

    def __init__(self, limit: int = 1_000_000) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self.limit = limit

    def first_use(self, signature: str, expires_at: float) -> bool:
        """Record ``signature`` until ``expires_at`` (monotonic s); False if already seen."""
        key = signature.lower()
        now = time.monotonic()
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


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one commit or reveal: ``accepted``, or ``reason`` and ``detail``."""

    kind: str
    auction_id: str | None
    accepted: bool
    reason: str | None = None
    detail: str | None = None


class TokenBucket:
    """``rate`` messages per second on average, bursts up to ``capacity``."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate if capacity is None else capacity)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self, now: float | None = None) -> bool:
        """Take one token if there is one (``now`` in ``time.monotonic`` seconds)."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class BidderSession:
    """One logged-in WebSocket. Pushes go straight to the connection's output when it
    offers ``push`` (:class:`~.wsdirect.DirectWebSocketProtocol`), else through
    ``outbox`` to a writer task."""

    __slots__ = ("_push", "bidder_id", "closed", "ended", "outbox")

    def __init__(self, bidder_id: str, push: Callable[[bytes], bool] | None = None) -> None:
        self.bidder_id = bidder_id
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False
        #: Set once the session is closed (by the house or the connection).
        self.ended = asyncio.Event()
        self._push = push

    def send(self, text: str, frame: bytes | None = None) -> None:
        """Queue ``text`` (``frame``: its :func:`~.wsdirect.text_frame`, if already built);
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

    def close(self) -> None:
        """Ask the connection to close (its writer stops at the ``None`` marker)."""
        if not self.closed:
            self.closed = True
            self.ended.set()
            self.outbox.put_nowait(None)


@dataclass(slots=True)
class BidderState:
    """What the house keeps per known bidder."""

    record: BidderRecord
    penalty: PenaltyState
    bucket: TokenBucket
    session: BidderSession | None = None
    #: When the registration was last read from the store (``time.monotonic`` s).
    checked_at: float = field(default_factory=time.monotonic)

    @property
    def bidder_id(self) -> str:
        return self.record.bidder_id


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
    #: Bid events submitted and not yet durable (the result waits for them).
    pending: set[asyncio.Future[None]] = field(default_factory=set)
    #: Set once the result is computed: nothing can be withdrawn any more.
    cleared: bool = False
    #: When the reveal_open push went out (unix us): bidders could reveal from then on.
    reveal_open_us: int | None = None
    #: Its admission token (engine/admission.py) when it was opened with a deadline.
    admission: int = -1


@dataclass(frozen=True, slots=True)
class AuctionHandle:
    """What ``open_auction`` gives back: the record now, whether it is durable yet
    (``stored``; await it before telling anyone the auction exists) and, while the
    auction runs, its end (``done``)."""

    record: AuctionRecord
    done: asyncio.Future[AuctionRecord] | None
    created: bool
    stored: asyncio.Future[None] | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _request_digest(body: OpenAuctionBody) -> str:
    fields = body.model_dump(mode="json", exclude={"idempotency_key"})
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _fill_doc(fill: Any) -> dict[str, Any]:
    return {"bidder_id": fill.bidder_id, "volume": fill.volume, "price": fill.price}


def accepted_events(events: Iterable[BidEvent]) -> Iterator[CommitAccepted | RevealAccepted]:
    """The engine's audit events of the accepted commits and reveals in ``events``, in
    order: what :meth:`Auction.replay` needs to rebuild the auction's state (rejections
    change nothing, and the house never closes a collection window early)."""
    for event in events:
        if not event.accepted:
            continue
        p = event.payload
        if "at_us" not in p:  # a verdict the house gave without the engine
            continue
        at, sent = from_us(p["at_us"]), from_us(event.received_at_us)
        pair = (int(p["token_pair"][0]), int(p["token_pair"][1]))
        if event.kind == "commit":
            yield CommitAccepted(
                at,
                SealedBid(event.bidder_id, pair, bytes.fromhex(p["commitment"]), p["nonce"], sent),
            )
        else:
            bid = ImprovementBid(
                event.bidder_id,
                pair,
                p["improved_price"],
                p["volume"],
                p["priority_fee"],
                bytes.fromhex(p["commitment"]),
                p["nonce"],
                sent,
                bytes.fromhex(p["salt"]),
            )
            yield RevealAccepted(at, bid)


_RANKED_FIELDS: Final = tuple(f.name for f in dataclass_fields(RankedBid))
_PHANTOM_MODEL_DOCS: dict[Any, dict[str, Any]] = {}


def _phantom_model_doc(model: Any) -> dict[str, Any]:
    doc = _PHANTOM_MODEL_DOCS.get(model)
    if doc is None:
        doc = {k: v for k, v in to_jsonable(model).items() if k != "type"}
        _PHANTOM_MODEL_DOCS[model] = doc
    return doc


def result_document(result: AuctionResult) -> dict[str, Any]:
    """The JSON form of an :class:`AuctionResult` served to settlement clients."""
    winner = result.winning_bid
    return {
        "winning_bid": None
        if winner is None
        else {
            "bidder_id": winner.bidder_id,
            "token_pair": list(winner.token_pair),
            "improved_price": winner.improved_price,
            "volume": winner.volume,
            "priority_fee": winner.priority_fee,
            "nonce": winner.nonce,
            "commitment_hash": winner.commitment_hash.hex(),
        },
        "price": result.price,
        "amount": result.amount,
        "improvement_bps": result.improvement_bps,
        "num_participants": result.num_participants,
        "num_phantom_bids": len(result.phantom_bids),
        "auction_duration_ms": result.auction_duration_ms,
        "auction_id": result.auction_id,
        "mechanism": result.mechanism,
        "phantom_policy": result.phantom_policy,
        "outcome": str(result.outcome),
        "fills": [_fill_doc(f) for f in result.fills],
        "phantom_won": result.phantom_won,
        "phantom_seed": result.phantom_seed.hex(),
        "phantom_commitment": result.phantom_commitment.hex(),
        "unrevealed": list(result.unrevealed),
        "baseline_price": result.baseline_price,
        "finalized_at": result.finalized_at.isoformat(),
    }


def competition_document(
    record: AuctionRecord,
    events: Iterable[BidEvent],
    result: AuctionResult,
    status: str,
    bidder_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything about a finished auction, for publication (``/competition``).

    ``bidder_keys``: the Ed25519 public key (hex) of each bidder that sent a message, so
    that anyone can check every commit signature from this document alone.
    """
    events = list(events)
    commitments: list[dict[str, Any]] = []
    reveals: list[dict[str, Any]] = []
    rejections: list[dict[str, Any]] = []
    for event in events:
        fields = {k: v for k, v in event.payload.items() if k != "event"}
        entry = {
            "bidder_id": event.bidder_id,
            "received_at": _iso_us(event.received_at_us),
            "accepted": event.accepted,
            "reason": event.reason,
            **fields,
        }
        (commitments if event.kind == "commit" else reveals).append(entry)
        if not event.accepted:
            rejections.append(
                {
                    "kind": event.kind,
                    "bidder_id": event.bidder_id,
                    "received_at": entry["received_at"],
                    "reason": event.reason,
                    "detail": fields.get("detail"),
                }
            )
    return {
        "auction_id": record.auction_id,
        "status": status,
        "outcome": str(result.outcome),
        "mechanism": result.mechanism,
        "phantom_policy": result.phantom_policy,
        "token_pair": list(result.token_pair),
        "amount": result.amount,
        "baseline_price": result.baseline_price,
        "opened_at": result.opened_at.isoformat(),
        "commit_deadline": result.commit_deadline.isoformat(),
        "reveal_deadline": result.reveal_deadline.isoformat(),
        "phantom_commitment": result.phantom_commitment.hex(),
        "phantom_seed": result.phantom_seed.hex(),
        "phantom_model": _phantom_model_doc(result.phantom_model),
        "bidder_keys": {
            bidder_id: (bidder_keys or {}).get(bidder_id)
            for bidder_id in dict.fromkeys(e.bidder_id for e in events)
        },
        "commitments": commitments,
        "reveals": reveals,
        "phantom_bids": [
            {
                "slot": p.slot,
                "bidder_id": p.bidder_id,
                "improved_price": p.improved_price,
                "volume": p.volume,
                "priority_fee": p.priority_fee,
            }
            for p in result.phantom_bids
        ],
        "ranking": [{name: getattr(r, name) for name in _RANKED_FIELDS} for r in result.ranking],
        "fills": [_fill_doc(f) for f in result.fills],
        "rejections": rejections,
        "unrevealed": list(result.unrevealed),
        "price": result.price,
        "improvement_bps": result.improvement_bps,
    }


def auction_view(record: AuctionRecord) -> dict[str, Any]:
    """The JSON form of an auction for its settlement client (``AuctionView``)."""
    return {
        "auction_id": record.auction_id,
        "status": record.status,
        "outcome": record.outcome,
        "token_in": record.token_in,
        "token_out": record.token_out,
        "amount": record.amount,
        "baseline_price": record.baseline_price,
        "idempotency_key": record.idempotency_key,
        "opened_at": _iso_us(record.opened_at_us),
        "commit_deadline": _iso_us(record.commit_deadline_us),
        "reveal_deadline": _iso_us(record.reveal_deadline_us),
        "phantom_commitment": record.phantom_commitment,
        "result": record.result,
    }


def announcement_document(auction: Auction) -> dict[str, Any]:
    """The ``auction_opened`` push (also listed by ``GET /v1/auctions/open``)."""
    a = auction.announcement
    return {
        "type": "auction_opened",
        "auction_id": a.auction_id,
        "token_pair": list(a.token_pair),
        "baseline_price": a.baseline_price,
        "amount": a.amount,
        "opened_at": a.opened_at.isoformat(),
        "commit_deadline": a.commit_deadline.isoformat(),
        "reveal_deadline": a.reveal_deadline.isoformat(),
        "phantom_commitment": a.phantom_commitment.hex(),
        "mechanism": a.mechanism,
        "min_improvement_bps": a.min_improvement_bps,
        "max_improvement_bps": a.max_improvement_bps,
        "max_volume": a.max_volume,
        "priority_fee_max_ratio": a.priority_fee_max_ratio,
    }


def _dumps(message: dict[str, Any]) -> str:
    return compact_json(message)


class AuctionHouse:
    """Runs live auctions for settlement clients and bidders (one per service process)."""

    def __init__(
        self, config: AuctionConfig, store: Store, metrics: ServiceMetrics | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics or ServiceMetrics()
        self.journal = Journal(store, self.metrics)
        self.nonces = NonceRegistry()
        self.keys = PublicKeyCache()
        self._requests = SeenRequests()
        self.live: dict[str, LiveAuction] = {}
        # Ended auctions by id -> status. Only ids: a server keeping every finished
        # auction's objects would spend its time in the garbage collector.
        self.closed: OrderedDict[str, str] = OrderedDict()
        self.bidders: dict[str, BidderState] = {}
        self._clients: dict[str, tuple[ClientRecord, float]] = {}
        self._by_key: dict[tuple[int, str], LiveAuction] = {}
        self._key_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._configs: dict[Any, AuctionConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.recovered: dict[str, str] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Create or migrate the schema, recover auctions a crash left open, load nonces."""
        await self.store.start()
        self.journal.start()
        await self._recover()
        self.nonces = NonceRegistry(await self.store.last_nonces())

    async def close(self) -> None:
        """Graceful stop: end every live auction (finalize or abort), flush, close."""
        self._closing = True
        for live in list(self.live.values()):
            for timer in live.timers:
                timer.cancel()
            if not live.finishing:
                now = _utcnow()
                auction = live.auction
                auction.advance(now)
                revealed_all = auction.phase is Phase.REVEALING and not auction.unrevealed
                if now >= auction.reveal_deadline or revealed_all:
                    await self._finish(live, now)
                else:
                    await self._finish(live, now, abort_reason="server shutting down")
        for task in list(self._tasks):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        for state in self.bidders.values():
            if state.session is not None:
                state.session.close()
        await self.journal.close()
        await self.store.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ recovery

    def _config_from(self, sections: dict[str, Any]) -> AuctionConfig:
        key = json.dumps(sections, sort_keys=True)
        config = self._configs.get(key)
        if config is None:
            config = AuctionConfig(
                phantom_auction=PhantomAuctionConfig.model_validate(sections["phantom_auction"]),
                auction_mechanics=AuctionMechanicsConfig.model_validate(
                    sections["auction_mechanics"]
                ),
                security=self.config.security,
                resources=self.config.resources,
                service=self.config.service,
            )
            self._configs[key] = config
        return config

    def _rebuild(self, record: AuctionRecord) -> Auction:
        params = record.engine_params
        auction = Auction(
            SettlementRequest(
                record.token_in, record.token_out, record.amount, params.get("request_id", "")
            ),
            record.baseline_price,
            record.amount,
            from_us(params["deadline_us"]),
            config=self._config_from(params["config"]),
            auction_id=record.auction_id,
            now=from_us(record.opened_at_us),
            phantom_seed=bytes.fromhex(record.phantom_seed),
            reserve_ms=params["reserve_ms"],
        )
        if (to_us(auction.commit_deadline), to_us(auction.reveal_deadline)) != (
            record.commit_deadline_us,
            record.reveal_deadline_us,
        ):
            raise InvalidBidParameters(
                "engine_params", params, "rebuilt windows differ from the stored ones"
            )
        return auction

    async def _recover(self) -> None:
        """End every auction a crash left open (finalize past its reveal window, else abort).

        A recovered auction's bidders are not penalized: their reveals may have been
        lost with the server.
        """
        for record in await self.store.open_auctions():
            events = await self.store.events(record.auction_id)
            now = _utcnow()
            try:
                auction = self._rebuild(record)
                auction.replay(accepted_events(events))
                if now >= auction.reveal_deadline:
                    result = finalize_auction(
                        auction, now=max(auction.clock, auction.reveal_deadline)
                    )
                    status = "finalized"
                else:
                    result = abort_auction(
                        auction, "server restarted during the auction", now=max(now, auction.clock)
                    )
                    status = "aborted"
            except PhantomAuctionError as exc:
                _log.error("auction %s cannot be replayed: %s", record.auction_id, exc)
                auction = self._rebuild(record)
                result = abort_auction(
                    auction, f"replay failed: {exc}", now=max(now, auction.clock)
                )
                status = "aborted"
            await self.store.apply(
                [
                    AuctionFinished(
                        record.auction_id,
                        status,  # type: ignore[arg-type]
                        str(result.outcome),
                        result_document(result),
                        competition_document(
                            record, events, result, status, await self._stored_keys(events)
                        ),
                        now_us(),
                    )
                ]
            )
            self.recovered[record.auction_id] = status
            self.metrics.count_auction(str(result.outcome))
        if self.recovered:
            _log.warning("recovered %d auctions left open by a crash", len(self.recovered))

    async def _stored_keys(self, events: Iterable[BidEvent]) -> dict[str, str]:
        keys: dict[str, str] = {}
        for bidder_id in dict.fromkeys(e.bidder_id for e in events):
            bidder = await self.store.bidder(bidder_id)
            if bidder is not None:
                keys[bidder_id] = bidder.public_key.hex()
        return keys

    # ------------------------------------------------------------------ identities

    async def client_for_token(self, token: str) -> ClientRecord | None:
        """The settlement client holding bearer ``token`` (cached for
        :data:`IDENTITY_TTL_S`, so that ``clients revoke`` takes effect within it)."""
        digest = hash_token(token)
        cached = self._clients.get(digest)
        if cached is not None and time.monotonic() - cached[1] < IDENTITY_TTL_S:
            return cached[0]
        client = await self.store.client_by_token_hash(digest)
        if client is None:
            self._clients.pop(digest, None)
        else:
            self._clients[digest] = (client, time.monotonic())
        return client

    async def bidder_state(self, bidder_id: str) -> BidderState | None:
        """The bidder's state (loaded from the store on first use), or None if unknown.

        The registration is read again after :data:`IDENTITY_TTL_S` (so that ``bidders
        remove`` takes effect within it: the bidder's session is closed); the penalty
        state stays the house's own.
        """
        state = self.bidders.get(bidder_id)
        if state is not None and time.monotonic() - state.checked_at >= IDENTITY_TTL_S:
            record = await self.store.bidder(bidder_id)
            state.checked_at = time.monotonic()
            if record is None:
                self.bidders.pop(bidder_id, None)
                if state.session is not None:
                    state.session.close()
                return None
            state.record = replace(record, penalty=state.penalty)
        if state is None:
            record = await self.store.bidder(bidder_id)
            if record is None:
                return None
            state = self.bidders.get(bidder_id)  # another task may have loaded it meanwhile
            if state is None:
                state = BidderState(
                    record,
                    record.penalty,
                    TokenBucket(self.config.resources.max_messages_per_second),
                )
                self.bidders[bidder_id] = state
        return state

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
        skew_ms = abs(time.time() * 1000.0 - stamp)
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
            raise refused
        if not self._requests.first_use(signature, time.monotonic() + ttl_ms / 1000.0):
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
            previous.close()
        else:
            self.metrics.connected_bidders.inc()

    def detach(self, state: BidderState, session: BidderSession) -> None:
        """Forget ``session`` if it is still the bidder's push channel."""
        session.close()
        if state.session is session:
            state.session = None
            self.metrics.connected_bidders.dec()

    def status(self, state: BidderState) -> dict[str, Any]:
        """The bidder's penalty record and block (``BidderStatus``)."""
        penalty = state.penalty
        blocked = is_blocked(penalty, now_us())
        return {
            "bidder_id": state.bidder_id,
            "no_reveal_rate": penalty.no_reveal_rate,
            "no_reveal_threshold": self.config.security.no_reveal_threshold,
            "blocked": blocked,
            "blocked_until": _iso_us(penalty.blocked_until_us) if penalty.block_count else None,
            "block_count": penalty.block_count,
            "reason": penalty.reason,
        }

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
        return max(1, math.ceil((soonest - _utcnow()).total_seconds()))

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
                return AuctionHandle(record, None, created=False)
        finally:
            if not lock.locked() and key in self._key_locks and self._key_locks[key] is lock:
                del self._key_locks[key]

    def _open(self, client: ClientRecord, body: OpenAuctionBody, digest: str) -> AuctionHandle:
        limit = self.config.resources.max_concurrent_auctions
        if len(self.live) >= limit:
            raise Rejected(
                503,
                "too_many_auctions",
                f"resources.max_concurrent_auctions={limit} auctions are running",
                headers={"Retry-After": str(self.retry_after_s())},
            )
        now = _utcnow()
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
            raise Rejected(422, "deadline_too_close", str(exc), field="deadline") from None
        except InvalidBidParameters as exc:
            raise Rejected(422, "malformed", str(exc), field=exc.field) from None
        admission = -1
        if body.deadline is not None:
            # A deadline is a promise: refuse it now if this loop cannot keep it without
            # making an auction already promised late (engine/admission.py).
            gate = admission_for(asyncio.get_running_loop())
            try:
                admission = gate.admit(
                    self._loop_time(deadline), self._loop_time(auction.reveal_deadline)
                )
            except Overloaded as exc:
                retry = str(max(1, math.ceil(exc.retry_after_s)))
                raise Rejected(
                    503, "overloaded", str(exc), headers={"Retry-After": retry}
                ) from None
            gate.waiting(
                admission, self._loop_time(auction.reveal_deadline), self._loop_time(deadline)
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
            },
        )
        loop = asyncio.get_running_loop()
        # Built once, sent as the same bytes to every bidder.
        announcement = _dumps(announcement_document(auction))
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
        # Queued before any bid can be: the journal's order puts the auction row first.
        opened = self.journal.submit(record)
        opened.add_done_callback(lambda f: self._opened_durably(live, f))
        live.timers = [
            loop.call_at(self._loop_time(auction.commit_deadline), self._collection_over, live),
            loop.call_at(self._loop_time(auction.reveal_deadline), self._reveal_over, live),
        ]
        blocked_until = now_us()
        for state in self.bidders.values():
            session = state.session
            if session is not None and not is_blocked(state.penalty, blocked_until):
                session.send(live.announcement, live.announcement_frame)
        return AuctionHandle(record, live.done, created=True, stored=opened)

    def _opened_durably(self, live: LiveAuction, opened: asyncio.Future[None]) -> None:
        if opened.cancelled() or opened.exception() is not None:
            _log.error("auction %s could not be stored: %r", live.record.auction_id, opened)
            live.store_failed = True

    @staticmethod
    def _loop_time(moment: datetime) -> float:
        loop = asyncio.get_running_loop()
        return loop.time() + (moment - _utcnow()).total_seconds()

    def open_announcements(self) -> list[dict[str, Any]]:
        """``auction_opened`` documents of every auction still collecting or revealing."""
        return [
            json.loads(live.announcement)
            for live in self.live.values()
            if not live.finishing and live.auction.phase in (Phase.COLLECTING, Phase.REVEALING)
        ]

    # ------------------------------------------------------------------ windows and ends

    def _collection_over(self, live: LiveAuction) -> None:
        if live.finishing:
            return
        auction = live.auction
        auction.advance(max(_utcnow(), auction.commit_deadline))
        live.reveal_open_us = now_us()
        message = _dumps(
            {
                "type": "reveal_open",
                "auction_id": auction.auction_id,
                "reveal_deadline": auction.reveal_deadline.isoformat(),
            }
        )
        frame = text_frame(message)
        for bidder_id in auction.commitments:
            state = self.bidders.get(bidder_id)
            if state is not None and state.session is not None:
                state.session.send(message, frame)
        if not auction.unrevealed and self.config.service.finish_early:
            self._spawn(self._finish(live, _utcnow()))

    def _reveal_over(self, live: LiveAuction) -> None:
        if not live.finishing:
            self._spawn(self._finish(live, max(_utcnow(), live.auction.reveal_deadline)))

    async def _finish(
        self, live: LiveAuction, now: datetime, abort_reason: str | None = None
    ) -> None:
        """Finalize (or abort) ``live``, make it durable with the penalties, tell everyone."""
        if live.finishing:
            return
        live.finishing = True
        for timer in live.timers:
            timer.cancel()
        auction = live.auction
        triggered = time.time()
        while live.pending:
            # A message whose write fails is withdrawn: settle that before clearing.
            await asyncio.wait(list(live.pending))
        live.cleared = True
        if live.store_failed and abort_reason is None:
            abort_reason = "the auction could not be stored"
        if abort_reason is not None:
            result = abort_auction(auction, abort_reason, now=max(now, auction.clock))
            status = "aborted"
        else:
            result = finalize_auction(auction, now=max(now, auction.clock))
            status = "finalized"
        unrevealed = set(result.unrevealed)
        # Blocks start at the engine's finalization time, which the result publishes.
        penalized_at = to_us(result.finalized_at)
        penalties: list[Write] = []
        newly_blocked: list[BidderState] = []
        if status == "finalized" and self._reveal_was_possible(live):
            for bidder_id in auction.commitments:
                state = self.bidders.get(bidder_id)
                if state is None:
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
            competition_document(
                live.record, live.events, result, status, self._known_keys(live.events)
            ),
            now_us(),
        )
        try:
            await self.journal.write(finished, *penalties)
        except Exception as exc:
            _log.error("auction %s result could not be stored: %r", auction.auction_id, exc)
            self._forget(live)
            if not live.done.done():
                live.done.set_exception(
                    Rejected(503, "store_unavailable", f"the result could not be stored: {exc}")
                )
                live.done.exception()  # retrieved: waiters may have gone
            return
        done_at = time.time()
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
        if len(self.closed) > _CLOSED_REMEMBERED:
            self.closed.popitem(last=False)
        if not live.done.done():
            live.done.set_result(live.record)
        self.metrics.count_auction(str(result.outcome))
        bidding_ended = min(triggered, auction.reveal_deadline.timestamp())
        self.metrics.result_latency.observe(max(0.0, done_at - bidding_ended))
        self._push_results(live, result, status)
        for state in newly_blocked:
            if state.session is not None:
                state.session.send(_dumps({"type": "blocked", **self.status(state)}))

    def _known_keys(self, events: Iterable[BidEvent]) -> dict[str, str]:
        """Public keys (hex) of the bidders behind ``events`` (all loaded: they sent them)."""
        keys: dict[str, str] = {}
        for event in events:
            state = self.bidders.get(event.bidder_id)
            if state is not None:
                keys[event.bidder_id] = state.record.public_key.hex()
        return keys

    def _reveal_was_possible(self, live: LiveAuction) -> bool:
        """Whether a no-reveal in ``live`` may be penalized: the reveal window, counted
        from when the ``reveal_open`` push actually went out, lasted at least
        ``security.min_penalized_reveal_ms``. A shorter window (a client's very short
        auction, or the venue's own lag) is the venue's doing, not the bidder's."""
        auction = live.auction
        opened_us = max(to_us(auction.commit_deadline), live.reveal_open_us or 0)
        window_ms = (to_us(auction.reveal_deadline) - opened_us) / 1000.0
        return window_ms >= self.config.security.min_penalized_reveal_ms

    def _forget(self, live: LiveAuction) -> None:
        if live.admission >= 0:
            admission_for(asyncio.get_running_loop()).finished(live.admission)
            live.admission = -1
        record = live.record
        self.live.pop(record.auction_id, None)
        if record.idempotency_key is not None:
            key = (record.client_id, record.idempotency_key)
            if self._by_key.get(key) is live:
                del self._by_key[key]
        self.metrics.open_auctions.set(len(self.live))

    def _push_results(self, live: LiveAuction, result: AuctionResult, status: str) -> None:
        fills: dict[str | None, tuple[float, float]] = {}
        for fill in result.fills:
            fills[fill.bidder_id] = (fill.volume, fill.price)
        for bidder_id in live.auction.commitments:
            state = self.bidders.get(bidder_id)
            if state is None or state.session is None:
                continue
            volume, price = fills.get(bidder_id, (0.0, None))
            state.session.send(
                _dumps(
                    {
                        "type": "auction_closed",
                        "auction_id": result.auction_id,
                        "status": status,
                        "outcome": str(result.outcome),
                        "price": result.price,
                        "improvement_bps": result.improvement_bps,
                        "filled": volume,
                        "fill_price": price,
                        "revealed": bidder_id not in result.unrevealed,
                    }
                )
            )

    # ------------------------------------------------------------------ bids

    def _immediate(self, verdict: Verdict) -> asyncio.Future[Verdict]:
        done: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        done.set_result(verdict)
        if verdict.reason is not None:
            self.metrics.count_rejection(verdict.reason)
        return done

    def _find(self, auction_id: str) -> LiveAuction | None:
        return self.live.get(auction_id)

    def _record(
        self,
        live: LiveAuction,
        event: BidEvent,
        verdict: Verdict,
        previous_nonce: int | None = None,
    ) -> asyncio.Future[Verdict]:
        """Journal ``event`` and answer ``verdict`` once it is durable.

        If the write fails, only this message is lost: an accepted commit or reveal is
        withdrawn from the auction (and a commit's nonce given back, ``previous_nonce``
        being the bidder's last before it), the bidder is told ``store_unavailable`` and
        may send it again; the auction and everyone else's acks go on.
        """
        received = time.perf_counter()
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
            self.metrics.ack_latency.observe(time.perf_counter() - received)
            answer.set_result(verdict)

        written = self.journal.submit(event)
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
        self, kind: str, auction_id: str, bidder_id: str, payload: dict[str, Any]
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
            kind,  # type: ignore[arg-type]
            False,
            "auction_closed",
            payload.get("nonce"),
            {**payload, "detail": detail},
            now_us(),
        )
        self.metrics.count_rejection("auction_closed")
        await self.journal.write(event)
        return verdict

    def _refuse(
        self,
        live: LiveAuction,
        kind: str,
        state: BidderState,
        payload: dict[str, Any],
        reason: str,
        detail: str,
        received_us: int,
    ) -> asyncio.Future[Verdict]:
        event = BidEvent(
            live.record.auction_id,
            state.bidder_id,
            kind,  # type: ignore[arg-type]
            False,
            reason,
            payload.get("nonce"),
            {**payload, "detail": detail},
            received_us,
        )
        return self._record(
            live, event, Verdict(kind, live.record.auction_id, False, reason, detail)
        )

    def _rate_limited(self, kind: str, state: BidderState, auction_id: str) -> Verdict | None:
        if not state.bucket.allow():
            rate = self.config.resources.max_messages_per_second
            return Verdict(
                kind,
                auction_id,
                False,
                "rate_limited",
                f"more than resources.max_messages_per_second={rate:g} messages per second",
            )
        return None

    def _guarded(
        self, kind: str, auction_id: str, handle: Callable[[], asyncio.Future[Verdict]]
    ) -> asyncio.Future[Verdict]:
        if self._closing:
            return self._immediate(
                Verdict(kind, auction_id, False, "shutting_down", "the service is stopping")
            )
        try:
            return handle()
        except PhantomAuctionError as exc:  # a value the engine refuses to even represent
            return self._immediate(Verdict(kind, auction_id, False, "malformed", str(exc)))

    def commit(
        self, state: BidderState, body: CommitBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        """Check and submit a sealed bid; the future gives the verdict once it is durable."""
        return self._guarded(
            "commit", auction_id, lambda: self._commit(state, body, auction_id, transport)
        )

    def reveal(
        self, state: BidderState, body: RevealBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        """Check and submit a reveal; the future gives the verdict once it is durable."""
        return self._guarded(
            "reveal", auction_id, lambda: self._reveal(state, body, auction_id, transport)
        )

    def _commit(
        self, state: BidderState, body: CommitBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        self.metrics.count_message("commit", transport)
        limited = self._rate_limited("commit", state, auction_id)
        if limited is not None:
            return self._immediate(limited)
        commitment = body.commitment.lower()
        payload: dict[str, Any] = {
            "transport": transport,
            "token_pair": list(body.token_pair),
            "commitment": commitment,
            "nonce": body.nonce,
            "signature": body.signature.lower(),
        }
        live = self._find(auction_id)
        if live is None:
            return asyncio.ensure_future(
                self._not_live("commit", auction_id, state.bidder_id, payload)
            )
        received = _utcnow()
        received_us = to_us(received)
        if body.bidder_id is not None and body.bidder_id != state.bidder_id:
            return self._refuse(
                live,
                "commit",
                state,
                payload,
                "impersonation",
                f"bidder_id={body.bidder_id!r}: authenticated as {state.bidder_id!r}",
                received_us,
            )
        signed = commit_signing_bytes(auction_id, state.bidder_id, commitment, body.nonce)
        if not self.verify(state, body.signature, signed):
            return self._refuse(
                live,
                "commit",
                state,
                payload,
                "bad_signature",
                f"signature does not verify for {state.bidder_id!r} over auction {auction_id}, "
                f"commitment {commitment}, nonce {body.nonce}",
                received_us,
            )
        if is_blocked(state.penalty, received_us):
            return self._refuse(
                live,
                "commit",
                state,
                payload,
                "blocked",
                f"blocked until {_iso_us(state.penalty.blocked_until_us)}: {state.penalty.reason}",
                received_us,
            )
        sealed = SealedBid(
            state.bidder_id,
            (body.token_pair[0], body.token_pair[1]),
            bytes.fromhex(commitment),
            body.nonce,
            received,
        )
        auction = live.auction
        previous_nonce = self.nonces.last(state.bidder_id)
        accepted = auction.commit(sealed, received)
        event = auction.last_event
        reason = detail = None
        if isinstance(event, CommitRejected):
            reason, detail = event.reason.value, event.detail
            payload["detail"] = detail
        payload["at_us"] = to_us(event.at)
        stored = BidEvent(
            auction_id,
            state.bidder_id,
            "commit",
            accepted,
            reason,
            body.nonce,
            payload,
            received_us,
        )
        return self._record(
            live, stored, Verdict("commit", auction_id, accepted, reason, detail), previous_nonce
        )

    def _reveal(
        self, state: BidderState, body: RevealBody, auction_id: str, transport: str
    ) -> asyncio.Future[Verdict]:
        self.metrics.count_message("reveal", transport)
        limited = self._rate_limited("reveal", state, auction_id)
        if limited is not None:
            return self._immediate(limited)
        payload: dict[str, Any] = {
            "transport": transport,
            "token_pair": list(body.token_pair),
            "improved_price": body.improved_price,
            "volume": body.volume,
            "priority_fee": body.priority_fee,
            "nonce": body.nonce,
            "salt": body.salt.lower(),
        }
        live = self._find(auction_id)
        if live is None:
            return asyncio.ensure_future(
                self._not_live("reveal", auction_id, state.bidder_id, payload)
            )
        received = _utcnow()
        received_us = to_us(received)
        if body.bidder_id is not None and body.bidder_id != state.bidder_id:
            return self._refuse(
                live,
                "reveal",
                state,
                payload,
                "impersonation",
                f"bidder_id={body.bidder_id!r}: authenticated as {state.bidder_id!r}",
                received_us,
            )
        bid = make_bid(
            auction_id,
            state.bidder_id,
            (body.token_pair[0], body.token_pair[1]),
            body.improved_price,
            body.volume,
            body.priority_fee,
            body.nonce,
            salt=bytes.fromhex(body.salt),
            timestamp=received,
        )
        auction = live.auction
        accepted = auction.reveal(bid, received)
        event = auction.last_event
        reason = detail = None
        if isinstance(event, RevealRejected):
            reason, detail = event.reason.value, event.detail
            payload["detail"] = detail
        payload["commitment"] = bid.commitment_hash.hex()
        payload["at_us"] = to_us(event.at)
        stored = BidEvent(
            auction_id,
            state.bidder_id,
            "reveal",
            accepted,
            reason,
            body.nonce,
            payload,
            received_us,
        )
        answer = self._record(live, stored, Verdict("reveal", auction_id, accepted, reason, detail))
        if (
            accepted
            and self.config.service.finish_early
            and not live.finishing
            and auction.phase is Phase.REVEALING
            and not auction.unrevealed
        ):
            # Every commitment is revealed: nothing can change the result any more.
            self._spawn(self._finish(live, received))
        return answer

    # ------------------------------------------------------------------ reading

    async def auction_record(self, auction_id: str) -> AuctionRecord | None:
        """The auction as stored (live ones from memory)."""
        live = self._find(auction_id)
        if live is not None:
            return live.record
        return await self.store.auction(auction_id)
