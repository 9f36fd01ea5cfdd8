"""Progress of a Monte Carlo run: ``progress=True`` (a rich bar), a tqdm-like object, or
a ``callback(done_auctions, total)``.

The count moves within a chunk (:mod:`.parallel`: every ``PROGRESS_ROWS`` auctions or
``PROGRESS_INTERVAL_S`` seconds of work, in this process or in worker processes; on a
Dask cluster every ``PROGRESS_INTERVAL_S`` seconds too); the rich bar redraws its
elapsed time and rate four times a second in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import InvalidBidParameters

__all__ = ["progress_callback"]

ProgressCallback = Callable[[int, int], None]


@contextmanager
def progress_callback(progress: Any, description: str = "Monte Carlo") -> Iterator[Any]:
    """The ``progress(done, total)`` callback for ``progress`` (None for no progress)."""
    if progress is None or progress is False:
        yield None
    elif progress is True:
        with _rich_bar(description) as callback:
            yield callback
    elif callable(progress):
        yield progress
    elif callable(getattr(progress, "update", None)):
        yield _TqdmLike(progress)
    else:
        raise InvalidBidParameters(
            "progress",
            progress,
            "give True (a rich bar), a tqdm-like object (with update(n)) or a "
            "callable(done_auctions, total)",
        )


class _TqdmLike:
    """Feeds a tqdm-like bar: sets its ``total`` once, then ``update(new auctions)``."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if getattr(self.bar, "total", None) in (None, 0):
            self.bar.total = total
        self.bar.update(done - self.done)
        self.done = done


@contextmanager
def _rich_bar(description: str) -> Iterator[ProgressCallback]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        refresh_per_second=4,
    )
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update
