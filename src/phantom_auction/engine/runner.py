"""Running an auction in-process on asyncio: announce, collect commits, collect reveals,
finalize, all before the caller's deadline.

A *bid source* is any object with two async methods (:class:`BidSource`): ``commit``
receives the :class:`AuctionAnnouncement` and returns a sealed (or full) bid or None;
``reveal`` is called when the collection window closes, only for sources whose commit
was accepted, and returns the full bid or None. (The simulator's strategies become bid
sources through :class:`phantom_auction.simulation.live.StrategyBidder`.)

The runner owns the clock (:mod:`.clock`; a :class:`~.clock.LoopClock` unless one is
injected): it maps the event loop's time to UTC datetimes and passes them to the sans-IO
:class:`Auction` as ``now=``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections.abc import Callable, Coroutine, Generator, Iterable
from datetime import datetime
from typing import Any, Final, Protocol, runtime_checkable

from ..config import AuctionConfig, load_config
from ..errors import InvalidBidParameters, PhantomAuctionError
from .admission import admission_for, thread_cpu
from .auction import Auction, close_collection, finalize_auction, reveal_bid, submit_bid
from .audit import Phase
from .bids import ImprovementBid, SealedBid, SettlementRequest
from .clock import Clock, LoopClock
from .nonces import NonceRegistry
from .result import AuctionAnnouncement, AuctionResult

__all__ = [
    "DEFAULT_FINALIZE_MARGIN_MS",
    "BidSource",
    "arun_auction",
    "run_auction",
]

_log = logging.getLogger(__name__)

#: Time (ms) kept free between the end of the reveal window and the deadline, for
#: clearing and answering; capped at a quarter of the time left (see :class:`Auction`).
DEFAULT_FINALIZE_MARGIN_MS: Final = 3.0


@runtime_checkable
class BidSource(Protocol):
    """Something that bids: commits when an auction is announced, reveals when asked."""

    async def commit(
        self, announcement: AuctionAnnouncement
    ) -> SealedBid | ImprovementBid | None:  # pragma: no cover - protocol
        """The sealed bid for this auction, or None to stay out."""
        ...

    async def reveal(
        self, announcement: AuctionAnnouncement
    ) -> ImprovementBid | None:  # pragma: no cover - protocol
        """The full bid behind the accepted commitment, or None to withhold it."""
        ...


if sys.version_info >= (3, 12):  # pragma: no cover - this project's machines run 3.11

    def _start_all(
        loop: asyncio.AbstractEventLoop, coros: list[Coroutine[Any, Any, Any]]
    ) -> list[asyncio.Task[Any] | tuple[Any, BaseException | None]]:
        """Each coroutine as an eager task: run at once up to its first suspension, as
        the current task; an answer given without suspending is returned as ``(value,
        error)`` and the task is dropped."""
        started: list[asyncio.Task[Any] | tuple[Any, BaseException | None]] = []
        for coro in coros:
            task = asyncio.Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
            if not task.done():
                started.append(task)
            elif task.cancelled():
                started.append((None, None))
            else:
                error = task.exception()
                started.append((None, error) if error is not None else (task.result(), None))
        return started

else:
    _enter_task = getattr(asyncio.tasks, "_enter_task", None)
    _leave_task = getattr(asyncio.tasks, "_leave_task", None)

    class _Resumed:
        """Awaiting it continues a coroutine that has already run up to its first
        suspension, where it yielded ``first`` (what ``yield from`` would do had it
        started the coroutine itself)."""

        __slots__ = ("_coro", "_first")

        def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
            self._coro, self._first = coro, first

        def __await__(self) -> Generator[Any, Any, Any]:
            coro, yielded = self._coro, self._first
            while True:
                try:
                    sent = yield yielded
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as error:  # cancellation included: pass it in
                    try:
                        yielded = coro.throw(error)
                    except StopIteration as stop:
                        return stop.value
                else:
                    try:
                        yielded = coro.send(sent)
                    except StopIteration as stop:
                        return stop.value

    async def _continue(coro: Coroutine[Any, Any, Any], first: Any) -> Any:
        return await _Resumed(coro, first)

    def _start_all(
        loop: asyncio.AbstractEventLoop, coros: list[Coroutine[Any, Any, Any]]
    ) -> list[asyncio.Task[Any] | tuple[Any, BaseException | None]]:
        """Run each coroutine at once up to its first suspension (Python 3.11 has no
        eager tasks): an answer given without suspending comes back as ``(value,
        error)`` and costs no task; one that suspends continues in its own task.

        Each runs in its own copy of the context, as a task would. No task is current
        during that first step (the runner's is set aside, so that nothing started there
        can cancel the runner); what needs a current task (``asyncio.timeout``, a
        ``TaskGroup``) must come after the coroutine's first ``await``.
        """
        runner = asyncio.current_task(loop)
        enter, leave = _enter_task, _leave_task
        if runner is None or enter is None or leave is None:  # pragma: no cover
            return _start_each(loop, coros)
        leave(loop, runner)
        try:
            return _start_each(loop, coros)
        finally:
            enter(loop, runner)

    def _start_each(
        loop: asyncio.AbstractEventLoop, coros: list[Coroutine[Any, Any, Any]]
    ) -> list[asyncio.Task[Any] | tuple[Any, BaseException | None]]:
        started: list[asyncio.Task[Any] | tuple[Any, BaseException | None]] = []
        for coro in coros:
            context = contextvars.copy_context()
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                started.append((stop.value, None))
            except asyncio.CancelledError:
                started.append((None, None))
            except Exception as error:
                started.append((None, error))
            else:
                started.append(loop.create_task(_continue(coro, yielded), context=context))
        return started


def _ask(
    loop: asyncio.AbstractEventLoop,
    sources: list[BidSource],
    step: str,
    announcement: AuctionAnnouncement,
    answer: Callable[[BidSource, Any, datetime], None],
    clock: Clock,
) -> list[tuple[BidSource, asyncio.Task[Any]]]:
    """Call every source's ``step`` method (``commit`` or ``reveal``) with the
    announcement, hand over the answers given at once, return the calls still running."""
    calls = [getattr(source, step)(announcement) for source in sources]
    return _take_answers(sources, _start_all(loop, calls), answer, clock, step)


def _take_answers(
    sources: list[BidSource],
    started: list[asyncio.Task[Any] | tuple[Any, BaseException | None]],
    answer: Callable[[BidSource, Any, datetime], None],
    clock: Clock,
    step: str,
) -> list[tuple[BidSource, asyncio.Task[Any]]]:
    """Hand each answer given without suspending that is not None to ``answer`` (all
    with one arrival time), log the failures; return the calls still running."""
    pending: list[tuple[BidSource, asyncio.Task[Any]]] = []
    now: datetime | None = None
    for source, outcome in zip(sources, started, strict=True):
        if isinstance(outcome, tuple):
            value, error = outcome
            if error is not None:
                _log.warning("bid source %r failed in %s: %r", source, step, error)
            elif value is not None:
                if now is None:
                    now = clock.now()
                answer(source, value, now)
        else:
            pending.append((source, outcome))
    return pending


async def _wait(
    loop: asyncio.AbstractEventLoop,
    pending: list[tuple[BidSource, asyncio.Task[Any]]],
    answer: Callable[[BidSource, Any, datetime], None],
    clock: Clock,
    step: str,
    end: float,
    finish_early: bool,
) -> None:
    """Hand each pending call's answer that is not None to ``answer`` as it comes, until
    ``end`` (loop time); with ``finish_early``, stop as soon as all have answered. Calls
    still running when the window ends are cancelled; one that raises is logged."""
    if not pending:
        if not finish_early and end > loop.time():
            await _sleep_until(loop, end)
        return
    # One waiter and one timer for the window, one callback per task that suspended.
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(pending)

    def close() -> None:
        if not waiter.done():
            waiter.set_result(None)

    def on_done(source: BidSource) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            nonlocal remaining
            value = _answer(task, source, step)
            if value is not None:
                answer(source, value, clock.now())
            remaining -= 1
            if remaining == 0 and finish_early:
                close()

        return done

    for source, task in pending:
        task.add_done_callback(on_done(source))
    try:
        if end > loop.time():
            timer = loop.call_at(end, close)
            try:
                await waiter
            finally:
                timer.cancel()
    finally:
        for _, task in pending:
            if not task.done():
                task.cancel()


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """Sleep until loop time ``when`` (one future, one timer at the absolute time)."""
    waiter: asyncio.Future[None] = loop.create_future()
    timer = loop.call_at(when, _wake, waiter)
    try:
        await waiter
    finally:
        timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _answer(task: asyncio.Task[Any], source: object, step: str) -> Any:
    """The task's result, or None if it was cancelled or raised (logged)."""
    if task.cancelled():
        return None
    error = task.exception()
    if error is not None:
        _log.warning("bid source %r failed in %s: %r", source, step, error)
        return None
    return task.result()


