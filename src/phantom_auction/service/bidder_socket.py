"""The bidders' WebSocket (``WS /v1/bidders/ws``): challenge-signature login, then pushes
and commit / reveal / status messages, each answered by an ``ack``.

Under uvicorn with :class:`~.ws_fastpath.DirectWebSocketProtocol` messages are handled as
they are parsed and pushes written straight to the connection (the fast path); under any
other ASGI server through receive / send with a writer task.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..wire import (
    WsCommit,
    WsReveal,
    WsStatus,
    bidder_message_adapter,
    check_ref,
    login_adapter,
)
from .auth import NO_ONE_KEY, login_signing_bytes, new_challenge, verify_signature
from .house import AuctionHouse, BidderSession, BidderState, Verdict
from .house.rate_limit import FloodGauge, over_limit_detail
from .metrics import ServiceMetrics
from .store import compact_json
from .ws_fastpath import DIRECT_EXTENSION, DirectWebSocketProtocol

__all__ = ["BidderSocket", "ack_document", "invalid_json_errors", "malformed"]

_log = logging.getLogger(__name__)


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "commit", "reveal", "status"):
        parts = parts[1:] if len(parts) > 1 else parts
    return ".".join(parts) or "body"


def malformed(errors: list[Any]) -> tuple[str, str]:
    """``(field, detail)`` naming the first invalid field and its value."""
    if not errors:
        return "body", "malformed message"
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    field = _field_of(loc)
    if first.get("type") in ("union_tag_not_found", "union_tag_invalid"):
        field = "type"
    detail = f"{field}: {first.get('msg', 'invalid')}"
    if "input" in first and first.get("type") != "missing":
        shown = repr(first["input"])
        detail += f" (got {shown[:80]}{'...' if len(shown) > 80 else ''})"
    return field, detail


_any_json: TypeAdapter[Any] = TypeAdapter(Any)


def invalid_json_errors(body: str | bytes, error: str, position: int) -> list[Any]:
    """The validation errors of a ``body`` that is not JSON, as a WebSocket message's are
    (:func:`malformed` then names ``body``, the line and column and a short excerpt):
    an HTTP body refused by :func:`json.loads` (its ``error`` at character ``position``)."""
    try:
        _any_json.validate_json(body)
    except ValidationError as exc:
        return [{**e, "loc": ("body",)} for e in exc.errors()]
    # Parsed here though not by json.loads: say what json.loads said, and where.
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    message = f"Invalid JSON: {error} at line {line} column {column}"
    return [{"type": "json_invalid", "loc": ("body",), "msg": message, "input": text}]


def ack_document(verdict: Verdict, ref: str | int | None = None) -> dict[str, Any]:
    """The ``ack`` of a verdict (also the body of an HTTP commit's or reveal's answer)."""
    return {
        "type": "ack",
        "ref": ref,
        "kind": verdict.kind,
        "auction_id": verdict.auction_id,
        "status": "accepted" if verdict.accepted else "rejected",
        "reason": verdict.reason,
        "detail": verdict.detail,
    }


class BidderSocket:
    """Serves bidders' WebSocket connections for ``house``."""

    def __init__(
        self, house: AuctionHouse, metrics: ServiceMetrics, challenge_ttl_s: float, max_bytes: int
    ) -> None:
        self.house = house
        self.metrics = metrics
        self.challenge_ttl_s = challenge_ttl_s
        #: ``security.max_message_bytes``: a longer message is refused.
        self.max_bytes = max_bytes
        self.over_limit = over_limit_detail(house.config.resources.max_messages_per_second)

    async def serve(self, ws: WebSocket) -> None:
        """One bidder's connection: challenge, login, then messages until it ends."""
        await ws.accept()
        challenge = new_challenge()
        expires = self.house.clock.now() + timedelta(seconds=self.challenge_ttl_s)
        await ws.send_text(
            compact_json(
                {
                    "type": "challenge",
                    "challenge": challenge,
                    "expires_at": expires.isoformat(),
                    "max_message_bytes": self.max_bytes,
                }
            )
        )
        try:
            text = await asyncio.wait_for(_receive_text(ws), timeout=self.challenge_ttl_s)
        except (TimeoutError, WebSocketDisconnect):
            with contextlib.suppress(Exception):
                await ws.close(1008, "login timed out")
            return
        if text is None:
            return
        state = await self._login(ws, text, challenge)
        if state is None:
            return
        direct = ws.scope.get("extensions", {}).get(DIRECT_EXTENSION)
        if isinstance(direct, DirectWebSocketProtocol):
            await self._serve_direct(ws, direct, state)
            return
        session = BidderSession(state.bidder_id)
        self.house.attach(state, session)
        self._welcome(state, session)
        writer = asyncio.get_running_loop().create_task(_write(ws, session))
        try:
            while not session.closed:
                text = await _receive_text(ws)
                if text is None or session.closed:  # closed meanwhile: take nothing more
                    break
                self._handle(state, session, text)
        except WebSocketDisconnect:
            pass  # the bidder left: `finally` detaches its session
        finally:
            self.house.detach(state, session)
            await writer

    def _welcome(self, state: BidderState, session: BidderSession) -> None:
        """``welcome``; the ends of its auctions a restart ended (recovery) that it has
        not been told; then (unless blocked) the auctions still taking commits."""
        status = self.house.status(state)
        session.send(compact_json({"type": "welcome", **status}))
        for text in self.house.untold(state.bidder_id).values():
            session.send(text)
        if not status["blocked"]:
            for text, frame in self.house.still_collecting():
                session.send(text, frame)

    async def _serve_direct(
        self, ws: WebSocket, direct: DirectWebSocketProtocol, state: BidderState
    ) -> None:
        """The logged-in session on uvicorn with :class:`DirectWebSocketProtocol`: messages
        are handled as they are parsed and pushes written straight to the connection;
        this coroutine only waits for the end (the peer leaves, or the house closes it)."""
        session = BidderSession(state.bidder_id, push=direct.push)
        self.house.attach(state, session)
        self._welcome(state, session)

        def on_text(text: str) -> None:
            if not session.closed:
                self._handle(state, session, text)

        direct.enable_direct(on_text)
        gone = asyncio.ensure_future(_receive_text(ws))  # only the disconnect comes now
        ended = asyncio.ensure_future(session.ended.wait())
        try:
            await asyncio.wait({gone, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (gone, ended):
                task.cancel()
            self.house.detach(state, session)
            if not gone.done() or gone.cancelled():
                with contextlib.suppress(Exception):
                    await ws.close(session.close_code, session.close_reason)

    async def _login(self, ws: WebSocket, text: str, challenge: str) -> BidderState | None:
        async def refuse(reason: str, detail: str) -> None:
            with contextlib.suppress(Exception):
                await ws.send_text(
                    compact_json({"type": "error", "reason": reason, "detail": detail})
                )
                await ws.close(1008, reason)

        if len(text) > self.max_bytes or len(text.encode()) > self.max_bytes:
            await refuse("message_too_large", f"over security.max_message_bytes={self.max_bytes}")
            return None
        try:
            login = login_adapter.validate_json(text)
        except ValidationError as exc:
            _field, detail = malformed(list(exc.errors()))
            await refuse("malformed", detail)
            return None
        state = await self.house.bidder_state(login.bidder_id)
        signed = login_signing_bytes(login.bidder_id, challenge)
        # Unknown id or wrong key: one answer, so that no one can list the bidder ids.
        key = NO_ONE_KEY if state is None else state.record.public_key
        if not verify_signature(key, login.signature, signed, self.house.keys) or state is None:
            if state is not None:
                await self.house.identities.refused(state)
            await refuse(
                "bad_signature", f"login signature does not verify for {login.bidder_id!r}"
            )
            return None
        return state

    def _within_rate(
        self, state: BidderState, session: BidderSession, ref: str | int | None, kind: str
    ) -> bool:
        """Take a token of the bidder's rate limit for a message the house does not see
        (a status request, a malformed or oversized message), else answer
        ``rate_limited``. Every message counts, not only commits and reveals: a flood of
        the others slowed every bidder on the loop (a status round trip went from 0.8 ms
        to 95 ms under a malformed flood, measured)."""
        if state.bucket.allow(self.house.clock.monotonic()):
            return True
        self.metrics.count_rejection("rate_limited")
        if not self._flooding(session):
            verdict = Verdict(kind, None, False, "rate_limited", self.over_limit)
            session.send(compact_json(ack_document(verdict, ref)))
        return False

    def _flooding(self, session: BidderSession) -> bool:
        """Count one more message of ``session`` refused for the rate limit; past
        :data:`FLOOD_CLOSE_AFTER` (net of those drained at the rate), close it (1008
        ``rate_limited``) and say so."""
        now = self.house.clock.monotonic()
        if session.flood is None:
            session.flood = FloodGauge(self.house.config.resources.max_messages_per_second, now)
        if not session.flood.refused(now):
            return False
        session.close(1008, "rate_limited")
        return True

    def _handle(self, state: BidderState, session: BidderSession, text: str) -> None:
        if len(text) > self.max_bytes or len(text.encode()) > self.max_bytes:
            if not self._within_rate(state, session, None, "unknown"):
                return
            self.metrics.count_rejection("message_too_large")
            session.send(
                compact_json(
                    ack_document(
                        Verdict(
                            "unknown",
                            None,
                            False,
                            "message_too_large",
                            f"{len(text.encode())} bytes: over security.max_message_bytes="
                            f"{self.max_bytes}",
                        )
                    )
                )
            )
            return
        try:
            message = bidder_message_adapter.validate_json(text)
        except ValidationError as exc:
            if not self._within_rate(state, session, None, "unknown"):
                return
            field, detail = malformed(list(exc.errors()))
            self.metrics.count_rejection("malformed")
            ref, kind = _salvage(text)
            verdict = Verdict(kind, None, False, "malformed", detail)
            session.send(compact_json({**ack_document(verdict, ref), "field": field}))
            return
        if isinstance(message, WsStatus):
            if not self._within_rate(state, session, message.ref, "status"):
                return
            session.send(
                compact_json({"type": "status", "ref": message.ref, **self.house.status(state)})
            )
            return
        ref, kind = message.ref, message.type

        def acknowledge(verdict: Verdict) -> None:
            if verdict.reason == "rate_limited" and self._flooding(session):
                return
            session.send(compact_json(ack_document(verdict, ref)))

        assert isinstance(message, WsCommit | WsReveal), kind
        self.house.take(state, message, message.auction_id, "ws", acknowledge)


def _salvage(text: str) -> tuple[str | int | None, str]:
    """The ``ref`` and ``type`` of a malformed message, if they can be read."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested thousands deep
        return None, "unknown"
    if not isinstance(raw, dict):
        return None, "unknown"
    try:
        ref = check_ref(raw.get("ref"))
    except ValueError:  # not echoed: never a boolean for an integer, nor beyond 2**53 - 1
        ref = None
    kind = raw.get("type")
    return ref, kind if kind in ("commit", "reveal", "status") else "unknown"


async def _receive_text(ws: WebSocket) -> str | None:
    """The next text (or UTF-8 binary) frame, or None once the peer has gone."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    if data is not None:
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            await ws.close(1007, "invalid UTF-8")
            return None
    return ""


async def _write(ws: WebSocket, session: BidderSession) -> None:
    """Send queued pushes and acks until the session closes."""
    try:
        while True:
            text = await session.outbox.get()
            if text is None:
                break
            await ws.send_text(text)
    except Exception:  # the peer went away: the reader notices too
        session.close()
    with contextlib.suppress(Exception):
        await ws.close(session.close_code, session.close_reason)
