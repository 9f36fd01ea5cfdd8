"""Admission control: an auction whose deadline the loop cannot keep is refused at once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from phantom_auction.engine import SettlementRequest, arun_auction, make_bid
from phantom_auction.engine.admission import (
    FIRST_QUEUED_CPU_S,
    WARMUP_PROBES,
    Admission,
    Overloaded,
    admission_for,
)
from phantom_auction.errors import AuctionTimeout

from .engine_support import PAIR, no_phantoms

REQUEST = SettlementRequest(PAIR[0], PAIR[1], 1000.0)
CONFIG = no_phantoms(duration_ms=200, reveal_delay_ms=100, min_participants=1)


class NoShow:
    """Commits at once, never reveals: its auction waits out the reveal window."""

    def __init__(self, auction_id: str, nonce: int) -> None:
        self.bid = make_bid(auction_id, "no-show", PAIR, 100.3, 10.0, 0.0, nonce)

    async def commit(self, announcement: object) -> object:
        return self.bid.sealed()

    async def reveal(self, announcement: object) -> None:
        return None


def _deadline(ms: float) -> datetime:
    return datetime.now(UTC) + timedelta(milliseconds=ms)


def test_a_stalled_loop_refuses_what_it_cannot_finish_in_time() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = admission_for(loop)
        running = asyncio.ensure_future(
            arun_auction(
                REQUEST,
                100.0,
                1000.0,
                _deadline(2000),
                config=CONFIG,
                bidders=[NoShow("a-1", 1)],
                auction_id="a-1",
                admission=True,
                finalize_margin_ms=1000.0,  # 500 ms kept: room for a loaded test machine
            )
        )
        await asyncio.sleep(0.02)
        # Something blocks the loop for 60 ms: the probe sees it fire that late.
        loop.call_soon(time.sleep, 0.06)
        await asyncio.sleep(0.08)
        assert gate.lag_s > 0.03
        # A 3 ms margin cannot absorb a lag of tens of ms: refused before it opens.
        with pytest.raises(Overloaded) as refused:
            await arun_auction(
                REQUEST,
                100.0,
                1000.0,
                _deadline(150),
                config=CONFIG,
                bidders=[NoShow("a-2", 2)],
                auction_id="a-2",
                admission=True,
            )
        assert isinstance(refused.value, AuctionTimeout)
        assert refused.value.retry_after_s > 0 and "late" in str(refused.value)
        # A deadline with room for the lag is taken, and kept.
        deadline = _deadline(2000)
        result = await arun_auction(
            REQUEST,
            100.0,
            1000.0,
            deadline,
            config=CONFIG,
            bidders=[NoShow("a-3", 3)],
            auction_id="a-3",
            admission=True,
            finalize_margin_ms=1000.0,
        )
        assert result.unrevealed == ("no-show",)
        assert (await running).auction_id == "a-1"
        assert gate.refused >= 1 and gate.admitted >= 2

    asyncio.run(main())


def test_admission_is_opt_in() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.05)
        await asyncio.sleep(0.06)
        result = await arun_auction(
            REQUEST,
            100.0,
            1000.0,
            _deadline(150),
            config=CONFIG,
            bidders=[NoShow("b-1", 1)],
            auction_id="b-1",
        )
        assert result.auction_id == "b-1"

    asyncio.run(main())


# -- a burst on a fake clock: the first auctions of a burst are admitted before the loop
#    has measured anything, so what is unmeasured must be assumed bad --


class _FakeLoop:
    """The parts of an event loop Admission reads: time, the ready queue, timers."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._ready: list[None] = []
        self.timers: list[float] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: object, *args: object) -> _FakeTimer:
        self.timers.append(when)
        return _FakeTimer()


class _FakeTimer:
    def cancel(self) -> None:
        pass


class _Machine:
    """One loop thread on a machine where other processes take ``(slowdown - 1)`` of
    every unit of wall time: CPU spent advances the fake clock ``slowdown`` times as much,
    and the scheduler's statistics say so (Linux schedstat: ns running, ns waiting)."""

    def __init__(self, slowdown: float) -> None:
        self.loop = _FakeLoop()
        self.slowdown = slowdown
        self.cpu = 0.0

    def spend(self, cpu_s: float) -> None:
        self.cpu += cpu_s
        self.loop.now += cpu_s * self.slowdown

    def sched(self) -> tuple[int, int]:
        return int(self.cpu * 1e9), int(self.cpu * (self.slowdown - 1.0) * 1e9)


