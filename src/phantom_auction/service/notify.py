"""Many server processes on one PostgreSQL database (``serve --workers N``): the
pushes and the bidder messages they pass to each other over LISTEN/NOTIFY.

Each auction is **owned** by the process whose settlement request opened it: its
engine state, timers and group commit live there, and the owner's id is stored with
the auction (``engine_params["owner"]``). Bidders may be connected to any process, so:

- **Pushes fan out.** The owner publishes ``auction_opened``, ``reveal_open`` (with the
  accepted commits' nonces, so every process keeps the nonce rule) and the end of the
  auction (enough to build each bidder's ``auction_closed``, and any penalty change) on
  the deployment's broadcast channel; every other process pushes them to its own
  connected bidders, as the owner does to its own.
- **Messages are forwarded.** A commit or reveal reaching a process that does not own
  its auction is passed, as the bidder sent it, to the owner's own channel; the owner
  runs it through its one commit/reveal path (identity, signature, engine, durable
  write) and sends the verdict back, and only then is the bidder acknowledged: an ack
  still means durable. The owner is found from the fan-out (or the stored auction).

Notifications are batched: whatever a process publishes in one event-loop turn goes
to PostgreSQL in one statement (``pg_notify`` over ``unnest``), in order.

Liveness and recovery: each process holds a session advisory lock on its owner id for
its whole life (a lease: :mod:`.locks`; a process whose machine died lets go within
:data:`~.locks.FREED_WITHIN_S`, having stopped itself sooner). On start, a process
ends (as a single server does after a crash) only the open auctions whose owner's lock
is free, i.e. whose process is gone; starts are
serialized by a second advisory lock, so an auction is recovered once. A forwarded
message unanswered for :data:`LIVENESS_PROBE_S` makes the sender check its owner's
lock: if the owner is gone, every message waiting on it is answered
``store_unavailable`` at once (not after :data:`FORWARD_TIMEOUT_S`), and the house
ends the dead owner's auctions then (``on_gone``), without waiting for a restart.

Channels are named after the store's schema (``current_schema()``), so deployments in
different schemas of one database do not hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .locks import Heartbeat, connect_lock_holder

__all__ = ["PeerLink"]

_log = logging.getLogger(__name__)

#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; chunk below that.
MAX_PAYLOAD_BYTES: Final = 7_000
#: The advisory lock that serializes the processes' start-up recoveries (any int64).
RECOVERY_LOCK: Final = 0x70A5_0000_0000_0001
#: How long a forwarded message waits for its owner's verdict before it is answered
#: ``store_unavailable`` (the owner is alive but stuck; a dead one is found sooner).
FORWARD_TIMEOUT_S: Final = 10.0
#: A forwarded message unanswered this long makes the link check that its owner is
#: alive (its advisory lock), once per owner per period (s).
LIVENESS_PROBE_S: Final = 1.0
#: The answer to a message whose auction's process has stopped.
OWNER_GONE_DETAIL: Final = (
    "the process running this auction has stopped (the auction is ended without it): "
    "send it again for another auction"
)


@dataclass(frozen=True, slots=True)
class ForwardedVerdict:
    """The owner's answer to a forwarded message (the fields of the house's Verdict).
    ``from_owner``: it came from the owner, which counted it in its metrics (else this
    link made it: a timeout, an owner gone, a stop)."""

    accepted: bool
    reason: str | None
    detail: str | None
    from_owner: bool = False


#: What the link asks of the house when another process speaks (see
#: :class:`~.house.peers.HousePeers`): ``kind`` and the decoded message.
Handler = Callable[[str, dict[str, Any]], None]


class PeerLink:
    """This process's line to the others: publish, listen, forward and answer.

    ``on_message(kind, message)`` is called on the event loop for every notification
    from another process: ``opened``, ``reveal_open``, ``closed`` (fan-out) and
    ``forward`` (a message to run here; answer it with :meth:`answer`).
    """

    def __init__(
        self,
        database_url: str,
        on_message: Handler,
        on_gone: Callable[[int], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.on_message = on_message
        #: Called with an owner id found dead (its lock free) while messages waited on it.
        self.on_gone = on_gone
        #: Called if one of the link's connections closes while it runs, or the one
        #: holding the liveness lock stops answering (:mod:`.locks`): the liveness
        #: lock (or the channel) is gone with it, and other processes may now end this
        #: one's auctions, so it must stop (``serve`` does; its supervisor restarts it).
        self.on_lost = on_lost
        #: This process's owner id: a random positive int63, also its advisory lock key.
        self.me = secrets.randbits(62) + 1
        self._listener: Any = None
        self._publisher: Any = None
        self._prefix = "pa"
        self._outbox: list[tuple[str, str]] = []
        self._flushing: asyncio.Task[None] | None = None
        #: Forwarded messages awaiting a verdict: request id -> (answer, owner, sent at).
        self._waiting: dict[int, tuple[asyncio.Future[ForwardedVerdict], int, float]] = {}
        self._next_request = 0
        self._closed = False
        self._watchdog: asyncio.Task[None] | None = None
        self._heartbeat: Heartbeat | None = None
        #: One query at a time on the publisher connection (notices, locks, probes).
        self._publisher_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, take this process's liveness lock, listen on its channels."""
        # Both hold locks (the liveness lock; the recovery lock while recovering).
        self._listener = await connect_lock_holder(self.database_url)
        self._publisher = await connect_lock_holder(self.database_url)
        schema = await self._listener.fetchval("SELECT current_schema()")
        # Channel names are identifiers (at most 63 bytes): keep the schema's safe part.
        safe = "".join(c for c in str(schema).lower() if c.isalnum() or c == "_")[:32]
        self._prefix = f"pa_{safe}"
        await self._listener.fetchval("SELECT pg_advisory_lock($1)", self.me)
        await self._listener.add_listener(self._channel(None), self._heard)
        await self._listener.add_listener(self._channel(self.me), self._heard)
        what = "a PostgreSQL connection between the server processes"
        self._heartbeat = Heartbeat(self._listener, what, self._lost)
        self._publisher.add_termination_listener(lambda _connection: self._lost(what))
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    def _lost(self, what: str) -> None:
        if not self._closed and self.on_lost is not None:
            self.on_lost(what)

    async def holds(self) -> bool:
        """Whether this process still holds its liveness lock, so that no other has
        recovered its auctions (:meth:`.locks.Heartbeat.holds`)."""
        heartbeat = self._heartbeat
        return heartbeat is not None and not self._closed and await heartbeat.holds()

    async def close(self) -> None:
        """Send what is queued, stop listening, answer every waiting forward."""
        if self._closed:
            return
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(BaseException):
                await self._watchdog
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        with contextlib.suppress(Exception):
            await self._flush_now()
        for waiter, _owner, _sent in self._waiting.values():
            if not waiter.done():
                waiter.set_result(
                    ForwardedVerdict(False, "shutting_down", "the service is stopping")
                )
        self._waiting.clear()
        for connection in (self._listener, self._publisher):
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close()

    @contextlib.asynccontextmanager
    async def recovery_turn(self) -> AsyncIterator[None]:
        """Hold the deployment's recovery lock (one process recovers at a time)."""
        await self._query("SELECT pg_advisory_lock($1)", RECOVERY_LOCK)
        try:
            yield
        finally:
            await self._query("SELECT pg_advisory_unlock($1)", RECOVERY_LOCK)

    async def _query(self, sql: str, *args: Any) -> Any:
        assert self._publisher is not None
        async with self._publisher_lock:
            return await self._publisher.fetchval(sql, *args)

    async def owner_alive(self, owner: object) -> bool:
        """Whether the process that opened an auction (its stored owner id) still runs."""
        if not isinstance(owner, int) or isinstance(owner, bool):
            return False  # opened by a single-process server: nobody runs it now
        if owner == self.me:
            return True
        assert self._publisher is not None
        async with self._publisher_lock:
            free = await self._publisher.fetchval("SELECT pg_try_advisory_lock($1)", owner)
            if free:
                await self._publisher.fetchval("SELECT pg_advisory_unlock($1)", owner)
        return not free

    # ------------------------------------------------------------------ publishing

    def _channel(self, owner: int | None) -> str:
        return f"{self._prefix}_all" if owner is None else f"{self._prefix}_{owner:x}"

    def publish(self, kind: str, message: dict[str, Any], owner: int | None = None) -> None:
        """Send ``message`` to every other process (or to ``owner``'s), this loop turn."""
        if self._closed:
            return
        payload = orjson.dumps({"k": kind, "w": self.me, **message}).decode()
        if len(payload.encode()) >= MAX_PAYLOAD_BYTES:
            raise ValueError(f"{kind} notification of {len(payload)} bytes: chunk it")
        self._outbox.append((self._channel(owner), payload))
        if self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    def publish_chunked(
        self, kind: str, message: dict[str, Any], field: str, items: dict[str, Any]
    ) -> None:
        """:meth:`publish` ``message`` with ``items`` under ``field``, split over as many
        notifications as the payload limit needs (each carries the rest of ``message``)."""
        base = len(orjson.dumps(message)) + 200
        chunk: dict[str, Any] = {}
        size = base
        for key, value in items.items():
            item = len(orjson.dumps({key: value}))
            if chunk and size + item >= MAX_PAYLOAD_BYTES:
                self.publish(kind, {**message, field: chunk})
                chunk, size = {}, base
            chunk[key] = value
            size += item
        self.publish(kind, {**message, field: chunk})

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # let the rest of this loop turn queue its notices
            while self._outbox:
                await self._flush_now()
        except Exception as exc:
            # The connection went (an outage: its heartbeat stops this process); one line,
            # not a traceback per batch (the fault audit counted 7 in one outage).
            _log.error("notifications to the other processes were lost: %r", exc)
        finally:
            self._flushing = None

    async def _flush_now(self) -> None:
        batch, self._outbox = self._outbox, []
        if not batch or self._publisher is None:
            return
        channels = [channel for channel, _ in batch]
        payloads = [payload for _, payload in batch]
        # One statement, one transaction: delivered together and in this order.
        async with self._publisher_lock:
            await self._publisher.execute(
                "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)",
                channels,
                payloads,
            )

    # ------------------------------------------------------------------ forwarding

    def forward(self, owner: int, message: dict[str, Any]) -> asyncio.Future[ForwardedVerdict]:
        """Send a bidder's message to ``owner``; the future gives its verdict (answered
        by the watchdog if the owner is found gone, or after :data:`FORWARD_TIMEOUT_S`)."""
        loop = asyncio.get_running_loop()
        self._next_request += 1
        request = self._next_request
        answer: asyncio.Future[ForwardedVerdict] = loop.create_future()
        self._waiting[request] = (answer, owner, loop.time())
        self.publish("forward", {"id": request, **message}, owner=owner)
        return answer

    async def _watch(self) -> None:
        """Every :data:`LIVENESS_PROBE_S`: expire forwards past :data:`FORWARD_TIMEOUT_S`;
        check the owners of those waiting longer than a period; answer a dead one's."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(LIVENESS_PROBE_S)
            now = loop.time()
            slow: set[int] = set()
            for request, (answer, owner, sent) in list(self._waiting.items()):
                if now - sent >= FORWARD_TIMEOUT_S:
                    self._settle(
                        request,
                        ForwardedVerdict(
                            False,
                            "store_unavailable",
                            "the process running this auction did not answer: send it again",
                        ),
                    )
                elif now - sent >= LIVENESS_PROBE_S and not answer.done():
                    slow.add(owner)
            for owner in slow:
                try:
                    alive = await self.owner_alive(owner)
                except Exception:
                    _log.exception("could not check whether process %x runs", owner)
                    continue
                if not alive:
                    self.owner_gone(owner)

    def owner_gone(self, owner: int) -> None:
        """``owner``'s process has stopped: answer every message waiting on it."""
        verdict = ForwardedVerdict(False, "store_unavailable", OWNER_GONE_DETAIL)
        for request, (_answer, waited_on, _sent) in list(self._waiting.items()):
            if waited_on == owner:
                self._settle(request, verdict)
        if self.on_gone is not None:
            self.on_gone(owner)

    def _settle(self, request: int, verdict: ForwardedVerdict) -> None:
        waiting = self._waiting.pop(request, None)
        if waiting is not None and not waiting[0].done():
            waiting[0].set_result(verdict)

    def answer(self, request: dict[str, Any], verdict: ForwardedVerdict) -> None:
        """Send the verdict of a forwarded ``request`` back to the process it came from."""
        self.publish(
            "verdict",
            {"id": request["id"], "v": [verdict.accepted, verdict.reason, verdict.detail]},
            owner=request["w"],
        )

    # ------------------------------------------------------------------ listening

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            kind = message.pop("k")
            if message.get("w") == self.me:
                return  # our own broadcast
            if kind == "verdict":
                accepted, reason, detail = message["v"]
                verdict = ForwardedVerdict(bool(accepted), reason, detail, from_owner=True)
                self._settle(message["id"], verdict)
                return
            self.on_message(kind, message)
        except Exception:  # one bad notice must not stop the listener
            _log.exception("notification from another process failed: %.200s", payload)
