"""Group commit: many acks behind one durable transaction.

Every commit, reveal, opened and finished auction is handed to the :class:`GroupCommit`,
which a single writer task flushes to the :class:`~.store.Store` in batches: while one
transaction is being made durable, the next batch accumulates. A caller awaits its
records' durability before it acknowledges anything, so an ack never outruns the disk,
yet the cost of an fsync is shared by everyone who arrived during the previous one.

A writer that was idle (nothing came during its last transaction) waits a little for
the records right behind the first (``GATHER_GAP_S`` after each, ``GATHER_MAX_S`` in
all): the bidders' messages of an auction come as a wave over a few milliseconds, and
committing its first record alone cost a transaction and an fsync more per wave.

Records are written in submission order, so the store's event ids follow the order in
which the engine saw the messages (what a restart replays). A batch that fails is
retried one submission at a time, so one bad record fails only its own submitter.

Acks are batched too: :meth:`GroupCommit.submit_then` takes a callback instead of
returning a future, and the writer calls every callback of a transaction in the same
event-loop turn, right after the commit (a bidder message costs no future and no
callback hop; its ack frame leaves with the others of that turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .metrics import ServiceMetrics
from .store import Store, Write

__all__ = ["Durable", "GroupCommit", "GroupCommitClosed"]

_log = logging.getLogger(__name__)

#: An idle writer waits this long for more records after each one that comes, and
#: at most ``GATHER_MAX_S`` in all, before it commits (see ``GroupCommit._gather``;
#: uvloop's timers count whole milliseconds).
GATHER_GAP_S = 0.001
GATHER_MAX_S = 0.003

#: Called once a submission is durable (``None``) or has failed (the error).
Durable = Callable[[BaseException | None], None]


class GroupCommitClosed(RuntimeError):
    """The group commit was closed: nothing more can be made durable."""


@dataclass(frozen=True, slots=True)
class _Submission:
    records: Sequence[Write]
    done: asyncio.Future[None] | Durable


class GroupCommit:
    """The service's single writer: ``await group_commit.write(...)`` returns once durable."""

    def __init__(
        self,
        store: Store,
        metrics: ServiceMetrics | None = None,
        *,
        max_batch: int = 4096,
        gather_gap_s: float = GATHER_GAP_S,
        gather_max_s: float = GATHER_MAX_S,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.max_batch = max_batch
        #: After an idle writer gets a record: wait while more keep coming (gaps under
        #: ``gather_gap_s``), for at most ``gather_max_s``; 0 flushes at once.
        self.gather_gap_s = gather_gap_s
        self.gather_max_s = gather_max_s
        self._queue: asyncio.Queue[_Submission | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: What the writer waits on while it gathers a batch (see ``_gather``).
        self._gathering: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Start the writer task on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    def submit(self, *records: Write) -> asyncio.Future[None]:
        """Queue ``records`` (written together, in order); the future resolves once durable."""
        if self._closed:
            raise GroupCommitClosed("the group commit is closed")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Submission(records, done))
        return done

    def submit_then(self, record: Write, then: Durable) -> None:
        """Queue ``record``; ``then(None)`` once it is durable, ``then(error)`` if it
        failed, called by the writer in the transaction's own loop turn."""
        if self._closed:
            raise GroupCommitClosed("the group commit is closed")
        self._queue.put_nowait(_Submission((record,), then))

    async def write(self, *records: Write) -> None:
        """Write ``records`` and wait until they are durable (shielded from cancellation)."""
        await asyncio.shield(self.submit(*records))

    async def close(self) -> None:
        """Flush everything queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        if self._gathering is not None:
            _wake(self._gathering)
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            # Idle: nothing came during the last transaction (then it gathers a batch).
            idle = self._queue.empty()
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            stopping = self._take_queued(batch)
            if idle and not stopping and self.gather_max_s > 0:
                stopping = await self._gather(batch)
            await self._flush(batch)

    def _take_queued(self, batch: list[_Submission]) -> bool:
        """Move what is queued into ``batch`` (up to ``max_batch``); True on the stop mark."""
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    async def _gather(self, batch: list[_Submission]) -> bool:
        """Wait while records keep coming (see ``gather_gap_s``), adding them to ``batch``.

        Bidders' messages for one auction come as a wave spread over milliseconds (each
        bidder signs its own), and an idle writer used to commit the wave's first record
        alone: ~4.5 transactions per auction at 20 auctions/s, each ~0.6 ms of CPU and
        an fsync. An ack still waits for its own transaction to commit.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + self.gather_max_s
        while len(batch) < self.max_batch:
            before = len(batch)
            # A future of our own, not asyncio.sleep: close() cuts the wait short.
            waiter = self._gathering = loop.create_future()
            timer = loop.call_later(
                min(self.gather_gap_s, max(0.0, end - loop.time())), _wake, waiter
            )
            try:
                await waiter
            finally:
                timer.cancel()
                self._gathering = None
            if self._take_queued(batch):
                return True
            if len(batch) == before or loop.time() >= end:
                return False
        return False

    async def _flush(self, batch: list[_Submission]) -> None:
        records = [record for item in batch for record in item.records]
        started = time.perf_counter()
        try:
            await self.store.apply(records)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].done, exc)
                return
            # Isolate the bad submission: the others still deserve their acks.
            for item in batch:
                try:
                    await self.store.apply(item.records)
                except Exception as item_exc:
                    _settle(item.done, item_exc)
                else:
                    _settle(item.done, None)
            return
        if self.metrics is not None:
            self.metrics.store_flush.observe(time.perf_counter() - started)
            self.metrics.store_batch_size.observe(len(records))
        for item in batch:
            _settle(item.done, None)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _settle(done: asyncio.Future[None] | Durable, error: BaseException | None) -> None:
    if not isinstance(done, asyncio.Future):
        try:
            done(error)
        except Exception:  # one submitter's bug must not cost the others their acks
            _log.exception("a group-commit callback failed")
        return
    with contextlib.suppress(asyncio.InvalidStateError):
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