def _burst(
    count: int, slowdown: float, margin_s: float = 0.020, window_s: float = 0.100
) -> tuple[int, list[float]]:
    """``count`` arrivals at once on a fresh loop; returns (admitted, lateness of each
    admitted auction's finalization in s: > 0 is a broken promise).

    True costs (CPU s): an opening 250 us, a refused arrival's whole cycle 50 us and the
    completion it leaves queued 30 us, a finalization 60 us; a timer fires 1 ms late
    per unit of slowdown. Nothing has been measured on this loop before the burst, and
    the machine's load average has not caught up yet (crowding 1)."""
    machine = _Machine(slowdown)
    loop = machine.loop
    gate = Admission(
        loop,  # type: ignore[arg-type]
        cpu=lambda: machine.cpu,
        sched=machine.sched,
        crowding=lambda: 1.0,
    )
    promised: list[tuple[float, float]] = []
    refused = 0
    for k in range(count):
        # The arrivals not yet run, and the completions of those refused, all ahead of
        # any timer.
        loop._ready = [None] * (count - k - 1 + refused)
        deadline = loop.now + window_s + margin_s
        try:
            gate.admit(deadline, deadline - margin_s)
        except Overloaded:
            refused += 1
            machine.spend(50e-6)
            continue
        machine.spend(250e-6)
        gate.cost(310e-6)
        promised.append((deadline - margin_s, deadline))
    machine.spend(30e-6 * refused)  # the completions run before any timer
    lateness = []
    for due, deadline in sorted(promised):
        loop.now = max(loop.now, due + 1e-3 * slowdown)
        machine.spend(60e-6)
        lateness.append(loop.now - deadline)
    return len(promised), lateness


@pytest.mark.parametrize(
    ("count", "slowdown"),
    [(1000, 2.0), (2000, 3.0), (1000, 1.0), (300, 2.0), (100, 2.0), (30, 1.0)],
)
def test_a_burst_at_start_admits_no_auction_that_ends_late(count: int, slowdown: float) -> None:
    admitted, lateness = _burst(count, slowdown)
    assert all(late <= 0.0 for late in lateness), max(lateness)
    if count * 80e-6 * slowdown < 0.05:
        # The whole burst drains in half the window: the loop can keep some promises,
        # and admission control must not refuse them all.
        assert admitted > 0


def test_refusals_measure_what_a_queued_arrival_costs() -> None:
    machine = _Machine(1.0)
    gate = Admission(
        machine.loop,  # type: ignore[arg-type]
        cpu=lambda: machine.cpu,
        sched=machine.sched,
        crowding=lambda: 1.0,
    )
    assert gate.queued_cpu_s == FIRST_QUEUED_CPU_S  # pessimistic before anything is seen
    machine.loop._ready = [None] * 10_000  # nothing can be admitted behind this queue
    for _ in range(100):
        with pytest.raises(Overloaded):
            gate.admit(machine.loop.now + 0.1, machine.loop.now + 0.09)
        machine.spend(50e-6)
    assert gate.queued_cpu_s == pytest.approx(50e-6, rel=0.01)
    assert gate.refused == 100 and gate.admitted == 0


def test_the_lag_is_assumed_until_the_probe_has_measured_it() -> None:
    machine = _Machine(1.0)
    gate = Admission(
        machine.loop,  # type: ignore[arg-type]
        cpu=lambda: machine.cpu,
        sched=machine.sched,
        crowding=lambda: 1.0,
    )
    # A 1 ms margin is less than the lag an unmeasured loop may have: refused.
    now = machine.loop.now
    with pytest.raises(Overloaded):
        gate.admit(now + 0.101, now + 0.100)
    assert machine.loop.timers  # the probe runs on refusals too
    for _ in range(WARMUP_PROBES):
        machine.loop.now = machine.loop.timers[-1] + 0.0001  # each fires 0.1 ms late
        gate._probed()
    now = machine.loop.now
    token = gate.admit(now + 0.101, now + 0.100)
    gate.finished(token)
    assert gate.admitted == 1
