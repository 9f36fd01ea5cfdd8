"""Monte Carlo runs and sweeps on a Dask cluster, bit-identical to local runs.

One concept past 600 lines: the cluster's side of a run (plan, check the workers'
code, submit, collect in chunk order, cancel, the scheduler's address, start-up and
loss); splitting submission from collection would spread one task life cycle over two
modules.

A cluster runs exactly the chunks a local run plans (:func:`~.parallel.plan_chunks`):
each :class:`~.parallel.ChunkTask` becomes one Dask task calling the module-level
:func:`~.parallel.simulate_chunk` (columns) or :func:`~.parallel.summarize_chunk` (a
:class:`~.streaming.StreamingSummary`, for summary-only runs) on
``(spec, chunk_index, n_auctions, seed_seq)``. The client merges the outputs in chunk
order with the same code a local run uses, so the same seed gives the same numbers to
the last bit for ``workers=1``, ``workers=2`` or any cluster, whichever worker ran a
chunk, and also when a worker dies and Dask reruns its chunks elsewhere.

What crosses the network, per chunk: in, the pickled :class:`~.parallel.SimulationSpec`
(about 2.5 kB for the default config), the chunk index, its auction count and its
``SeedSequence``; out, the chunk's columns (225 bytes per auction for the default
config, 15 MB for a 65,536-auction chunk) or, for a summary-only run, its partial
aggregates (about 0.7 MB per chunk whatever its size). Summaries stay on the workers
until the client folds them in, in chunk order, so the client holds at most the running
summary plus one chunk's; rows are fetched as chunks finish, since they are the result.

Progress: with a ``progress`` callback, each chunk's task tells the client, through
Dask's event topics (``Worker.log_event`` / ``Client.subscribe_topic``), how many of its
auctions are done, every :data:`~.parallel.PROGRESS_INTERVAL_S` seconds or
:data:`~.parallel.PROGRESS_ROWS` auctions; the chunk's end is counted when its task
finishes, so the callback is also called once per finished chunk, and a chunk rerun
after a worker's loss is not counted twice.

A run that :func:`~.parallel.carries_learners` (``enable_learning`` and a learning
strategy) is the exception: its bidders carry what they learn from one auction to the
next, so its chunks depend on one another and cannot be split over workers without
changing the numbers. :func:`run_monte_carlo_on_cluster` and :func:`sweep_on_cluster`
run such a run (grid point) in this process, with :func:`~.parallel.run_monte_carlo`,
as a local run does, and log :data:`~.parallel.LEARNING_RUNS_LOCALLY` as a warning: the
numbers are still a local run's.

A scheduler that does not complete Dask's handshake within ``timeout_s`` (stopped, or
another service on its port) is refused by :func:`open_client` naming its address, and
one lost mid-run raises :class:`SchedulerLost`, naming it too: Dask alone would wait
for ever, or raise its own errors under pages of traceback. Workers that loaded other
phantom-auction source than the client (:data:`~.parallel.CODE_FINGERPRINT`) are
refused before a run, by name (:class:`WorkersRunOtherCode`).

Dask is the optional ``distributed`` extra (``pip install 'phantom-auction[distributed]'``);
it is imported only when a function here is called.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .._extras import require
from ..errors import FieldError, InvalidBidParameters
from .kernels import ChunkColumns
from .parallel import (
    CODE_FINGERPRINT,
    LEARNING_RUNS_LOCALLY,
    PROGRESS_INTERVAL_S,
    STREAMING_THRESHOLD,
    ChunkTask,
    Engine,
    ProgressCallback,
    _Batched,
    _first_rows,
    _rows_of,
    carries_learners,
    check_engine,
    code_fingerprint,
    plan_chunks,
    run_monte_carlo,
    simulate_chunk,
    simulate_chunk_objects,
    summarize_chunk,
)
from .results import MonteCarloResults
from .simulator import PhantomSimulator, check_simulator
from .streaming import StreamingSummary

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = [
    "SCHEDULER_PATTERN",
    "ChunkKilledWorkers",
    "SchedulerLost",
    "WorkersRunOtherCode",
    "open_client",
    "parse_cluster",
    "parse_scheduler",
    "run_monte_carlo_on_cluster",
    "sweep_on_cluster",
]

_log = logging.getLogger(__name__)

#: ``tcp://HOST:PORT``: the address ``dask scheduler`` prints at start-up.
SCHEDULER_PATTERN = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d+)")
_CLUSTER_PATTERN = re.compile(r"local:(?P<n>\d+)")

#: Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off
#: glibc's adaptive mmap threshold: every chunk-sized numpy temporary is then mapped and
#: unmapped afresh, and a chunk costs ~60 % more CPU (page faults). ``None`` unsets it.
_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
#: Dask's reason for the futures it cancels when it loses the scheduler.
_LOST = "scheduler-connection-lost"
_NOT_A_SCHEDULER = "what answered there is not a Dask scheduler ({} on Dask's handshake)"


def _distributed() -> ModuleType:
    """The ``distributed`` package, or :class:`~phantom_auction._extras.MissingExtra`."""
    return require("distributed", "distributed")


class SchedulerLost(FieldError, ConnectionError):
    """The Dask scheduler went away mid-run (killed, restarted, its machine gone): the
    run's tasks went with it. Names its address (field ``scheduler``)."""


