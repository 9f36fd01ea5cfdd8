"""The HTTP and WebSocket face of the auction house (FastAPI; run by ``phantom-auction serve``).

Settlement clients (``Authorization: Bearer <token>``):
``POST /v1/auctions``, ``GET /v1/auctions/{id}``, and, public once an auction has
ended, ``GET /v1/auctions/{id}/competition``.

Bidders: ``WS /v1/bidders/ws`` (:mod:`.bidder_socket`: challenge-signature login,
pushes, commit / reveal / status messages, each answered by an ``ack``), or signed HTTP
requests (``X-Bidder-Id``, ``X-Bidder-Timestamp``, ``X-Bidder-Signature``):
``POST /v1/auctions/{id}/commit``, ``POST /v1/auctions/{id}/reveal``,
``GET /v1/auctions/open``, ``GET /v1/bidders/me``.

Operations: ``/healthz``, ``/metrics`` (Prometheus, only with ``service.public_metrics``),
``/openapi.json``, ``/docs``.
docs/service.md describes every message, the signed bytes and the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._version import __version__
from ..config import AuctionConfig, load_config
from ..wire import AUCTION_ID_PATTERN, BIDDER_WS_PATH
from .bidder_socket import BidderSocket, ack_document, invalid_json_errors, malformed
from .explorer import router as explorer_router
from .house import AuctionHouse, BidderState, Rejected, Verdict, auction_document
from .metrics import LoopLag, ServiceMetrics
from .retention import Retention
from .schemas import (
    AckBody,
    Announcement,
    AuctionDocument,
    BidderStatus,
    CommitBody,
    CompetitionView,
    ErrorBody,
    OpenAuctionBody,
    RevealBody,
)
from .store import (
    ClientRecord,
    Store,
    compact_json,
    describe_store,
    normalize_database_url,
    open_store,
)

#: The collector's thresholds while a server runs (young generation, middle, old); see
#: ``lifespan``.
GC_THRESHOLDS = (50_000, 20, 20)

__all__ = ["REASON_STATUS", "create_app"]

_log = logging.getLogger(__name__)

#: HTTP status of each rejection reason (WebSocket acks carry the same codes).
REASON_STATUS: dict[str, int] = {
    "late": 409,
    "replayed_nonce": 409,
    "duplicate_commit": 409,
    "duplicate_reveal": 409,
    "not_committed": 409,
    "outside_reveal_window": 409,
    "commitment_mismatch": 409,
    "auction_closed": 409,
    "token_pair_mismatch": 422,
    "improvement_out_of_bounds": 422,
    "volume_out_of_bounds": 422,
    "fee_out_of_bounds": 422,
    "malformed": 422,
    "bad_signature": 401,
    "impersonation": 403,
    "blocked": 403,
    "unknown_auction": 404,
    "message_too_large": 413,
    "rate_limited": 429,
    "too_many_rejections": 409,
    "store_unavailable": 503,
    "shutting_down": 503,
    "overloaded": 503,
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Missing or invalid credentials",
        403: "Not allowed for this bidder",
        404: "No such auction",
        409: "Conflicts with the auction's state",
        413: "Body larger than security.max_message_bytes",
        422: "Malformed or out-of-range field (named in `field`)",
        429: "Over resources.max_messages_per_second",
        503: "At capacity or the store is unavailable (see Retry-After)",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


def _rejection(
    status_code: int,
    reason: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"status": "rejected", "reason": reason, "detail": detail, "field": field, **extra}
    return JSONResponse(body, status_code=status_code, headers=headers)


class MessageSizeLimit:
    """Refuse HTTP bodies over ``max_bytes`` with 413 before the app parses them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_large = int(value) > self.max_bytes
                except ValueError:
                    too_large = False
                if too_large:
                    await self._refuse(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        response = _rejection(
            413,
            "message_too_large",
            f"body over security.max_message_bytes={self.max_bytes} bytes",
        )
        await response(scope, receive, send)


def _ack_response(verdict: Verdict) -> JSONResponse:
    body = ack_document(verdict)
    if verdict.accepted:
        return JSONResponse(body)
    status_code = REASON_STATUS.get(verdict.reason or "", 409)
    headers = {"Retry-After": "1"} if status_code in (429, 503) else None
    return JSONResponse({**body, "field": None}, status_code=status_code, headers=headers)


class _JSON(JSONResponse):
    """A JSON response rendered with :func:`~.store.compact_json` (orjson)."""

    def render(self, content: Any) -> bytes:
        return compact_json(content).encode()


_bearer = HTTPBearer(auto_error=False, description="A settlement client's token")


def _house(request: Request) -> AuctionHouse:
    house: AuctionHouse = request.app.state.house
    return house


async def client_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ClientRecord:
    """The settlement client behind ``Authorization: Bearer <token>`` (401 otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Rejected(401, "not_authenticated", "Authorization: Bearer <token> is required")
    client = await _house(request).client_for_token(credentials.credentials)
    if client is None:
        raise Rejected(401, "not_authenticated", "the bearer token is not valid")
    return client


async def bidder_auth(
    request: Request,
    x_bidder_id: Annotated[str | None, Header(max_length=64)] = None,
    x_bidder_timestamp: Annotated[str | None, Header(max_length=20)] = None,
    x_bidder_signature: Annotated[str | None, Header(max_length=128)] = None,
) -> BidderState:
    """The bidder behind a signed HTTP request (401 otherwise)."""
    body = await request.body()
    return await _house(request).authenticate_request(
        x_bidder_id,
        x_bidder_timestamp,
        x_bidder_signature,
        request.method,
        request.url.path,
        body,
    )


ClientDep = Annotated[ClientRecord, Depends(client_auth)]
BidderDep = Annotated[BidderState, Depends(bidder_auth)]
AuctionIdPath = Annotated[str, Path(pattern=AUCTION_ID_PATTERN)]


def create_app(
    config: AuctionConfig | None = None,
    *,
    database_url: str | None = None,
    store: Store | None = None,
    announce: Callable[[str], None] | None = None,
    address: str | None = None,
    peers: bool = False,
) -> FastAPI:
    """The service app; the store is opened, migrated and recovered when it starts.

    ``announce`` (``serve`` passes a stderr writer) gets one line when the service is
    ready, naming ``address`` and the store, and one line with a summary when it stops.
    ``peers``: one of several processes on the PostgreSQL ``database_url`` (``serve
    --workers``, :mod:`.house.peers`).
    """
    config = load_config() if config is None else config
    url = database_url or config.service.database_url
    claim = None
    if store is None:
        store = open_store(url, sqlite_synchronous=config.service.sqlite_synchronous)
        if normalize_database_url(url).startswith("postgresql"):
            from .claim import SchemaClaim

            claim = SchemaClaim(url, shared=peers)
    metrics = ServiceMetrics()
    house = AuctionHouse(config, store, metrics)
    if claim is not None:
        claim.on_lost = house.lost_database
    house.claim = claim
    if peers:
        from .house.peers import HousePeers

        house.peers = HousePeers(house, url)
    retention = None
    if config.service.retention_days > 0:
        retention = Retention(store, config.service.retention_days, house.clock, metrics)
    security = config.security
    max_bytes = security.max_message_bytes
    bidder_socket = BidderSocket(house, metrics, security.challenge_ttl_s, max_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await house.start()
        if announce is not None:
            recovered = f", {len(house.recovered)} auctions recovered" if house.recovered else ""
            announce(
                f"phantom-auction {__version__} listening on {address or '(ASGI)'}, "
                f"store {describe_store(store)}{recovered}"
            )
        # Everything loaded so far (numpy, scipy, pydantic, SQLAlchemy, ...) lives as long
        # as the process: keep it out of the collector, whose full passes over it would
        # otherwise stall the event loop for 100+ ms under load (and miss reveal windows).
        gc.collect()
        gc.freeze()
        # What a message or an auction allocates dies with it within a second: collect
        # the young generation every 50,000 net allocations, not 700, so those objects
        # are freed by reference counting before a pass sees them, instead of being
        # promoted and then found again by full passes (measured here: 0.7 s of GC CPU
        # per 1,000 auctions, single passes up to 50 ms, with the default thresholds).
        previous_thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        loop_lag = LoopLag(metrics.loop_lag)
        loop_lag.start()
        if retention is not None:
            retention.start()
        try:
            yield
        finally:
            if retention is not None:
                await retention.stop()
            loop_lag.stop()
            gc.set_threshold(*previous_thresholds)
            await house.close()
            if announce is not None:
                announce(f"phantom-auction stopped after {metrics.summary()}")

    app = FastAPI(
        title="phantom-auction",
        version=__version__,
        summary="Live phantom auctions: sealed commit-reveal bids against calibrated phantoms.",
        lifespan=lifespan,
    )
    app.state.house = house
    app.include_router(explorer_router)  # the public web page: /, /auctions/{id}, /bidders
    app.add_middleware(MessageSizeLimit, max_bytes=max_bytes)

    @app.exception_handler(Rejected)
    async def on_rejected(_request: Request, exc: Rejected) -> JSONResponse:
        return _rejection(exc.status_code, exc.reason, exc.detail, exc.field, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # A body json.loads could not take for a reason other than a decode error
            # (bad UTF-8, a 5,000-digit number, nesting past the recursion limit): where,
            # with an excerpt, as the WebSocket says it, when the body can be read back.
            field, detail = "body", f"body: {exc.detail}"
            with contextlib.suppress(Exception):
                body = await request.body()
                if body:
                    field, detail = malformed(invalid_json_errors(body, str(exc.detail), 0))
            return _rejection(422, "malformed", detail, field)
        reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else None
        return _rejection(exc.status_code, reason, str(exc.detail), headers=headers)

    async def on_store_down(_request: Request, exc: Exception) -> JSONResponse:
        # The database cannot be reached (an outage, a restart): 503, as the documented
        # store_unavailable, in one log line; not a 500 and a traceback per request.
        # A driver's error (``orig``) says what failed without SQLAlchemy's copy of the
        # statement and its parameters, which are not the client's business.
        orig = getattr(exc, "orig", None)
        text = " ".join(str(exc if orig is None else orig).split())[:200] or type(exc).__name__
        _log.warning("request refused, the store cannot be reached: %s", text)
        detail = f"the store cannot be reached: {text}"
        return _rejection(503, "store_unavailable", detail, headers={"Retry-After": "1"})

    for failure in (SQLAlchemyError, OSError):
        app.add_exception_handler(failure, on_store_down)

    @app.exception_handler(RequestValidationError)
    async def onmalformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid" and isinstance(exc.body, str | bytes):
            # FastAPI's loc is ("body", <character offset>): say it as the WebSocket
            # does, with line, column and an excerpt, naming the body.
            loc = tuple(first.get("loc", ()))
            position = loc[-1] if loc and isinstance(loc[-1], int) else 0
            error = str((first.get("ctx") or {}).get("error", "JSON decode error"))
            errors = invalid_json_errors(exc.body, error, position)
        field, detail = malformed(errors)
        summary = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg")),
                "type": str(e.get("type")),
            }
            for e in errors[:20]
        ]
        return _rejection(422, "malformed", detail, field, errors=summary)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness: this process's open auctions and connected bidders (under ``serve
        --workers``, one worker's: ``/metrics`` sums them over the workers)."""
        return {
            "status": "ok",
            "open_auctions": len(house.live),
            "connected_bidders": sum(1 for s in house.bidders.values() if s.session is not None),
        }

    if config.service.public_metrics:
        # Opt-in: the counters show live participation (connected bidders, commits).
        @app.get(
            "/metrics",
            tags=["operations"],
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        )
        async def metrics_endpoint() -> Response:
            """Prometheus metrics (text exposition format); only with service.public_metrics."""
            return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.post(
        "/v1/auctions",
        tags=["settlement"],
        response_model=AuctionDocument,
        status_code=200,
        responses={
            202: {"model": AuctionDocument, "description": "Opened; poll GET /v1/auctions/{id}"},
            **_errors(401, 409, 413, 422, 503),
        },
    )
    async def open_auction(
        body: OpenAuctionBody,
        client: ClientDep,
        wait: Annotated[
            bool, Query(description="Answer with the result (true) or at once with 202")
        ] = True,
    ) -> JSONResponse:
        """Run an auction for an order; the result when it is finalized (or 202 with wait=false).

        A retry with the same ``idempotency_key`` gets the same auction and result.
        """
        handle = await house.open_auction(client, body)
        record = handle.record
        if handle.stored is not None:
            try:  # a 202 promises a retry will find the auction: it must be durable first
                await asyncio.shield(handle.stored)
            except Exception as exc:
                raise Rejected(
                    503, "store_unavailable", f"the auction could not be stored: {exc}"
                ) from None
        if handle.done is not None:
            if not wait:
                return _JSON(auction_document(record), status_code=202)
            record = await asyncio.shield(handle.done)
        return _JSON(auction_document(record))

    @app.get(
        "/v1/auctions/open",
        tags=["bidders"],
        response_model=list[Announcement],
        responses=_errors(401, 422),
    )
    async def open_auctions(bidder: BidderDep) -> JSONResponse:
        """Auctions collecting or revealing now (what ``auction_opened`` pushed)."""
        del bidder
        documents = house.open_announcements()
        for doc in documents:
            doc.pop("type", None)
        return JSONResponse(documents)

    @app.get(
        "/v1/auctions/{auction_id}",
        tags=["settlement"],
        response_model=AuctionDocument,
        responses=_errors(401, 404, 422),
    )
    async def get_auction(auction_id: AuctionIdPath, client: ClientDep) -> JSONResponse:
        """One of the client's auctions, with its result once it has ended."""
        record = await house.auction_record(auction_id)
        if record is None or record.client_id != client.client_id:
            raise Rejected.unknown_auction(auction_id)
        return _JSON(auction_document(record))

    @app.get(
        "/v1/auctions/{auction_id}/competition",
        tags=["audit"],
        response_model=CompetitionView,
        responses=_errors(404, 409, 422),
    )
    async def get_competition(auction_id: AuctionIdPath) -> JSONResponse:
        """Every commitment, reveal, phantom bid (with the revealed seed), score, rank, fill
        and rejection of an auction that has ended."""
        record = await house.auction_record(auction_id)
        if record is None:
            raise Rejected.unknown_auction(auction_id)
        competition = await house.competition(record)
        if competition is None:
            raise Rejected(
                409,
                "not_finished",
                f"auction_id={auction_id!r} is {record.status}: published when it ends",
            )
        return _JSON(competition)

    @app.post(
        "/v1/auctions/{auction_id}/commit",
        tags=["bidders"],
        response_model=AckBody,
        responses=_errors(401, 403, 404, 409, 413, 422, 429, 503),
    )
    async def commit(
        auction_id: AuctionIdPath, body: CommitBody, bidder: BidderDep
    ) -> JSONResponse:
        """Commit a sealed bid (signed over auction id, commitment and nonce)."""
        return _ack_response(await house.commit(bidder, body, auction_id, "http"))

    @app.post(
        "/v1/auctions/{auction_id}/reveal",
        tags=["bidders"],
        response_model=AckBody,
        responses=_errors(401, 403, 404, 409, 413, 422, 429, 503),
    )
    async def reveal(
        auction_id: AuctionIdPath, body: RevealBody, bidder: BidderDep
    ) -> JSONResponse:
        """Reveal the bid behind a commitment (in the reveal window)."""
        return _ack_response(await house.reveal(bidder, body, auction_id, "http"))

    @app.get(
        "/v1/bidders/me",
        tags=["bidders"],
        response_model=BidderStatus,
        responses=_errors(401, 422, 429),
    )
    async def bidder_me(bidder: BidderDep) -> JSONResponse:
        """The bidder's no-reveal rate and, if blocked, why and until when."""
        # Counted in the bidder's rate limit, as every message of its WebSocket is.
        if not bidder.bucket.allow(house.clock.monotonic()):
            house.metrics.count_rejection("rate_limited")
            raise Rejected(429, "rate_limited", bidder_socket.over_limit)
        return JSONResponse(house.status(bidder))

    @app.websocket(BIDDER_WS_PATH)
    async def bidders_ws(ws: WebSocket) -> None:
        await bidder_socket.serve(ws)

    return app
