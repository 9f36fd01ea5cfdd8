"""A leaner path for the bidder WebSocket under uvicorn: frames in and out without a task
or a queue per message, and one socket write per connection per loop iteration.

uvicorn's ``websockets-sansio`` protocol hands every received message to the ASGI app
through a queue (pausing and resuming the socket around each one) and writes every sent
frame with its own system call. The auction house answers every commit and reveal and
pushes five messages per auction to every bidder, so at a few hundred auctions per
second those per-message costs were most of the server's time.

:class:`DirectWebSocketProtocol` is that protocol plus an opt-in shortcut the app finds
in the connection's ASGI scope (``scope["extensions"]["phantom_auction.direct"]``):

- :meth:`DirectWebSocketProtocol.enable_direct` (after the login): each later text
  message is given to a callback synchronously, from ``data_received``;
- :meth:`DirectWebSocketProtocol.push`: a pre-built frame is appended to the
  connection's output and written, together with everything else pushed to the same
  connection in this loop iteration, by one ``transport.write`` (TCP sees the same
  frames, in the same order; only the number of system calls changes).

Everything else (handshake, pings, close, disconnects) is uvicorn's. Without the
extension (another server, or another ``ws`` implementation) the app falls back to the
plain ASGI calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = ["DIRECT_EXTENSION", "MAX_BUFFERED_BYTES", "DirectWebSocketProtocol", "text_frame"]

_log = logging.getLogger(__name__)

#: The ASGI scope extension under which the app finds the connection's protocol.
DIRECT_EXTENSION = "phantom_auction.direct"
#: Unsent bytes a connection may pile up before its peer is deemed too slow (and dropped).
MAX_BUFFERED_BYTES = 8 << 20


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented WebSocket text frame (server to client) carrying ``text``."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with direct delivery and coalesced writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_text: Callable[[str], None] | None = None
        self._pending: list[bytes] = []
        self._flush_scheduled = False

    # ------------------------------------------------------------------ incoming

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # the handshake was accepted: the app runs with this scope
            scope["extensions"][DIRECT_EXTENSION] = self

    def enable_direct(self, on_text: Callable[[str], None]) -> None:
        """From now on hand each text (or UTF-8 binary) message to ``on_text`` at once.

        Messages already queued for the app are handed over first, in order; a queued
        disconnect stays queued (the app's ``receive()`` still reports the end).
        """
        self._on_text = on_text
        queue = self.queue
        ended: list[Any] = []
        while not queue.empty():
            message = queue.get_nowait()
            if message["type"] == "websocket.receive" and not ended:
                self._deliver(message.get("text"), message.get("bytes"))
            else:
                ended.append(message)
        for message in ended:
            queue.put_nowait(message)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def send_receive_event_to_app(self) -> None:
        if self._on_text is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self._deliver(None, bytes(data))

    def _deliver(self, text: str | None, data: bytes | None) -> None:
        if text is None:
            try:
                text = "" if data is None else data.decode("utf-8")
            except UnicodeDecodeError:
                # Messages are UTF-8 JSON (text or binary frames): anything else is
                # refused as RFC 6455 says, not guessed at with U+FFFD.
                self.conn.send_close(1007, "invalid UTF-8")
                self.handle_parser_exception()
                return
        assert self._on_text is not None
        try:
            self._on_text(text)
        except Exception:  # a bug must not take the connection's parser down with it
            _log.exception("bidder message handler failed")

    # ------------------------------------------------------------------ outgoing

    def push(self, frame: bytes) -> bool:
        """Queue ``frame`` (see :func:`text_frame`) for this loop iteration's write.

        False when the connection is gone or its peer has let :data:`MAX_BUFFERED_BYTES`
        pile up (the caller drops the session). Such a connection is aborted: a close
        frame would wait behind the buffer of a peer that does not read, holding it
        (~16 MB a connection, measured) until the ping timeout.
        """
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        if self.transport.get_write_buffer_size() > MAX_BUFFERED_BYTES:
            self._pending.clear()
            self.transport.abort()
            return False
        self._pending.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return
        # uvicorn writes the sans-I/O connection's own output (handshake, pongs, close)
        # as soon as it makes it, so these frames are the only data waiting.
        self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def shutdown(self) -> None:
        # The server is stopping: the pushes of this turn (the auctions it just ended)
        # leave before the close frame that uvicorn writes straight to the transport.
        self._flush()
        super().shutdown()

    async def send(self, message: Any) -> None:
        # Frames pushed earlier must leave before anything sent through ASGI (a close).
        if self._pending:
            self._flush()
        await super().send(message)
