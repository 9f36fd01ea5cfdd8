"""The clock the drivers pass to the sans-IO engine: one small protocol, two real clocks.

The engine never reads the time; its drivers do, through a :class:`Clock`, so a test (or
a simulation) can inject its own. ``now()`` is the UTC wall-clock time handed to the
:class:`~phantom_auction.engine.Auction` as ``now=``; ``monotonic()`` (seconds) measures
intervals (rate limits, caches, latencies); ``loop_time(when)`` is the event-loop time
at which the wall-clock moment ``when`` falls (for ``loop.call_at`` timers).

- :class:`SystemClock` — the operating system's clocks (the network service: its times
  are compared with the bidders' own clocks, so they follow the system's).
- :class:`LoopClock` — UTC times read from the event loop's monotonic clock, anchored
  once to the wall clock (the in-process runner: one auction's times never jump).

Times on the wire and in stores are unix microseconds: :func:`to_us`, :func:`from_us`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

__all__ = ["Clock", "LoopClock", "SystemClock", "from_us", "to_us"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """Unix microseconds of an aware datetime (exact)."""
    return (moment - _EPOCH) // _US


def from_us(us: int) -> datetime:
    """The UTC datetime of unix microseconds (exact)."""
    return _EPOCH + timedelta(microseconds=us)


@runtime_checkable
class Clock(Protocol):
    """What a driver reads the time from."""

    def now(self) -> datetime:  # pragma: no cover - protocol
        """The current UTC time (aware)."""
        ...

    def monotonic(self) -> float:  # pragma: no cover - protocol
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def loop_time(self, when: datetime) -> float:  # pragma: no cover - protocol
        """The running event loop's time (s) at which ``when`` falls."""
        ...


class SystemClock:
    """The operating system's wall clock and monotonic clock."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def loop_time(self, when: datetime) -> float:
        return asyncio.get_running_loop().time() + (when - self.now()).total_seconds()


class LoopClock:
    """UTC datetimes read from ``loop``'s monotonic clock (never jumps), anchored to the
    wall clock when made."""

    __slots__ = ("_loop", "_origin", "_t0")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._t0 = loop.time()
        self._origin = datetime.now(UTC)

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self._loop.time() - self._t0)

    def monotonic(self) -> float:
        return self._loop.time()

    def loop_time(self, when: datetime) -> float:
        return self._t0 + (when - self._origin).total_seconds()