async def arun_auction(
    request: SettlementRequest,
    baseline_price: float,
    baseline_amount: float,
    deadline: datetime,
    *,
    config: AuctionConfig | None = None,
    bidders: Iterable[BidSource] = (),
    nonces: NonceRegistry | None = None,
    auction_id: str | None = None,
    phantom_seed: bytes | None = None,
    finish_early: bool = True,
    finalize_margin_ms: float = DEFAULT_FINALIZE_MARGIN_MS,
    strict: bool = False,
    admission: bool = False,
    clock: Clock | None = None,
) -> AuctionResult:
    """Run one auction on the current event loop and return its result before ``deadline``.

    Opens an :class:`Auction` (windows from config, shrunk if ``deadline`` is close;
    :class:`AuctionTimeout` if it is less than ``min_window_ms`` away), announces it to
    every bid source, submits each commit as it arrives, asks the accepted committers to
    reveal when the collection window closes, and finalizes when the reveal window ends,
    ``finalize_margin_ms`` before the deadline. With ``finish_early`` (default) the
    collection window closes as soon as every source has answered and the auction
    finalizes as soon as every accepted commitment is revealed. A bid source that has not
    answered by its window's end is cancelled; one that raises is logged and ignored.

    Each call to a bid source is started at once and runs until it first suspends, like
    an eager task: a source that answers without waiting (an in-process strategy) costs
    no task at all; one that waits continues in a task of its own. On Python 3.11, which
    has no eager tasks, no task is current during that first step, so a bid source's
    ``asyncio.timeout`` or ``TaskGroup`` belongs after its first ``await``. Answers
    given in the same step share one timestamp.

    **Admission control** (``admission=True``; off by default, see below): a deadline
    accepted is a promise, so an auction the loop cannot finish by its deadline without
    making an auction already running late is refused at once with
    :class:`~phantom_auction.engine.admission.Overloaded` (an :class:`AuctionTimeout`
    with ``retry_after_s``) before anything is announced; see
    :mod:`phantom_auction.engine.admission` for what is measured (CPU per auction, the
    loop's lag, time spent waiting for a CPU, the finalizations due). A bid source that
    blocks the loop defeats it. It is opt-in because on a machine where other processes
    hold the CPUs it refuses every auction with a few-ms ``finalize_margin_ms`` (no such
    margin can be promised there), and a lone ``run_auction`` should rather run late.

    ``clock``: where the times come from (default: a :class:`~.clock.LoopClock` on this
    loop, so one auction's times never jump).
    """
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop) if clock is None else clock
    gate = admission_for(loop) if admission else None
    token = -1
    if gate is not None:
        end = clock.loop_time(deadline)
        # The reveal window ends this much before the deadline (Auction's reserve rule).
        reserve_s = min(finalize_margin_ms / 1000.0, max(0.0, end - loop.time()) / 4)
        token = gate.admit(end, end - reserve_s)
    try:
        return await _run(
            loop, clock, gate, request, baseline_price, baseline_amount, deadline, config,
            bidders, nonces, auction_id, phantom_seed, finish_early, finalize_margin_ms, strict,
            token,
        )  # fmt: skip
    finally:
        if gate is not None:
            gate.finished(token)


