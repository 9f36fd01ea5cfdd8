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

A promise cannot be taken back, so what is not yet measured on this loop is assumed
to be bad (a conservative start): until the probe has fired :data:`WARMUP_PROBES`
times the lag is taken as at least :data:`UNMEASURED_LAG_S`; each callback queued
on the loop (a burst of arrivals: every one is run before any timer) costs four times
the CPU measured from one refused call to the next (the whole cycle of one arrival, the
completion it leaves queued, and the garbage collection a burst sets off), times
``slowdown``, starting from a pessimistic
:data:`FIRST_QUEUED_CPU_S`; an auction reserves its finalization slot when it is
admitted (not when it starts waiting), and the probe keeps running for a second after
the last call so that refusals alone measure the loop. Clocks and meters are
injectable (``Admission(loop, sched=..., crowding=...)``, the loop's ``time()`` and
``call_at``) so that tests drive it on a fake clock.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final

from ..errors import AuctionTimeout

__all__ = [
    "FIRST_QUEUED_CPU_S",
    "LAG_HALF_LIFE_S",
    "PROBE_S",
    "UNMEASURED_LAG_S",
    "WARMUP_PROBES",
    "Admission",
    "Overloaded",
    "admission_for",
]

#: Interval of the lag probe while auctions are in flight (s).
PROBE_S: Final = 0.005
#: The recent lag maximum halves every this many seconds.
LAG_HALF_LIFE_S: Final = 0.25
#: Starting guesses (s of CPU) before anything is measured: one auction, one finalization.
_FIRST_AUCTION_CPU_S: Final = 400e-6
_FIRST_FINALIZE_CPU_S: Final = 60e-6
#: The least wall time one queued callback is assumed to cost the loop (s).
_REFUSAL_CPU_S: Final = 20e-6
#: Before anything is measured: the work of one queued callback (a refused arrival,
#: its exception and its caller's handling), s of CPU. Pessimistic on purpose.
FIRST_QUEUED_CPU_S: Final = 100e-6
#: Probe firings on this loop before its lag counts as measured.
WARMUP_PROBES: Final = 3
#: The lag assumed until then (s): a Linux scheduler slice (~4 ms, what a timer waits
#: when another process holds the CPU) plus epoll's whole millisecond. At 2 ms, 17 of
#: 104 auctions admitted with a 3 ms margin in a burst beside CPU-bound processes
#: finished late (bench_engine.py (3)).
UNMEASURED_LAG_S: Final = 0.005
#: What a queued arrival costs, per measured cycle: the cycle itself, the completion
#: (task done, its waiter woken) it queues behind it ahead of the timers, and the garbage
#: collections a burst sets off. At 2, bursts of 1,000 with 20 ms margins on an idle
#: 2-CPU machine admitted ~300 auctions and ~200 of them finished up to 50 ms late.
_QUEUED_FACTOR: Final = 4.0
#: Calls closer than this (s) are one burst: the CPU between them is one cycle.
#: CPU (s) a burst must have taken before its wall time per CPU second counts.
_BURST_CPU_S: Final = 100e-6
_BURST_GAP_S: Final = 0.05
#: The probe keeps running this long after the last admission call (s).
_PROBE_TAIL_S: Final = 1.0
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

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        cpu: Callable[[], float] | None = None,
        sched: Callable[[], tuple[int, int] | None] | None = None,
        crowding: Callable[[], float] | None = None,
    ) -> None:
        """``cpu``: CPU seconds of the loop's thread (``time.thread_time``); ``sched``:
        its (ns running, ns waiting for a CPU), None where unknown (Linux schedstat);
        ``crowding``: runnable tasks per CPU, at least 1 (the load average). Each is
        read from this machine when not given."""
        self.loop = loop
        self.auction_cpu_s = _FIRST_AUCTION_CPU_S
        self.finalize_cpu_s = _FIRST_FINALIZE_CPU_S
        self.queued_cpu_s = FIRST_QUEUED_CPU_S  # CPU s of one queued arrival's cycle
        self.slowdown = 1.0
        self.refused = 0
        self.admitted = 0
        self.probes = 0  # probe firings on this loop
        self._lag_s = 0.0
        self._lag_at = loop.time()
        # (due, deadline, token): finalizations of the auctions in flight, earliest first;
        # an entry is live while _slots[token] is its (due, deadline).
        self._due: list[tuple[float, float, int]] = []
        self._slots: dict[int, tuple[float, float]] = {}
        self._next_token = 0
        self._running = 0  # admitted and not finished
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due = 0.0
        self._last_call = loop.time()
        self._refused_call: float | None = None  # loop time of the last refused call
        self._refused_cpu = self._last_cpu = 0.0  # thread CPU at the last (refused) call
        self._busy = False  # the ready queue was not empty at the last call
        self._burst_wall, self._burst_cpu = 0.0, 0.0  # where the current burst began
        self._admits = 0
        real = cpu is None and sched is None and crowding is None
        self._cpu = thread_cpu if cpu is None else cpu
        self._crowding = _crowding if crowding is None else crowding
        if sched is None:
            path = f"/proc/self/task/{threading.get_native_id()}/schedstat"
            sched = functools.partial(_read_sched, path)
        self._read_sched = sched
        self._sched: tuple[int, int] | None = sched()  # the baseline
        if self._sched is not None and self._sched[0] >= 2_000_000:
            # Before anything is measured here: how long this thread has waited for a CPU
            # per unit of CPU so far (the same machine, the same neighbours).
            running, waiting = self._sched
            self.slowdown = max(self.slowdown, min(1.0 + waiting / running, 20.0))
        # And the machine's run queue: N runnable tasks per CPU share each CPU N ways.
        self.slowdown = max(self.slowdown, self._crowding())
        # A new loop on the same machine starts from what the last one measured (loop
        # times are time.monotonic() on every asyncio loop of this process): all of
        # the CPU costs (the code's), and the contention where it is the more cautious
        # guess: the machine may have got busier since.
        previous = _latest[0] if _latest and real else None
        if previous is not None:
            self.auction_cpu_s = previous.auction_cpu_s
            self.finalize_cpu_s = previous.finalize_cpu_s
            self.queued_cpu_s = previous.queued_cpu_s
            self.slowdown = max(self.slowdown, previous.slowdown)
            self._lag_s, self._lag_at = previous._lag_s, previous._lag_at
        if real:
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
        self.probes += 1
        self._observe_lag(max(0.0, self.loop.time() - self._probe_due))
        self._contention()
        if self._in_flight() or self._running or self.loop.time() - self._last_call < _PROBE_TAIL_S:
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
        reading = self._read_sched()
        if reading is None:
            self._sched = None
            return
        running, waiting = reading
        ran, waited = running - self._sched[0], waiting - self._sched[1]
        if ran >= 1_000_000:  # 1 ms of CPU: enough to say something
            ratio = max(min(1.0 + waited / ran, 20.0), self._crowding())
            self.slowdown = max(ratio, self.slowdown + 0.5 * (ratio - self.slowdown))
            self._sched = (running, waiting)

    def cost(self, cpu_s: float) -> None:
        """Record the whole CPU cost of one auction (all its steps)."""
        self.auction_cpu_s += _WEIGHT * (cpu_s - self.auction_cpu_s)

    # ------------------------------------------------------------------ deciding

    def _in_flight(self) -> bool:
        due, slots = self._due, self._slots
        while due and slots.get(due[0][2]) != due[0][:2]:
            heapq.heappop(due)  # finished, or moved by waiting()
        return bool(due)

    def admit(self, deadline: float, due: float) -> int:
        """Admit an auction whose finalization may be due as late as ``due`` and must be
        over by ``deadline`` (loop times), or raise :class:`Overloaded`. Returns the token
        for :meth:`waiting` and :meth:`finished`; the auction holds its finalization slot
        at ``due`` from now on."""
        self._admits += 1
        if self._admits < 64 or self._admits % 16 == 0:  # often while nothing is known
            self._contention()
        now = self.loop.time()
        cpu = self._cpu()
        if self._refused_call is not None and now - self._refused_call < _BURST_GAP_S:
            # From the last refused call to this one, in CPU of the loop's thread: what
            # one more queued arrival costs (the check, the refusal, its caller's
            # handling, the next task's start). The slices another process takes from
            # the loop are ``slowdown``'s part (measured by the scheduler), not this one.
            spent = cpu - self._refused_cpu
            self.queued_cpu_s += 0.2 * (min(spent, 2e-3) - self.queued_cpu_s)
        self._refused_call = None
        ready = getattr(self.loop, "_ready", ())
        if not (ready and self._busy):
            self._burst_wall, self._burst_cpu = now, cpu  # the loop may have idled: anew
        self._busy = bool(ready)
        self._last_call, self._last_cpu = now, cpu
        self._arm_probe()
        s = self.slowdown
        if cpu - self._burst_cpu >= _BURST_CPU_S:
            # A burst (the loop never idle since it began): wall time per CPU second in
            # it is the contention now, before the scheduler's statistics have caught up.
            s = max(s, min((now - self._burst_wall) / (cpu - self._burst_cpu), 20.0))
        # Waiting for a CPU (s > 1) also delays timers, by up to a scheduler slice
        # (~4 ms on Linux) each time: budget for it before the probe has measured it.
        lag = max(self.lag_s, (s - 1.0) * _SLICE_S)
        if self.probes < WARMUP_PROBES:
            lag = max(lag, UNMEASURED_LAG_S)
        # Callbacks already queued on the loop run before any timer: each is at most
        # another call like this one (refused, if the loop is this busy), and each such
        # call leaves its completion behind it on the queue, ahead of the timers too.
        queued = len(ready) * _QUEUED_FACTOR * max(self.queued_cpu_s, _REFUSAL_CPU_S) * s
        opening = (self.auction_cpu_s - self.finalize_cpu_s) * s
        finalizing = self.finalize_cpu_s * s
        clock = now + lag + queued + opening  # when the loop is free again after this one
        # Every finalization, this one's included, earliest due first: the loop starts
        # one after its due time and after the previous one; each must end by its deadline.
        slots = self._slots
        schedule = [entry for entry in self._due if slots.get(entry[2]) == entry[:2]]
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
        slots[token] = (due, deadline)
        heapq.heappush(self._due, (due, deadline, token))
        return token

    def waiting(self, token: int, due: float, deadline: float) -> None:
        """The auction ``token`` now waits for its reveal window to run out: it will be
        finalized at ``due`` and must be done by ``deadline`` (its slot moves there)."""
        if token not in self._slots or self._slots[token] == (due, deadline):
            return
        self._slots[token] = (due, deadline)
        heapq.heappush(self._due, (due, deadline, token))
        self._arm_probe()

    def finished(self, token: int) -> None:
        """The auction admitted as ``token`` has ended (finalized, aborted or failed)."""
        if self._slots.pop(token, None) is not None:
            self._running -= 1

    def _refuse(self, why: str) -> None:
        self.refused += 1
        retry = 0.001
        if self._in_flight():
            retry = max(retry, self._due[0][1] - self.loop.time())
        self._refused_call, self._refused_cpu = self._last_call, self._last_cpu
        raise Overloaded(why, retry)


def _read_sched(path: str) -> tuple[int, int] | None:
    """(ns running, ns waiting for a CPU) of a thread, from Linux's schedstat file."""
    try:
        with open(path, "rb") as stats:
            running, waiting = (int(v) for v in stats.read().split()[:2])
    except (OSError, ValueError):
        return None
    return running, waiting


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
