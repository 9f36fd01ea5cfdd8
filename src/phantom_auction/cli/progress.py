"""The Monte Carlo progress bar of the command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Auctions per second (rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


class MonteCarloProgress:
    """``progress(done, total)`` callback that shows a bar once work has run over a second.

    Short runs stay quiet; long ones get a bar with count, rate (auctions/s), elapsed
    time and ETA.
    """

    def __init__(
        self, console: Console, description: str, *, delay_s: float = 1.0, total: int = 0
    ) -> None:
        self._console = console
        self._description = description
        self._delay_s = delay_s
        self._start = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None
        self.done = 0
        #: Auctions planned (known before the first chunk ends, for "N of M" on Ctrl-C).
        self.total = total

    def __call__(self, done: int, total: int) -> None:
        self.done, self.total = int(done), int(total)
        if self._progress is None:
            if time.monotonic() - self._start < self._delay_s or done >= total:
                return
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(bar_width=16),
                MofNCompleteColumn(),
                RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=total)
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def running(self) -> Iterator[MonteCarloProgress]:
        self._start = time.monotonic()
        try:
            yield self
        finally:
            self.close()