async def _run(
    loop: asyncio.AbstractEventLoop,
    clock: Clock,
    gate: Any,
    request: SettlementRequest,
    baseline_price: float,
    baseline_amount: float,
    deadline: datetime,
    config: AuctionConfig | None,
    bidders: Iterable[BidSource],
    nonces: NonceRegistry | None,
    auction_id: str | None,
    phantom_seed: bytes | None,
    finish_early: bool,
    finalize_margin_ms: float,
    strict: bool,
    token: int,
) -> AuctionResult:
    """:func:`arun_auction` once admitted as ``token``; charges its CPU to ``gate`` (the
    loop's Admission)."""
    cpu_start, wall_start = thread_cpu(), loop.time()
    spent = 0.0  # CPU of this auction's synchronous steps so far (s)
    auction = Auction(
        request,
        baseline_price,
        baseline_amount,
        deadline,
        # The seed's default, global_config = load_config(): files and AUCTION_* variables.
        config=load_config() if config is None else config,
        auction_id=auction_id,
        nonces=nonces,
        now=clock.now(),
        phantom_seed=phantom_seed,
        reserve_ms=finalize_margin_ms,
    )
    announcement = auction.announcement
    sources = list(bidders)
    for source in sources:
        # Duck-typed (isinstance on a runtime Protocol costs ~10 us per source).
        if not (
            callable(getattr(source, "commit", None)) and callable(getattr(source, "reveal", None))
        ):
            raise InvalidBidParameters(
                "bidders", source, "each bid source needs async commit() and reveal() methods"
            )
    committed: list[BidSource] = []

    def on_commit(source: BidSource, bid: Any, now: datetime) -> None:
        try:
            if submit_bid(auction, bid, now=now):
                committed.append(source)
        except PhantomAuctionError as error:
            _log.warning("bid source %r sent an invalid commit: %s", source, error)

    def on_reveal(source: BidSource, bid: Any, now: datetime) -> None:
        try:
            reveal_bid(auction, bid, now=now)
        except PhantomAuctionError as error:
            _log.warning("bid source %r sent an invalid reveal: %s", source, error)

    # Each window: every call started at once (most answer there and then), then, only
    # if some call is still running or the window must run out, a wait for its end.
    pending = _ask(loop, sources, "commit", announcement, on_commit, clock)
    if gate is not None:  # the opening step: how much wall time its CPU took
        gate.charge(thread_cpu() - cpu_start, loop.time() - wall_start)
    if pending or not finish_early:
        end = clock.loop_time(auction.commit_deadline)
        spent += thread_cpu() - cpu_start
        await _wait(loop, pending, on_commit, clock, "commit", end, finish_early)
        cpu_start = thread_cpu()
    now = clock.now()
    if auction.phase is Phase.COLLECTING and now < auction.commit_deadline:
        close_collection(auction, now=now)
    reveal_end = clock.loop_time(auction.reveal_deadline)
    pending = _ask(loop, committed, "reveal", announcement, on_reveal, clock)
    if pending or not finish_early:
        spent += thread_cpu() - cpu_start
        await _wait(loop, pending, on_reveal, clock, "reveal", reveal_end, finish_early)
        cpu_start = thread_cpu()
    del pending  # nothing of the windows stays referenced while the reveal window runs out
    if auction.unrevealed:
        # Some commitment stays unrevealed: the reveal window must run out first.
        if reveal_end > loop.time():
            spent += thread_cpu() - cpu_start
            if gate is not None:
                gate.waiting(token, reveal_end, clock.loop_time(deadline))
            await _sleep_until(loop, reveal_end)
            cpu_start = thread_cpu()
        now = max(clock.now(), auction.reveal_deadline)  # timers may fire 1 ns early
    else:
        now = clock.now()
    finalize_cpu, finalize_wall = thread_cpu(), loop.time()
    result = finalize_auction(auction, now=now, strict=strict)
    if gate is not None:
        ended = thread_cpu()
        gate.charge(ended - finalize_cpu, loop.time() - finalize_wall, finalize=True)
        gate.cost(spent + ended - cpu_start)
    return result


def run_auction(
    request: SettlementRequest,
    baseline_price: float,
    baseline_amount: float,
    deadline: datetime,
    *,
    config: AuctionConfig | None = None,
    bidders: Iterable[BidSource] = (),
    nonces: NonceRegistry | None = None,
    auction_id: str | None = None,
    phantom_seed: bytes | None = None,
    finish_early: bool = True,
    finalize_margin_ms: float = DEFAULT_FINALIZE_MARGIN_MS,
    strict: bool = False,
) -> AuctionResult:
    """The seed's ``run_auction``: :func:`arun_auction` on a fresh event loop.

    Call it from synchronous code; inside a running event loop ``await arun_auction``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "run_auction() cannot run inside a running event loop; "
            "use `await arun_auction(...)` there"
        )
    return asyncio.run(
        arun_auction(
            request,
            baseline_price,
            baseline_amount,
            deadline,
            config=config,
            bidders=bidders,
            nonces=nonces,
            auction_id=auction_id,
            phantom_seed=phantom_seed,
            finish_early=finish_early,
            finalize_margin_ms=finalize_margin_ms,
            strict=strict,
        )
    )
