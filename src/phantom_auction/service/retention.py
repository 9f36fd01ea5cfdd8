"""``service.retention_days``: the server prunes its own store.

What ``phantom-auction auctions prune`` does, from inside ``serve``: every minute (more
often for a retention of under four minutes, as tests use) the auctions that ended
longer ago than the retention are removed with their bid events, at the prune's own
pace (short transactions, each followed by a pause), each bidder's highest used nonce
kept (:meth:`.store.Store.prune`). Under ``serve --workers N`` every process runs it; the
store lets one batch run at a time, so the others find nothing left to remove.

A prune that fails (the database away, say) is logged and tried again at the next
turn: retention never stops the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..engine.clock import Clock, from_us, to_us
from .metrics import ServiceMetrics
from .store import Store

__all__ = ["Retention", "check_every_s"]

_log = logging.getLogger(__name__)

_DAY_US = 86_400 * 1_000_000


def check_every_s(retention_days: float) -> float:
    """Seconds between two prunes: a minute, or a quarter of a short retention (1 s at
    the least), so an auction stays at most that much past its retention."""
    return min(60.0, max(1.0, retention_days * 86_400 / 4))


class Retention:
    """The prune loop of one server process (started and stopped with the app)."""

    def __init__(
        self, store: Store, retention_days: float, clock: Clock, metrics: ServiceMetrics
    ) -> None:
        self.store = store
        self.retention_us = round(retention_days * _DAY_US)
        self.every_s = check_every_s(retention_days)
        self.clock = clock
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the loop (a batch in flight is rolled back: it is retried next time)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def prune_once(self) -> int:
        """Remove what has passed the retention now; the number of auctions removed."""
        cutoff = to_us(self.clock.now()) - self.retention_us
        pruned = await self.store.prune(cutoff)
        if pruned.auctions:
            self.metrics.pruned_auctions.inc(pruned.auctions)
            _log.info(
                "retention: pruned %d auction(s) and %d bid event(s) ended before %s",
                pruned.auctions,
                pruned.events,
                from_us(cutoff).isoformat(timespec="seconds"),
            )
        return pruned.auctions

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.prune_once()
            except Exception:  # the next turn tries again; the service goes on
                _log.exception("retention: the prune failed")