class ChunkKilledWorkers(FieldError, RuntimeError):
    """Every worker that ran one chunk died running it (Dask's ``KilledWorker``, after
    ``distributed.scheduler.allowed-failures`` reruns): most often out of memory, which
    a smaller ``chunk_size`` lowers. Names ``chunk_size`` (field) and its value."""


class WorkersRunOtherCode(FieldError, RuntimeError):
    """Workers whose phantom-auction source is not this client's (started before a code
    change, or another version installed): their chunks would not be this code's run.
    Names them (field ``workers``)."""


# -- connecting ------------------------------------------------------------------------


def parse_scheduler(address: str) -> str:
    """Check a scheduler address ``tcp://HOST:PORT`` (port 1-65535) and return it.

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` (field ``scheduler``).
    """
    text = address.strip()
    match = SCHEDULER_PATTERN.fullmatch(text)
    if match is None:
        raise InvalidBidParameters("scheduler", address, "expected tcp://HOST:PORT")
    if not 1 <= int(match["port"]) <= 65535:
        raise InvalidBidParameters("scheduler", address, "the port must be in 1-65535")
    return text


def parse_cluster(spec: str) -> int:
    """The number of worker processes N in ``local:N`` (N >= 1).

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` (field ``cluster``).
    """
    match = _CLUSTER_PATTERN.fullmatch(spec.strip())
    if match is None:
        raise InvalidBidParameters("cluster", spec, "expected local:N (N worker processes)")
    n = int(match["n"])
    if n < 1:
        raise InvalidBidParameters("cluster", spec, "N must be >= 1")
    return n


@contextmanager
def open_client(
    scheduler: str | None = None,
    cluster: str | None = None,
    *,
    timeout_s: float = 30.0,
) -> Iterator[Client]:
    """A Dask client for exactly one of ``scheduler`` or ``cluster``, closed afterwards.

    ``scheduler="tcp://HOST:PORT"`` connects to a running cluster and waits up to
    ``timeout_s`` seconds for it to answer (Dask's handshake included) and up to
    ``timeout_s`` more for it to have at least one worker;
    ``cluster="local:N"`` starts a ``LocalCluster`` of N single-threaded worker
    processes on 127.0.0.1 (no dashboard) and shuts it down on exit. Raises
    :class:`~phantom_auction.errors.InvalidBidParameters` naming ``scheduler`` or
    ``cluster`` for a malformed value, a scheduler that does not answer or a peer
    that is not a Dask scheduler, and
    :class:`~phantom_auction._extras.MissingExtra` without the ``distributed`` extra.
    """
    if (scheduler is None) == (cluster is None):
        raise InvalidBidParameters(
            "scheduler/cluster", (scheduler, cluster), "give exactly one of the two"
        )
    if scheduler is not None:
        address = parse_scheduler(scheduler)
        dd = _distributed()
        try:
            _handshake(dd, address, timeout_s)
            client = dd.Client(address, timeout=timeout_s)
        except dd.comm.CommClosedError as exc:
            # Dask retries a refused connection until the timeout: this one was accepted,
            # then closed on the handshake.
            raise InvalidBidParameters(
                "scheduler", scheduler, _NOT_A_SCHEDULER.format("it closed the connection")
            ) from exc
        except (OSError, TimeoutError) as exc:
            raise InvalidBidParameters(
                "scheduler", scheduler, f"no Dask scheduler answered within {timeout_s:g} s"
            ) from exc
        except Exception as exc:
            # Another service on that port (the dashboard's 8787, a web server): Dask
            # reads its reply as a message and fails on it (MemoryError, ValueError...).
            raise InvalidBidParameters(
                "scheduler", scheduler, _NOT_A_SCHEDULER.format(type(exc).__name__)
            ) from exc
        with _lost_scheduler_quiet():
            try:
                try:
                    client.wait_for_workers(1, timeout=timeout_s)
                except TimeoutError as exc:
                    raise InvalidBidParameters(
                        "scheduler",
                        scheduler,
                        f"the scheduler has had no worker for {timeout_s:g} s",
                    ) from exc
                yield client
            finally:
                client.close()
        return
    assert cluster is not None
    n_workers = parse_cluster(cluster)
    dd = _distributed()
    dask_config = require("dask.config", "distributed")
    with _environment_restored():
        # One thread per worker process: the chunks are numpy-bound, often under the GIL.
        with dask_config.set({_TRIM_KEY: None}):
            local = dd.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # The scheduler's HTTP endpoints (health, metrics) would otherwise try
                # port 8787 and warn when another cluster has it.
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
        with local, dd.Client(local) as client:
            yield client


