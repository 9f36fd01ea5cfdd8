"""Running an auction in-process on asyncio: announce, collect commits, collect reveals,
finalize, all before the caller's deadline.

A *bid source* is any object with two async methods (:class:`BidSource`): ``commit``
receives the :class:`AuctionAnnouncement` and returns a sealed (or full) bid or None;
``reveal`` is called when the collection window closes, only for sources whose commit
was accepted, and returns the full bid or None. :class:`StrategyBidder` turns any
simulator strategy (an object with ``generate_bid(baseline_price, baseline_quantity,
market, rng)``) into one.

The runner owns the clock: it maps the event loop's monotonic time to UTC datetimes and
passes them to the sans-IO :class:`Auction` as ``now=``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np

from ..config import AuctionConfig
from ..errors import InvalidBidParameters, PhantomAuctionError
from .auction import Auction, close_collection, finalize_auction, reveal_bid, submit_bid
from .audit import Phase
from .bids import ImprovementBid, SealedBid, SettlementRequest, make_bid
from .nonces import NonceRegistry
from .result import AuctionAnnouncement, AuctionResult

__all__ = [
    "DEFAULT_FINALIZE_MARGIN_MS",
    "BidSource",
    "StrategyBidder",
    "arun_auction",
    "run_auction",
]

_log = logging.getLogger(__name__)

#: Time (ms) kept free between the end of the reveal window and the deadline, for
#: clearing and answering; capped at a quarter of the time left (see :class:`Auction`).
DEFAULT_FINALIZE_MARGIN_MS: Final = 3.0
_MAX_PENDING: Final = 4096


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


class _LoopClock:
    """UTC datetimes read from the event loop's monotonic clock (never jumps)."""

    __slots__ = ("_loop", "_origin", "_t0")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._t0 = loop.time()
        self._origin = datetime.now(UTC)

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=self._loop.time() - self._t0)

    def loop_time(self, when: datetime) -> float:
        return self._t0 + (when - self._origin).total_seconds()


