"""HTTP connections that must deliver their request in time (against slowloris).

uvicorn closes idle keep-alive connections but puts no limit on how long a client may
take to send one request: a client trickling header bytes, or a body, one at a time
holds its connection (and a task) for as long as it likes, and a few hundred such
clients hold the server. :class:`ReadDeadlineProtocol` gives every request
``read_timeout_s`` seconds, from the connection's start (or the end of the previous
request) to its last body byte; past that it answers ``408`` and closes. A WebSocket
upgrade ends the deadline (the login has its own ``challenge_ttl_s``), and so does a
complete request (the app may then take as long as its auction lasts).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["ReadDeadlineProtocol", "with_read_timeout"]

_TIMEOUT_BODY = (
    b'{"status":"rejected","reason":"request_timeout",'
    b'"detail":"the request did not arrive within service.read_timeout_s"}'
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(_TIMEOUT_BODY) + _TIMEOUT_BODY
)


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for reading each request."""

    read_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def with_read_timeout(seconds: float) -> type[ReadDeadlineProtocol]:
    """A :class:`ReadDeadlineProtocol` subclass whose requests get ``seconds`` to arrive."""
    return type("ReadDeadlineProtocol", (ReadDeadlineProtocol,), {"read_timeout_s": seconds})
