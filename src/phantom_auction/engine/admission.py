"""Admission control: refuse an auction whose deadline the event loop cannot keep.

A deadline the engine accepts is a promise. Under more load than one event loop can
serve on time, running every auction anyway breaks the promises already made (every
finalization timer fires late); refusing the newcomer early keeps them. Per loop,
:class:`Admission` measures

- the CPU one auction costs the loop (thread CPU time of its synchronous steps, an
  exponentially weighted mean) and how much wall time that CPU takes (``slowdown``:
  above 1 when another process competes for the same cores);
- the loop's lag: how late a probe timer (every :data:`PROBE_S`, while auctions run)
  fires, the recent maximum decaying by half every :data:`LAG_HALF_LIFE_S`;
- the auctions in flight: when each one's finalization is due and its deadline.

A new auction is admitted only if, after paying for its own opening now, (1) it can
itself finish by its deadline, and (2) every auction in flight can still be finalized
by its deadline: the finalizations due at about the same time, and the work already
queued on the loop, must fit between each one's due time and its deadline. Otherwise
:class:`Overloaded` (an :class:`AuctionTimeout`) with the seconds after which to retry.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import os
import threading
import time
import weakref
from typing import Final

from ..errors import AuctionTimeout

__all__ = ["LAG_HALF_LIFE_S", "PROBE_S", "Admission", "Overloaded", "admission_for"]

#: Interval of the lag probe while auctions are in flight (s).
PROBE_S: Final = 0.005
#: The recent lag maximum halves every this many seconds.
LAG_HALF_LIFE_S: Final = 0.25
#: Starting guesses (s of CPU) before anything is measured: one auction, one finalization.
_FIRST_AUCTION_CPU_S: Final = 400e-6
_FIRST_FINALIZE_CPU_S: Final = 60e-6
#: The work one refused call costs the loop (the check, the exception), s.
_REFUSAL_CPU_S: Final = 20e-6
_SLICE_S: Final = 0.004  # a typical Linux scheduler time slice (s)
_WEIGHT: Final = 0.05  # EWMA weight of the newest measurement


class Overloaded(AuctionTimeout):
    """The event loop cannot run this auction and keep every deadline: retry later.

    ``retry_after_s`` is when the earliest auction in flight will be done.
    """

    def __init__(self, reason: str, retry_after_s: float) -> None:
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.available_ms = self.required_ms = 0.0
        Exception.__init__(self, f"overloaded: {reason}; retry in {retry_after_s:.3f} s")


class Admission:
    """The admission state of one event loop (see the module docstring). Times are loop
    times (``loop.time()``, s); costs are CPU seconds of the loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.auction_cpu_s = _FIRST_AUCTION_CPU_S
        self.finalize_cpu_s = _FIRST_FINALIZE_CPU_S
        self.slowdown = 1.0
        self.refused = 0
        self.admitted = 0
        self._lag_s = 0.0
        self._lag_at = loop.time()
        # (due, deadline, token): finalizations of the auctions in flight, earliest first.
        self._due: list[tuple[float, float, int]] = []
        self._done: set[int] = set()
        self._next_token = 0
        self._running = 0  # admitted and not finished
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0.0
        self._admits = 0
        self._sched_path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        self._sched: tuple[int, int] | None = self._read_sched()  # the baseline
        if self._sched is not None and self._sched[0] >= 2_000_000:
            # Before anything is measured here: how long this thread has waited for a CPU
            # per unit of CPU so far (the same machine, the same neighbours).
            running, waiting = self._sched
            self.slowdown = max(self.slowdown, min(1.0 + waiting / running, 20.0))
        # And the machine's run queue: N runnable tasks per CPU share each CPU N ways.
        self.slowdown = max(self.slowdown, _crowding())
        # A new loop on the same machine starts from what the last one measured (loop
        # times are time.monotonic() on every asyncio loop of this process).
        previous = _latest[0] if _latest else None
        if previous is not None:
            self.auction_cpu_s = previous.auction_cpu_s
            self.finalize_cpu_s = previous.finalize_cpu_s
            self.slowdown = previous.slowdown
            self._lag_s, self._lag_at = previous._lag_s, previous._lag_at
        _latest[:] = [self]

    # ------------------------------------------------------------------ measuring

    @property
    def lag_s(self) -> float:
        """The recent maximum lag of the loop (s), decayed."""
        age = self.loop.time() - self._lag_at
        return float(self._lag_s * 0.5 ** (age / LAG_HALF_LIFE_S))

    def _observe_lag(self, lag: float) -> None:
        if lag >= self.lag_s:
            self._lag_s, self._lag_at = lag, self.loop.time()

    def _arm_probe(self) -> None:
        if self._probe is None:
            self._probe_due = self.loop.time() + PROBE_S
            self._probe = self.loop.call_at(self._probe_due, self._probed)

    def _probed(self) -> None:
        self._probe = None
        self._observe_lag(max(0.0, self.loop.time() - self._probe_due))
        self._contention()
        if self._in_flight() or self._running:
            self._arm_probe()

    def charge(self, cpu_s: float, wall_s: float, *, finalize: bool = False) -> None:
        """Record one synchronous step: ``cpu_s`` of thread CPU that took ``wall_s``."""
        if finalize:
            self.finalize_cpu_s += _WEIGHT * (cpu_s - self.finalize_cpu_s)
        if self._sched is None and cpu_s > 20e-6:  # no scheduler statistics: estimate
            ratio = min(max(wall_s / cpu_s, 1.0), 20.0)
            self.slowdown += _WEIGHT * (ratio - self.slowdown)

    def _contention(self) -> None:
        """Update ``slowdown`` from the scheduler: (time running + time waiting for a
        CPU) / time running, for this thread since the last reading (Linux schedstat).
        Another process on the same cores makes the loop wait for a CPU between and
        within its steps; CPU time alone would not show it."""
        if self._sched is None:
            return
        try:
            with open(self._sched_path, "rb") as stats:
                running, waiting = (int(v) for v in stats.read().split()[:2])
        except (OSError, ValueError):
            self._sched = None
            return
        ran, waited = running - self._sched[0], waiting - self._sched[1]
        if ran >= 1_000_000:  # 1 ms of CPU: enough to say something
            ratio = max(min(1.0 + waited / ran, 20.0), _crowding())
            self.slowdown = max(ratio, self.slowdown + 0.5 * (ratio - self.slowdown))
            self._sched = (running, waiting)

    def cost(self, cpu_s: float) -> None:
        """Record the whole CPU cost of one auction (all its steps)."""
        self.auction_cpu_s += _WEIGHT * (cpu_s - self.auction_cpu_s)

    # ------------------------------------------------------------------ deciding

    def _read_sched(self) -> tuple[int, int] | None:
        try:
            with open(self._sched_path, "rb") as stats:
                running, waiting = (int(v) for v in stats.read().split()[:2])
        except (OSError, ValueError):
            return None
        return running, waiting

    def _in_flight(self) -> bool:
        due, done = self._due, self._done
        while due and due[0][2] in done:
            done.discard(heapq.heappop(due)[2])
        return bool(due)

    def admit(self, deadline: float, due: float) -> int:
        """Admit an auction whose finalization may be due as late as ``due`` and must be
        over by ``deadline`` (loop times), or raise :class:`Overloaded`. Returns the token
        for :meth:`waiting` and :meth:`finished`."""
        self._admits += 1
        if self._admits < 64 or self._admits % 16 == 0:  # often while nothing is known
            self._contention()
        now = self.loop.time()
        s = self.slowdown
        # Waiting for a CPU (s > 1) also delays timers, by up to a scheduler slice
        # (~4 ms on Linux) each time: budget for it before the probe has measured it.
        lag = max(self.lag_s, (s - 1.0) * _SLICE_S)
        # Callbacks already queued on the loop run before any timer: each is at most
        # another call like this one (refused, if the loop is this busy).
        ready = getattr(self.loop, "_ready", ())
        queued = len(ready) * _REFUSAL_CPU_S * s
        opening = (self.auction_cpu_s - self.finalize_cpu_s) * s
        finalizing = self.finalize_cpu_s * s
        clock = now + lag + queued + opening  # when the loop is free again after this one
        # Every finalization, this one's included, earliest due first: the loop starts
        # one after its due time and after the previous one; each must end by its deadline.
        schedule = [entry for entry in self._due if entry[2] not in self._done]
        schedule.append((due, deadline, -1))
        schedule.sort()
        for when, until, token in schedule:
            if when + lag > clock and when > deadline:
                break  # the loop is idle before this one: later ones are unaffected
            # A timer fires ``lag`` late on this loop (recent maximum): budget for it.
            clock = max(clock, when + lag) + finalizing
            if clock > until:
                whose = "it" if token < 0 else "an auction in flight"
                self._refuse(f"{whose} would finish {1e3 * (clock - until):.1f} ms late")
        token = self._next_token
        self._next_token += 1
        self.admitted += 1
        self._running += 1
        self._arm_probe()
        return token

    def waiting(self, token: int, due: float, deadline: float) -> None:
        """The auction ``token`` now waits for its reveal window to run out: it will be
        finalized at ``due`` and must be done by ``deadline``. (An auction whose bidders
        have all revealed finishes early and never waits: it reserves no slot.)"""
        heapq.heappush(self._due, (due, deadline, token))
        self._arm_probe()

    def finished(self, token: int) -> None:
        """The auction admitted as ``token`` has ended (finalized, aborted or failed)."""
        self._done.add(token)
        self._running -= 1

    def _refuse(self, why: str) -> None:
        self.refused += 1
        retry = 0.001
        if self._in_flight():
            retry = max(retry, self._due[0][1] - self.loop.time())
        raise Overloaded(why, retry)


def _crowding() -> float:
    """Runnable tasks per CPU over the last minute (at least 1): the share of a CPU the
    loop can expect when other processes compete for the cores."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return min(max(load / (os.cpu_count() or 1), 1.0), 20.0)


_latest: list[Admission] = []  # the most recent Admission made (its estimates seed the next)
_ADMISSIONS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Admission] = (
    weakref.WeakKeyDictionary()
)


def admission_for(loop: asyncio.AbstractEventLoop) -> Admission:
    """The loop's :class:`Admission` (one per event loop, made on first use)."""
    state = _ADMISSIONS.get(loop)
    if state is None:
        state = _ADMISSIONS[loop] = Admission(loop)
    return state


def thread_cpu() -> float:
    """CPU seconds of the calling thread (the event loop's)."""
    return time.thread_time()


def ceil_s(seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header (at least 1)."""
    return max(1, math.ceil(seconds))