async def _window(
    loop: asyncio.AbstractEventLoop,
    calls: list[Coroutine[Any, Any, Any]],
    on_done: list[Callable[[asyncio.Task[Any]], None]],
    end: float,
    finish_early: bool,
) -> None:
    """Run ``calls`` as tasks until ``end`` (loop time); with ``finish_early``, stop as
    soon as all have answered. Unanswered calls are cancelled when the window ends."""
    waiter: asyncio.Future[None] = loop.create_future()
    remaining = len(calls)

    def close(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    def count_down(_: object) -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0 and finish_early:
            close()

    # One waiter and one timer per window: lighter than asyncio.wait, which registers
    # and unregisters a callback on every task.
    tasks = []
    for call, callback in zip(calls, on_done, strict=True):
        task = loop.create_task(call)
        task.add_done_callback(callback)  # submits the answer, before count_down
        task.add_done_callback(count_down)
        tasks.append(task)
    try:
        if (tasks or not finish_early) and end > loop.time():
            timer = loop.call_at(end, close)
            try:
                await waiter
            finally:
                timer.cancel()
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()


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

    The result is on time as long as the event loop keeps up: no bid source blocks it,
    and the auctions it runs together need less CPU than their windows last (one auction
    costs the loop ~0.1-0.4 ms; ``benchmarks/bench_engine.py`` measures how many fit).
    A saturated loop wakes every auction late; limit concurrency upstream.
    """
    loop = asyncio.get_running_loop()
    clock = _LoopClock(loop)
    auction = Auction(
        request,
        baseline_price,
        baseline_amount,
        deadline,
        config=config,
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

    def on_commit(source: BidSource) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            bid = _answer(task, source, "commit")
            if bid is None:
                return
            try:
                if submit_bid(auction, bid, now=clock.now()):
                    committed.append(source)
            except PhantomAuctionError as error:
                _log.warning("bid source %r sent an invalid commit: %s", source, error)

        return done

    def on_reveal(source: BidSource) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            bid = _answer(task, source, "reveal")
            if bid is None:
                return
            try:
                reveal_bid(auction, bid, now=clock.now())
            except PhantomAuctionError as error:
                _log.warning("bid source %r sent an invalid reveal: %s", source, error)

        return done

    await _window(
        loop,
        [source.commit(announcement) for source in sources],
        [on_commit(source) for source in sources],
        clock.loop_time(auction.commit_deadline),
        finish_early,
    )
    now = clock.now()
    if auction.phase is Phase.COLLECTING and now < auction.commit_deadline:
        close_collection(auction, now=now)
    reveal_end = clock.loop_time(auction.reveal_deadline)
    await _window(
        loop,
        [source.reveal(announcement) for source in committed],
        [on_reveal(source) for source in committed],
        reveal_end,
        finish_early,
    )
    if auction.unrevealed:
        # Some commitment stays unrevealed: the reveal window must run out first.
        delay = reveal_end - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        now = max(clock.now(), auction.reveal_deadline)  # timers may fire 1 ns early
    else:
        now = clock.now()
    return finalize_auction(auction, now=now, strict=strict)


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


def _default_market() -> Any:
    """The simulator's default ``MarketConditions()`` if the simulator provides one."""
    try:
        module = importlib.import_module("phantom_auction.simulation")
    except ImportError:
        return None
    market_type = getattr(module, "MarketConditions", None)
    return None if market_type is None else market_type()


class StrategyBidder:
    """A bid source driven by a simulator strategy (duck-typed, seed interface).

    On each announcement it calls ``strategy.generate_bid(baseline_price, amount, market,
    rng)``, which returns None (stay out) or an object with ``price`` (B per A),
    ``quantity`` (token A units), ``timestamp`` (ms after the auction opened at which the
    bid is sent) and ``priority_fee`` (token units). With ``honour_timing`` the commit is
    sent at that time (so a bid timed after the collection window arrives late). The bid
    is sealed with a fresh salt and the next nonce (``first_nonce``, by default the
    current time in ns so that nonces keep increasing across restarts), kept, and
    revealed when asked.

    ``market`` defaults to the simulator's ``MarketConditions()`` when it exists, else
    None; ``rng`` to a fresh ``numpy.random.default_rng()``.
    """

    def __init__(
        self,
        strategy: Any,
        bidder_id: str,
        market: Any = None,
        rng: np.random.Generator | None = None,
        *,
        first_nonce: int | None = None,
        honour_timing: bool = True,
    ) -> None:
        if not callable(getattr(strategy, "generate_bid", None)):
            raise InvalidBidParameters(
                "strategy",
                strategy,
                "needs a generate_bid(baseline_price, baseline_quantity, market, rng) method",
            )
        if not isinstance(bidder_id, str) or not bidder_id:
            raise InvalidBidParameters("bidder_id", bidder_id, "must be a non-empty string")
        self.strategy = strategy
        self.bidder_id = bidder_id
        self.market = _default_market() if market is None else market
        self.rng = np.random.default_rng() if rng is None else rng
        self.honour_timing = honour_timing
        self._nonce = time.time_ns() if first_nonce is None else first_nonce
        self._pending: dict[str, ImprovementBid] = {}

    def __repr__(self) -> str:
        return f"StrategyBidder({self.bidder_id!r}, {type(self.strategy).__name__})"

    async def commit(self, announcement: AuctionAnnouncement) -> SealedBid | None:
        """Generate, time, seal and send a bid for ``announcement`` (None: stays out)."""
        proposal = self.strategy.generate_bid(
            announcement.baseline_price, announcement.amount, self.market, self.rng
        )
        if proposal is None:
            return None
        if self.honour_timing:
            send_at = announcement.opened_at + timedelta(milliseconds=float(proposal.timestamp))
            delay = (send_at - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
        nonce = self._nonce  # taken at send time: commits leave in nonce order
        self._nonce += 1
        bid = make_bid(
            announcement.auction_id,
            self.bidder_id,
            announcement.token_pair,
            float(proposal.price),
            float(proposal.quantity),
            float(proposal.priority_fee),
            nonce,
        )
        self._pending[announcement.auction_id] = bid
        if len(self._pending) > _MAX_PENDING:  # bids never asked for (commit refused, ...)
            del self._pending[next(iter(self._pending))]
        return bid.sealed()

    async def reveal(self, announcement: AuctionAnnouncement) -> ImprovementBid | None:
        """The bid committed to in ``announcement``'s auction (None if there was none)."""
        return self._pending.pop(announcement.auction_id, None)
