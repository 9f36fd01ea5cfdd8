"""The drivers' clock: microsecond times, and the runner taking its times from an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from phantom_auction.config import load_config
from phantom_auction.engine import SettlementRequest
from phantom_auction.engine.clock import Clock, LoopClock, SystemClock, from_us, to_us
from phantom_auction.engine.runner import arun_auction


class PastClock:
    """The event loop's time, read as if it were 1 January 2001 when made."""

    origin = datetime(2001, 1, 1, tzinfo=UTC)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._t0 = loop.time()

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=self._loop.time() - self._t0)

    def monotonic(self) -> float:
        return self._loop.time()

    def loop_time(self, when: datetime) -> float:
        return self._t0 + (when - self.origin).total_seconds()


def test_both_real_clocks_are_clocks_and_microseconds_round_trip() -> None:
    async def made() -> list[object]:
        return [SystemClock(), LoopClock(asyncio.get_running_loop())]

    for clock in asyncio.run(made()):
        assert isinstance(clock, Clock)
    for us in (0, 1, 978_307_200_000_001):
        assert to_us(from_us(us)) == us


def test_the_runner_takes_its_times_from_an_injected_clock() -> None:
    """A deadline in 2001 is 0.3 s away on the injected clock (on the system's it has
    long passed, and the runner would refuse it)."""
    config = load_config()

    async def main() -> tuple[datetime, datetime]:
        clock = PastClock(asyncio.get_running_loop())
        deadline = PastClock.origin + timedelta(milliseconds=300)
        result = await arun_auction(
            SettlementRequest(1, 2, 10.0), 2000.0, 10.0, deadline, config=config, clock=clock
        )
        return result.opened_at, result.finalized_at

    opened, finalized = asyncio.run(main())
    assert PastClock.origin <= opened < finalized
    assert finalized <= PastClock.origin + timedelta(milliseconds=300)