def _handshake(dd: ModuleType, address: str, timeout_s: float) -> None:
    """Open and close one Dask connection to ``address``, all of it within ``timeout_s``.

    ``Client(address, timeout=...)`` bounds only the TCP connect, not the handshake
    after it: a peer that accepts and never answers (a stopped scheduler, a tunnel to
    nowhere) would hang it for ever. Its own event loop, in a thread of its own, so
    that it also works from a notebook, whose loop is already running.
    """

    failed: list[BaseException] = []

    async def shake() -> None:
        comm = await asyncio.wait_for(dd.comm.connect(address, timeout=timeout_s), timeout_s)
        comm.abort()

    def run() -> None:
        try:
            asyncio.run(shake())
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    # A daemon: Ctrl-C in join() must not wait for it, nor must the interpreter's exit.
    thread = threading.Thread(target=run, name="phantom-auction-handshake", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


class _LostSchedulerNoise(logging.Filter):
    """Dask's tracebacks of a lost scheduler, which :class:`SchedulerLost` says in a line.

    Its batched stream logs the closed connection at INFO with a traceback, and closing
    the client then cancels its attempt to reconnect, which it logs as an ERROR with two
    pages of traceback (a ``CancelledError``). Other records pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if record.name == "distributed.batched":
            return error is None or record.levelno > logging.INFO
        return not isinstance(error, asyncio.CancelledError)


@contextmanager
def _lost_scheduler_quiet() -> Iterator[None]:
    """:class:`_LostSchedulerNoise` on Dask's client-side loggers, while in the block."""
    loggers = [logging.getLogger(n) for n in ("distributed.batched", "distributed.client")]
    quiet = _LostSchedulerNoise()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


@contextmanager
def _environment_restored() -> Iterator[None]:
    """Undo what a LocalCluster's nannies write into this process's ``os.environ``.

    They set their workers' variables (``OMP_NUM_THREADS=1``, ``PYTHONHASHSEED``, ...)
    here before each spawn; left behind, they would reach every later subprocess.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


# -- running ---------------------------------------------------------------------------


def _chunk_function(summarize: bool, engine: Engine) -> Callable[..., Any]:
    if engine == "object":
        return simulate_chunk_objects
    return summarize_chunk if summarize else simulate_chunk


def _result(future: Future[Any]) -> Any:
    """A finished chunk's output, fetched; a lost scheduler raises :class:`SchedulerLost`.

    Without it the user got Dask's ``CommClosedError`` (the fetch's connection reset)
    or ``FutureCancelledError`` (Dask cancels every future when it loses the scheduler)
    under a page of asyncio traceback, and no word of which scheduler. A fetch that
    takes ``_SILENCE_S`` asks the scheduler whether it is still there (the fetch goes
    through it; a stopped one would hold it for ever), and goes on waiting if it is.
    """
    try:
        while True:
            try:
                return future.result(timeout=_SILENCE_S)
            except TimeoutError:
                if future.status == "error":
                    raise  # the chunk's own TimeoutError
                _check_answering(future.client)
    except (OSError, CancelledError) as exc:
        if future.status == "error" or isinstance(exc, SchedulerLost):
            raise  # the chunk's own exception (a rerun of it failed), or said already
        if isinstance(exc, CancelledError) and getattr(exc, "reason", None) != _LOST:
            raise  # cancelled by someone (client.cancel, client.restart), not lost
        raise SchedulerLost(
            "scheduler",
            str(future.client.scheduler.address),
            f"lost the connection mid-run ({type(exc).__name__}); the run's tasks went "
            "with it: run it again",
        ) from exc


@dataclass(slots=True)
class _PointRun:
    """One Monte Carlo run (a sweep's grid point) whose chunks run on the cluster."""

    tasks: list[ChunkTask]
    summarize: bool
    futures: dict[int, Future[Any]] = field(default_factory=dict)
    finished: set[int] = field(default_factory=set)
    #: The run's rows, each chunk's written in as it arrives (allocated with the first
    #: one's names and dtypes): the client holds the rows once, not the chunks and
    #: their join as well.
    columns: ChunkColumns | None = None
    summary: StreamingSummary | None = None
    merged: int = 0  # summaries folded in so far, in chunk order
    started: float = 0.0

    @property
    def complete(self) -> bool:
        return len(self.finished) == len(self.tasks)

    def take(self, chunk: int) -> None:
        """Record chunk ``chunk`` as finished and fetch what can be merged in order."""
        self.finished.add(chunk)
        if not self.summarize:
            self._place(chunk, _result(self.futures.pop(chunk)))
            return
        # Summaries are folded left to right, as a local run does, so the float moments
        # are bit-identical; later chunks wait on their workers, not on the client.
        while self.merged in self.finished:
            part = _result(self.futures.pop(self.merged))
            self.summary = part if self.summary is None else self.summary.merge(part)
            self.merged += 1

    def _place(self, chunk: int, part: ChunkColumns) -> None:
        if self.columns is None:
            total = sum(t.n_auctions for t in self.tasks)
            self.columns = {name: np.empty(total, dtype=c.dtype) for name, c in part.items()}
        task = self.tasks[chunk]
        for name, rows in _rows_of(self.columns, _first_rows(self.tasks)[chunk], task).items():
            rows[:] = part[name]

    def results(self) -> MonteCarloResults:
        elapsed = time.perf_counter() - self.started
        if self.summarize:
            return MonteCarloResults(self.tasks, None, self.summary, elapsed_s=elapsed)
        return MonteCarloResults(self.tasks, self.columns, None, elapsed_s=elapsed)


def _telling_progress(
    function: Callable[..., Any],
    topic: str,
    p: int,
    spec: Any,
    chunk_index: int,
    n_auctions: int,
    seed_seq: Any,
) -> Any:
    """``function`` (a chunk) on a worker, logging ``[p, chunk, auctions done]`` under
    ``topic`` as it goes. The last auctions are not logged: the task's end counts them."""
    worker = _distributed().get_worker()
    done = 0

    def tell(n: int) -> None:
        nonlocal done
        done += n
        if done < n_auctions:
            worker.log_event(topic, [p, chunk_index, done])

    return function(spec, chunk_index, n_auctions, seed_seq, _Batched(tell))


class _AuctionsDone:
    """Auctions done on the cluster: each chunk's most told (so a chunk rerun elsewhere
    is not counted twice), then all of it when its task finishes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # heard() runs on the client's event-loop thread
        self._rows: dict[tuple[int, int], int] = {}
        self.done = 0

    def heard(self, event: tuple[float, Sequence[int]]) -> None:
        p, chunk, rows = event[1]
        self.set(p, chunk, rows)

    def set(self, p: int, chunk: int, rows: int) -> None:
        with self._lock:
            before = self._rows.get((p, chunk), 0)
            if rows > before:
                self._rows[(p, chunk)] = rows
                self.done += rows - before


def _submit(
    client: Client, runs: Sequence[_PointRun], engine: Engine, topic: str | None = None
) -> dict[object, tuple[int, int]]:
    """Submit every chunk of every run at once; returns task key -> (run, chunk).

    With ``topic``, each chunk logs its progress there (:func:`_telling_progress`).
    """
    _check_workers_code(client)
    run_id = uuid.uuid4().hex[:12]
    owner: dict[object, tuple[int, int]] = {}
    for p, run in enumerate(runs):
        keys = [f"phantom-auction-chunk-{run_id}-{p:05d}-{t.chunk_index:06d}" for t in run.tasks]
        function = _chunk_function(run.summarize, engine)
        if topic is not None:
            function = functools.partial(_telling_progress, function, topic, p)
        # Explicit keys: unique per call (no stale results from an earlier run with a
        # reused key) and no hashing of the spec; pure=False for the same reason.
        futures = client.map(
            function,
            [t.spec for t in run.tasks],
            [t.chunk_index for t in run.tasks],
            [t.n_auctions for t in run.tasks],
            [t.seed_seq for t in run.tasks],
            key=keys,
            pure=False,
            # Earlier grid points first, so results stream out in grid order rather
            # than all at the end (Dask would otherwise interleave the points).
            priority=-p,
        )
        if engine == "object" and run.summarize:
            # Reduce on the worker: only the partial aggregates come back.
            labels = run.tasks[0].spec.labels
            futures = [
                client.submit(
                    StreamingSummary.from_columns,
                    f,
                    labels,
                    key=f"{k}-summary",
                    pure=False,
                    priority=-p,
                )
                for f, k in zip(futures, keys, strict=True)
            ]
        run.started = time.perf_counter()
        for chunk, future in enumerate(futures):
            run.futures[chunk] = future
            owner[future.key] = (p, chunk)
    return owner


def _check_workers_code(client: Client) -> None:
    """Raise :class:`WorkersRunOtherCode` for workers that loaded other source than this
    process (a digest each, :data:`~.parallel.CODE_FINGERPRINT`; one that cannot answer
    is left to the run, which reruns its chunks elsewhere if it is gone)."""
    digests = client.run(code_fingerprint, on_error="return")
    stale = sorted(
        str(worker)
        for worker, digest in digests.items()
        if isinstance(digest, str) and digest != CODE_FINGERPRINT
    )
    if stale:
        raise WorkersRunOtherCode(
            "workers",
            stale,
            "run other phantom-auction code than this client (started before a change, or "
            "another version): restart them (client.restart(), or the dask worker "
            "processes) and run again",
        )


#: How often the client looks for finished chunks and progress while none is ready.
_POLL_S = PROGRESS_INTERVAL_S / 5
#: After this long without a finished chunk or a progress event, the client asks the
#: scheduler whether it is there, and gives it ``_ANSWER_S`` to say so: a stopped
#: scheduler (SIGSTOP, a paused VM) keeps its connections open, and Dask would wait for
#: it for ever. A scheduler busy for that long would be broken anyway.
_SILENCE_S = 30.0
_ANSWER_S = 30.0


def _check_answering(client: Client) -> None:
    """Raise :class:`SchedulerLost` unless the scheduler answers within ``_ANSWER_S``."""
    scheduler: Any = client.scheduler  # the rpc to it (None only before it connects)
    try:
        client.sync(scheduler.identity, callback_timeout=_ANSWER_S)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise SchedulerLost(
            "scheduler",
            str(scheduler.address),
            f"stopped answering mid-run: no reply within {_ANSWER_S:g} s after "
            f"{_SILENCE_S:g} s without news of a chunk",
        ) from exc


def _collect(
    client: Client,
    runs: Sequence[_PointRun],
    owner: dict[object, tuple[int, int]],
    progress: ProgressCallback | None,
    topic: str | None = None,
) -> Iterator[tuple[int, MonteCarloResults]]:
    """Yield ``(run index, results)`` as runs complete; cancel what is left on exit.

    ``progress(done, total)`` hears of each finished chunk and, with ``topic`` (see
    :func:`_submit`), of the auctions the workers report in between.
    """
    dd = _distributed()
    total = sum(t.n_auctions for run in runs for t in run.tasks)
    auctions = _AuctionsDone()
    reported = 0
    pending = [f for run in runs for f in run.futures.values()]
    lost = False
    try:
        if topic is not None:
            client.subscribe_topic(topic, auctions.heard)  # type: ignore[no-untyped-call]
        completed = dd.as_completed(pending)
        del pending  # as_completed holds each future only until it is yielded
        news, heard = time.monotonic(), auctions.done
        while not completed.is_empty():
            # Never blocking: a stopped scheduler must be noticed (_SILENCE_S).
            ready = completed.next_batch(block=False)
            if ready or auctions.done > heard:
                news, heard = time.monotonic(), auctions.done
            elif time.monotonic() - news > _SILENCE_S:
                _check_answering(client)
                news = time.monotonic()
            if not ready:
                time.sleep(_POLL_S)
            ready.reverse()  # pop() then takes them in completion order (grid order)
            while ready:
                future = ready.pop()
                p, chunk = owner[future.key]
                if future.status == "error":
                    try:
                        future.result()  # raises the chunk's own exception, with its traceback
                    except dd.KilledWorker as exc:
                        # Dask's own error, a page of traceback in the CLI: say it in a line.
                        task = runs[p].tasks[chunk]
                        raise ChunkKilledWorkers(
                            "chunk_size",
                            task.spec.config.resolved_chunk_size,
                            f"chunk {chunk} of {len(runs[p].tasks)} killed every worker that "
                            f"ran it ({exc.allowed_failures + 1}; the last "
                            f"{exc.last_worker.address}): out of memory? A smaller chunk_size "
                            "needs less per task",
                        ) from exc
                del future
                run = runs[p]
                run.take(chunk)
                auctions.set(p, chunk, run.tasks[chunk].n_auctions)
                if progress is not None and auctions.done > reported:
                    reported = auctions.done
                    progress(reported, total)
                if run.complete:
                    yield p, run.results()
            if progress is not None and auctions.done > reported:
                reported = auctions.done
                progress(reported, total)
    except SchedulerLost:
        lost = True
        raise
    finally:
        if topic is not None:
            client.unsubscribe_topic(topic)  # type: ignore[no-untyped-call]
        # An error, Ctrl-C or an abandoned sweep must not leave the cluster working.
        # (Not a lost scheduler: cancel() waits for its reply, from a stopped one for ever.)
        leftover = [f for run in runs for f in run.futures.values()]
        if leftover and not lost:
            client.cancel(leftover)  # type: ignore[no-untyped-call]
        for run in runs:
            run.futures.clear()


def _progress_topic(progress: ProgressCallback | None) -> str | None:
    """A fresh event topic for a run's progress (None without a callback)."""
    return None if progress is None else f"phantom-auction-progress-{uuid.uuid4().hex[:12]}"


def _plan(
    simulator: PhantomSimulator,
    baseline_price: float,
    baseline_quantity: float,
    keep_rows: bool | None,
) -> _PointRun:
    tasks = plan_chunks(simulator, baseline_price, baseline_quantity)
    total = sum(t.n_auctions for t in tasks)
    # The same rule as a local run, so both keep rows (or not) for the same runs.
    summarize = (total > STREAMING_THRESHOLD) if keep_rows is None else not keep_rows
    return _PointRun(tasks, summarize)


def run_monte_carlo_on_cluster(
    simulator: PhantomSimulator,
    baseline_price: float,
    baseline_quantity: float,
    client: Client,
    *,
    progress: ProgressCallback | None = None,
    keep_rows: bool | None = None,
    engine: Engine = "fast",
) -> MonteCarloResults:
    """:func:`~.parallel.run_monte_carlo` with every chunk a task on ``client``'s cluster.

    ``baseline_price`` in token B per token A, ``baseline_quantity`` in token A.
    ``progress(done_auctions, total)`` is called as each chunk finishes (in completion
    order) and as the workers report auctions done within chunks; ``keep_rows`` and
    ``engine`` mean what they mean locally. The result equals a local run's on the same
    seed to the last bit (rows, and summaries, which are merged in chunk order). The
    workers need ``phantom-auction`` installed (the same version as the client).

    A learning run (:func:`~.parallel.carries_learners`) runs in this process instead,
    its chunks one after another as :func:`~.parallel.run_monte_carlo` runs them (the
    simulator's strategies keep what they learnt), and
    :data:`~.parallel.LEARNING_RUNS_LOCALLY` is logged as a warning.
    """
    check_simulator(simulator, "run_monte_carlo_on_cluster")
    check_engine(engine)
    _distributed()
    if carries_learners(simulator):
        _log.warning(LEARNING_RUNS_LOCALLY)
        return run_monte_carlo(
            simulator,
            baseline_price,
            baseline_quantity,
            progress=progress,
            keep_rows=keep_rows,
            engine=engine,
        )
    run = _plan(simulator, baseline_price, baseline_quantity, keep_rows)
    topic = _progress_topic(progress)
    owner = _submit(client, [run], engine, topic)
    for _, results in _collect(client, [run], owner, progress, topic):
        return results
    raise RuntimeError("the cluster run ended without a result")  # pragma: no cover


def sweep_on_cluster(
    simulators: Sequence[PhantomSimulator],
    baseline_price: float,
    baseline_quantity: float,
    client: Client,
    *,
    progress: ProgressCallback | None = None,
    keep_rows: bool | None = None,
    engine: Engine = "fast",
) -> Iterator[tuple[int, MonteCarloResults]]:
    """Run one Monte Carlo per simulator (grid point), all on the cluster at once.

    Every grid point is planned (and so validated) and every (grid point, chunk) task
    submitted before this returns, so the cluster stays busy across grid points;
    earlier grid points' chunks are queued first. The returned iterator yields
    ``(index into simulators, MonteCarloResults)`` as each grid point completes
    (completion order, roughly grid order); each result equals
    ``run_monte_carlo(simulators[i], ...)`` run locally. ``progress(done, total)``
    counts auctions over the whole sweep. Closing the iterator early (``break``,
    Ctrl-C) cancels the chunks not yet finished.

    Learning grid points (:func:`~.parallel.carries_learners`) run in this process
    instead, one after another with :func:`~.parallel.run_monte_carlo` as in a local
    sweep, while the cluster runs the other points' chunks; they are yielded first, and
    :data:`~.parallel.LEARNING_RUNS_LOCALLY` is logged as a warning.
    """
    check_engine(engine)
    _distributed()
    if not simulators:
        raise InvalidBidParameters("simulators", list(simulators), "give at least one")
    runs = [_plan(s, baseline_price, baseline_quantity, keep_rows) for s in simulators]
    here = [p for p, s in enumerate(simulators) if carries_learners(s)]
    if not here:
        topic = _progress_topic(progress)
        owner = _submit(client, runs, engine, topic)
        return _collect(client, runs, owner, progress, topic)
    _log.warning("%d of %d grid points: %s", len(here), len(simulators), LEARNING_RUNS_LOCALLY)
    return _sweep_with_learners(
        simulators,
        runs,
        here,
        baseline_price,
        baseline_quantity,
        client,
        progress,
        keep_rows,
        engine,
    )


def _sweep_with_learners(
    simulators: Sequence[PhantomSimulator],
    runs: Sequence[_PointRun],
    here: Sequence[int],
    baseline_price: float,
    baseline_quantity: float,
    client: Client,
    progress: ProgressCallback | None,
    keep_rows: bool | None,
    engine: Engine,
) -> Iterator[tuple[int, MonteCarloResults]]:
    """:func:`sweep_on_cluster` with the grid points ``here`` run in this process.

    The other points' chunks are submitted first, so the cluster works on them while
    this process runs the learning points, which are yielded first. ``progress`` counts
    auctions over the whole sweep (this process's, then the cluster's).
    """
    there = [p for p in range(len(runs)) if p not in here]
    cluster_runs = [runs[p] for p in there]
    size = [sum(t.n_auctions for t in run.tasks) for run in runs]
    total = sum(size)
    topic = _progress_topic(progress) if cluster_runs else None
    owner = _submit(client, cluster_runs, engine, topic) if cluster_runs else {}

    def offset(before: int) -> ProgressCallback | None:
        if progress is None:
            return None
        report = progress
        return lambda done, _: report(before + done, total)

    def points() -> Iterator[tuple[int, MonteCarloResults]]:
        before = 0
        completed: Iterator[tuple[int, MonteCarloResults]] | None = None
        try:
            for p in here:
                yield (
                    p,
                    run_monte_carlo(
                        simulators[p],
                        baseline_price,
                        baseline_quantity,
                        progress=offset(before),
                        keep_rows=keep_rows,
                        engine=engine,
                    ),
                )
                before += size[p]
            if cluster_runs:
                completed = _collect(client, cluster_runs, owner, offset(before), topic)
                for q, results in completed:
                    yield there[q], results
        finally:
            # Closed early or an error: cancel what is queued (_collect's own clean-up,
            # or, before it started, here).
            close = getattr(completed, "close", None)
            if callable(close):
                close()
            leftover = [f for run in cluster_runs for f in run.futures.values()]
            if leftover:
                client.cancel(leftover)  # type: ignore[no-untyped-call]
            for run in cluster_runs:
                run.futures.clear()

    return points()
