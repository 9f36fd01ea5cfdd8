"""Monte Carlo runs: fixed-size chunks with their own seeds, run here or in processes.

A run is planned as :class:`ChunkTask` objects (:func:`plan_chunks`): chunk ``c`` holds
``chunk_size`` auctions (the last one fewer) and the seed
``SeedSequence(seed).spawn(n_chunks)[c]``. Each task is a pure function of itself —
:func:`simulate_chunk` (columns) or :func:`summarize_chunk` (a
:class:`~.streaming.StreamingSummary`) — and the outputs are merged in chunk order by
:meth:`MonteCarloResults.from_chunks`, so results are bit-identical whatever runs the
tasks: this process, a process pool (:func:`run_monte_carlo` with ``workers``), or a
Dask cluster given the same tasks.

Progress moves inside a chunk, not only when one ends: a chunk tells an ``on_rows(n)``
sink of the auctions it has finished (each block of the fast path, every auction of
the object path), which is passed on every :data:`PROGRESS_ROWS` auctions or
:data:`PROGRESS_INTERVAL_S` seconds, whichever comes first: to the progress callback
in this process, or into a count shared by worker processes, which the parent reads as
often. The chunks and their seeds are the same with or without progress.

One concept past 600 lines: running a planned run's chunks, here or in a pool, with
their progress and their rows written in place; the chunk functions and the pool's
worker set-up are the pieces of that one loop.
"""

from __future__ import annotations

import copy
import ctypes
import hashlib
import itertools
import logging
import mmap
import multiprocessing
import numbers
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidBidParameters
from .environment import (
    AuctionEnvironment,
    Streams,
    build_environment,
    check_baseline,
    draw_exogenous,
)
from .kernels import ChunkColumns, PathSample, simulate_chunk_arrays
from .market import MarketConditions
from .results import MonteCarloResults, SimulationResult, columns_from_rows
from .settings import SimulationConfig, check_chunk_count
from .simulator import PhantomSimulator, check_simulator, simulate_auctions
from .strategies.base import LabelledStrategy, learns, strategy_label
from .streaming import StreamingSummary

__all__ = [
    "CODE_FINGERPRINT",
    "LEARNING_RUNS_LOCALLY",
    "PROGRESS_INTERVAL_S",
    "PROGRESS_ROWS",
    "STREAMING_THRESHOLD",
    "ChunkTask",
    "ReplayState",
    "SimulationSpec",
    "carries_learners",
    "chunk_paths",
    "code_fingerprint",
    "plan_chunks",
    "run_monte_carlo",
    "simulate_chunk",
    "simulate_chunk_objects",
    "summarize_chunk",
]

_log = logging.getLogger(__name__)


def _source_digest() -> str:
    """A digest of the package's source files as they are on disk now (~5 ms)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


#: The package's source as this process loaded it (a digest, taken at import): a long-
#: lived Dask worker keeps the code it first imported, and one started before a change
#: gave numbers 1e-8 off the client's, without a word (the Dask audit); the cluster
#: runner compares each worker's with its own before a run.
CODE_FINGERPRINT = _source_digest()


def code_fingerprint() -> str:
    """:data:`CODE_FINGERPRINT` of the process this runs in (a Dask worker's)."""
    return CODE_FINGERPRINT


#: Runs above this many auctions keep only a summary unless ``keep_rows=True``.
STREAMING_THRESHOLD = 10_000_000

#: Progress is passed on every this many finished auctions (and at each chunk's end)...
PROGRESS_ROWS = 1024

#: ... or after this many seconds with some done, whichever comes first (the object
#: path can take seconds for PROGRESS_ROWS auctions); the parent of worker processes
#: reads their shared count as often.
PROGRESS_INTERVAL_S = 0.25

Engine = Literal["fast", "object"]
ProgressCallback = Callable[[int, int], None]
#: ``on_rows(n)``: told that ``n`` more auctions of a chunk are done.
RowSink = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class SimulationSpec:
    """A picklable snapshot of a simulator and a baseline: everything a chunk needs.

    ``strategies`` are copies taken when the run was planned: each chunk starts from
    that state, except in a run that :func:`carries_learners`, where only the first
    chunk does and each later one continues from the learners' state after the one
    before.
    """

    config: SimulationConfig
    market: MarketConditions
    strategies: tuple[Any, ...]
    baseline_price: float
    baseline_quantity: float

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(strategy_label(s) for s in self.strategies)

    def environment(self) -> AuctionEnvironment:
        return build_environment(
            self.config, self.market, self.strategies, self.baseline_price, self.baseline_quantity
        )

    def fresh_strategies(self) -> list[Any]:
        """Independent copies for one chunk (a chunk must not change the spec)."""
        return copy.deepcopy(list(self.strategies))


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """One chunk of a run: ``n_auctions`` auctions from ``seed_seq``."""

    spec: SimulationSpec
    chunk_index: int
    n_auctions: int
    seed_seq: np.random.SeedSequence


def carries_learners(simulator: PhantomSimulator) -> bool:
    """Whether a run of ``simulator`` carries learners from auction to auction
    (``enable_learning`` and at least one learning strategy).

    Such a run's chunks depend on one another, so they run one after another in this
    process (:func:`run_monte_carlo`), whatever ``workers`` or ``client`` asked for:
    split over workers or a cluster, they would give other numbers.
    """
    return simulator.config.enable_learning and any(learns(s) for s in simulator.strategies)


#: What is logged (and the CLI prints) when a learning run asked for a cluster runs here.
LEARNING_RUNS_LOCALLY = (
    "learning run: its bidders carry what they learn from one auction to the next, so "
    "its chunks run one after another in this process, not on the Dask cluster "
    "(the same numbers as a local run)"
)


def check_engine(engine: object) -> None:
    """Refuse an ``engine`` other than ``"fast"`` and ``"object"``."""
    if engine not in ("fast", "object"):
        raise InvalidBidParameters("engine", engine, "must be 'fast' or 'object'")


def plan_chunks(
    simulator: PhantomSimulator,
    baseline_price: float,
    baseline_quantity: float,
    *,
    num_simulations: int | None = None,
) -> list[ChunkTask]:
    """The chunks of a run of ``num_simulations`` (default ``config.num_simulations``)
    at ``baseline_price`` (token B per token A) and ``baseline_quantity`` (token A).

    Raises :class:`~phantom_auction.errors.InvalidBidParameters` for a bad baseline.
    """
    check_simulator(simulator, "plan_chunks")
    price, quantity = check_baseline(baseline_price, baseline_quantity)
    config = simulator.config
    total = config.num_simulations if num_simulations is None else int(num_simulations)
    size = config.resolved_chunk_size
    if num_simulations is not None:
        check_chunk_count(total, size)
    spec = SimulationSpec(
        config, simulator.market, tuple(copy.deepcopy(simulator.strategies)), price, quantity
    )
    spec.environment()  # validate the whole setup once, before any worker sees it
    sizes = [min(size, total - start) for start in range(0, total, size)]
    root = np.random.SeedSequence(config.seed)
    seeds = root.spawn(len(sizes))
    return [ChunkTask(spec, c, n, seeds[c]) for c, n in enumerate(sizes)]


def simulate_chunk(
    spec: SimulationSpec,
    chunk_index: int,
    n_auctions: int,
    seed_seq: np.random.SeedSequence,
    on_rows: RowSink | None = None,
    out: ChunkColumns | None = None,
) -> ChunkColumns:
    """Columns of one chunk on the fast path (pure: a function of its arguments;
    ``on_rows(n)`` hears of each finished block, for progress; ``out``: arrays to write
    the columns into, see :func:`~.kernels.simulate_chunk_arrays`)."""
    env = spec.environment()
    strategies = spec.fresh_strategies()
    streams = Streams.from_seed(seed_seq, len(strategies))
    columns, _ = simulate_chunk_arrays(
        env, strategies, streams, n_auctions, on_rows=on_rows, out=out
    )
    return columns


def simulate_chunk_objects(
    spec: SimulationSpec,
    chunk_index: int,
    n_auctions: int,
    seed_seq: np.random.SeedSequence,
    on_rows: RowSink | None = None,
) -> ChunkColumns:
    """The same chunk on the object path (a Python loop over auctions); same numbers."""
    state = ReplayState(ChunkTask(spec, chunk_index, n_auctions, seed_seq))
    return _object_columns(state, on_rows)


def _object_columns(state: ReplayState, on_rows: RowSink | None) -> ChunkColumns:
    rows = []
    for _ in range(state.task.n_auctions):
        rows.append(state.next_result().row)
        if on_rows is not None:
            on_rows(1)
    return columns_from_rows(rows)


def summarize_chunk(
    spec: SimulationSpec,
    chunk_index: int,
    n_auctions: int,
    seed_seq: np.random.SeedSequence,
    on_rows: RowSink | None = None,
) -> StreamingSummary:
    """One chunk reduced to its :class:`StreamingSummary` (for summary-only runs)."""
    columns = simulate_chunk(spec, chunk_index, n_auctions, seed_seq, on_rows)
    return StreamingSummary.from_columns(columns, spec.labels)


def chunk_paths(task: ChunkTask, n: int) -> PathSample:
    """Convergence paths of the first ``n`` auctions of ``task`` (replays the chunk)."""
    env = task.spec.environment()
    strategies = task.spec.fresh_strategies()
    streams = Streams.from_seed(task.seed_seq, len(strategies))
    _, sample = simulate_chunk_arrays(env, strategies, streams, task.n_auctions, path_rows=n)
    assert sample is not None
    return sample


class ReplayState:
    """A chunk replayed auction by auction on the object path (``strategies``: the
    bidders to play it, by default fresh copies of the spec's)."""

    def __init__(self, task: ChunkTask, strategies: list[Any] | None = None) -> None:
        self.task = task
        self.env = task.spec.environment()
        self.strategies = task.spec.fresh_strategies() if strategies is None else strategies
        self.streams = Streams.from_seed(task.seed_seq, len(self.strategies))
        self.draws = draw_exogenous(self.env, self.streams, task.n_auctions)
        self.next_index = 0
        self._results = simulate_auctions(self.env, self.strategies, self.streams, self.draws)

    def next_result(self) -> SimulationResult:
        if self.next_index >= self.task.n_auctions:
            raise IndexError("the chunk has no more auctions")
        result = next(self._results)
        self.next_index += 1
        return result


def _run_task(
    task: ChunkTask,
    summarize: bool,
    engine: Engine,
    on_rows: RowSink | None = None,
    into: ChunkColumns | None = None,
) -> ChunkColumns | StreamingSummary:
    """One chunk's columns or summary; ``into``: the fast path's rows written there."""
    args = (task.spec, task.chunk_index, task.n_auctions, task.seed_seq, on_rows)
    if engine == "object":
        columns = simulate_chunk_objects(*args)
        return StreamingSummary.from_columns(columns, task.spec.labels) if summarize else columns
    return summarize_chunk(*args) if summarize else simulate_chunk(*args, into)


class _Batched:
    """An ``on_rows`` sink passing counts on to ``sink(n)`` every :data:`PROGRESS_ROWS`
    auctions or :data:`PROGRESS_INTERVAL_S` seconds, and at :meth:`flush`."""

    def __init__(self, sink: RowSink) -> None:
        self.sink = sink
        self.pending = 0
        self.last = time.monotonic()

    def __call__(self, n: int) -> None:
        self.pending += n
        if self.pending >= PROGRESS_ROWS or time.monotonic() - self.last >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.sink(self.pending)
            self.pending = 0
        self.last = time.monotonic()


class _Done:
    """Adds up a run's finished auctions for ``progress(done, total)``."""

    def __init__(self, progress: ProgressCallback, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.progress(self.done, self.total)


#: In a worker process of :func:`_run_pool`: the count of finished auctions it shares
#: with the parent (set by the pool's initializer).
_WORKER_DONE: Any = None


def _share_done(counter: Any) -> None:
    global _WORKER_DONE
    _WORKER_DONE = counter


#: glibc's mallopt parameters (malloc.h) and the values a worker process sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024**2  # glibc's largest allowed (64-bit)
_TRIM_THRESHOLD_BYTES = 1024**3


def _reuse_freed_memory() -> None:
    """Make this (worker) process keep freed memory for reuse (glibc; elsewhere nothing).

    A chunk's arrays are megabytes each: by default glibc maps each afresh and unmaps it
    when freed, so every chunk pays a page fault per 4 KiB it touches (a quarter of the
    fast path's time, in the kernel). Arrays up to 32 MiB then come from the heap, and
    the heap is not trimmed below 1 GiB of free space: the next chunk reuses the pages.
    Only worker processes the run starts, never the caller's process.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


#: In a worker process of :func:`_run_pool`: the run's columns, in memory shared with
#: the parent, that chunks write their rows into (None: chunks send their columns back).
_SHARED_COLUMNS: ChunkColumns | None = None


def _start_worker(counter: Any, shared: ChunkColumns | None = None) -> None:
    """A pool worker's initializer: the shared count of done auctions and columns, and
    malloc tuned."""
    global _SHARED_COLUMNS
    _share_done(counter)
    _SHARED_COLUMNS = shared
    _reuse_freed_memory()


def _run_columns(tasks: Sequence[ChunkTask], *, shared: bool) -> ChunkColumns | None:
    """The run's columns, allocated once for every chunk to write its rows into.

    Keeping each chunk's columns (from a worker: pickled through a pipe) and joining
    them at the end holds every row twice at the peak and copies them all once more (a
    third of a second per million auctions). ``shared``: in one anonymous shared
    mapping, for forked workers to fill (None when the workers are not forked: the
    mapping would not be shared); else in this process's memory. Names and dtypes are
    those of a one-auction chunk simulated here. None when there is no row.
    """
    total = sum(t.n_auctions for t in tasks)
    if total == 0 or (shared and multiprocessing.get_context().get_start_method() != "fork"):
        return None
    first = tasks[0]
    schema = simulate_chunk(first.spec, first.chunk_index, 1, first.seed_seq)
    if not shared:
        return {name: np.empty(total, dtype=column.dtype) for name, column in schema.items()}
    layout, size = [], 0
    for name, column in schema.items():
        layout.append((name, column.dtype, size))
        size += -(-total * column.dtype.itemsize // 64) * 64  # each column 64-byte aligned
    memory = mmap.mmap(-1, size)  # anonymous, MAP_SHARED: forked workers write into it
    return {
        name: np.frombuffer(memory, dtype=dtype, count=total, offset=offset)
        for name, dtype, offset in layout
    }


def _rows_of(columns: ChunkColumns, first_row: int, task: ChunkTask) -> ChunkColumns:
    """``task``'s rows of the run's ``columns`` (views), for it to write into."""
    rows = slice(first_row, first_row + task.n_auctions)
    return {name: column[rows] for name, column in columns.items()}


def _add_done(n: int) -> None:
    with _WORKER_DONE.get_lock():
        _WORKER_DONE.value += n


def _run_counted(
    task: ChunkTask, summarize: bool, engine: Engine, first_row: int | None = None
) -> ChunkColumns | StreamingSummary | None:
    """:func:`_run_task` in a worker process, adding its auctions to the shared count;
    with ``first_row``, the chunk's columns go to the shared ones from that row on
    (None is returned)."""
    counted = None if _WORKER_DONE is None else _Batched(_add_done)
    out: ChunkColumns | StreamingSummary | None
    if first_row is not None and _SHARED_COLUMNS is not None:
        _run_task(task, summarize, engine, counted, _rows_of(_SHARED_COLUMNS, first_row, task))
        out = None
    else:
        out = _run_task(task, summarize, engine, counted)
    if counted is not None:
        counted.flush()
    return out


def run_monte_carlo(
    simulator: PhantomSimulator,
    baseline_price: float,
    baseline_quantity: float,
    *,
    workers: int | None = None,
    progress: ProgressCallback | bool | Any = None,
    keep_rows: bool | None = None,
    engine: Engine = "fast",
    client: Any = None,
    row_sink: Callable[[ChunkColumns], None] | None = None,
) -> MonteCarloResults:
    """Run ``config.num_simulations`` auctions (token B per A, token A).

    ``workers``: processes (``None``: ``config.workers``, by default 1 = this process).
    ``progress``: ``True`` shows a rich progress bar (on stderr), a tqdm-like object
    (``tqdm.tqdm()``) is updated, a callable ``progress(done_auctions, total)`` is
    called (:mod:`.progress`); the count moves within chunks, every
    :data:`PROGRESS_ROWS` auctions here, every :data:`PROGRESS_INTERVAL_S` s with
    ``workers``, and after each chunk on Dask; done counts only grow and end at the
    total. ``keep_rows``:
    ``False`` keeps only a :class:`StreamingSummary` (constant memory); ``None`` keeps
    rows up to :data:`STREAMING_THRESHOLD` auctions. ``engine="object"`` runs the
    object path (the per-auction reference, a few dozen times slower). The same seed
    gives bit-identical results for any ``workers``.

    ``client``: a ``distributed.Client``; each chunk is then a task on its Dask cluster,
    with the same results (:mod:`.distributed`; ``workers`` must be None), except in a
    learning run (below).

    ``row_sink(columns)``: called with each chunk's per-auction columns, in chunk order,
    as the run goes; the run then keeps only its summary (constant memory whatever the
    size: the sink writes the rows, e.g. to Parquet). Not with ``client``.

    With ``enable_learning`` and a learning strategy (:func:`carries_learners`), chunks
    run one after another here (``workers`` is not used, nor ``client``: with one,
    :data:`LEARNING_RUNS_LOCALLY` is logged as a warning), each starting from the
    learners' state at the end of the one before, and the simulator's strategies keep
    what they learnt. So a learning run gives the same numbers for any ``workers`` and
    with or without ``client``.
    """
    check_simulator(simulator, "run_monte_carlo")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1
    ):
        raise InvalidBidParameters("workers", workers, "must be an integer >= 1 or None")
    check_engine(engine)  # a typo ran the fast path (the API audit)
    if keep_rows is not None and not isinstance(keep_rows, bool):  # "no" kept them
        raise InvalidBidParameters("keep_rows", keep_rows, "must be True, False or None")
    if row_sink is not None and client is not None:
        raise InvalidBidParameters("row_sink", row_sink, "is for local runs, not with client")
    if progress is not None and not (callable(progress) and not isinstance(progress, bool)):
        from .progress import progress_callback

        with progress_callback(progress) as callback:
            return run_monte_carlo(
                simulator,
                baseline_price,
                baseline_quantity,
                workers=workers,
                progress=callback,
                keep_rows=keep_rows,
                engine=engine,
                client=client,
                row_sink=row_sink,
            )
    if client is not None and workers is not None:
        raise InvalidBidParameters("workers", workers, "give workers or client, not both")
    learning = carries_learners(simulator)
    if client is not None:
        if learning:
            _log.warning(LEARNING_RUNS_LOCALLY)
        else:
            from .distributed import run_monte_carlo_on_cluster

            return run_monte_carlo_on_cluster(
                simulator,
                baseline_price,
                baseline_quantity,
                client,
                progress=progress,
                keep_rows=keep_rows,
                engine=engine,
            )
    tasks = plan_chunks(simulator, baseline_price, baseline_quantity)
    total = sum(t.n_auctions for t in tasks)
    summarize = (total > STREAMING_THRESHOLD) if keep_rows is None else not keep_rows
    summarize = summarize or row_sink is not None
    n_workers = simulator.config.resolved_workers if workers is None else int(workers)
    if n_workers < 1:
        raise InvalidBidParameters("workers", workers, "must be >= 1")
    started = time.perf_counter()
    if learning:
        return _run_learning(simulator, tasks, summarize, engine, progress, started, row_sink)
    if n_workers == 1 or len(tasks) == 1:
        parts: list[ChunkColumns | StreamingSummary] = []
        summary: StreamingSummary | None = None
        counted = None if progress is None else _Batched(_Done(progress, total))
        in_place = not summarize and engine == "fast" and len(tasks) > 1
        columns = _run_columns(tasks, shared=False) if in_place else None
        for task, first_row in zip(tasks, _first_rows(tasks), strict=True):
            into = None if columns is None else _rows_of(columns, first_row, task)
            out = _run_task(task, summarize and row_sink is None, engine, counted, into)
            if row_sink is not None:
                out = _sink(out, row_sink, task)
            if isinstance(out, StreamingSummary):
                summary = out if summary is None else summary.merge(out)
            elif into is None:
                parts.append(out)
            if counted is not None:
                counted.flush()
        elapsed = time.perf_counter() - started
        if summary is not None:
            return MonteCarloResults(tasks, None, summary, elapsed_s=elapsed)
        if columns is not None:
            return MonteCarloResults(tasks, columns, None, elapsed_s=elapsed)
        return MonteCarloResults.from_chunks(tasks, parts, elapsed_s=elapsed)
    return _run_pool(tasks, summarize, engine, n_workers, progress, started, row_sink)


def _sink(
    out: ChunkColumns | StreamingSummary,
    row_sink: Callable[[ChunkColumns], None],
    task: ChunkTask,
) -> StreamingSummary:
    """Hand a chunk's columns to ``row_sink`` and keep only their summary."""
    assert not isinstance(out, StreamingSummary)
    row_sink(out)
    return StreamingSummary.from_columns(out, task.spec.labels)


def _run_learning(
    simulator: PhantomSimulator,
    tasks: Sequence[ChunkTask],
    summarize: bool,
    engine: Engine,
    progress: ProgressCallback | None,
    started: float,
    row_sink: Callable[[ChunkColumns], None] | None = None,
) -> MonteCarloResults:
    """Chunks one after another in this process, the learners carried from each chunk to
    the next and handed back to ``simulator`` at the end (so they keep what they learnt,
    and a later run continues from there). Results still do not depend on ``workers``:
    a run with learners always takes this path."""
    seen: dict[int, int] = {}
    for i, strategy in enumerate(simulator.strategies):
        key = id(_unwrapped(strategy))
        if learns(strategy) and seen.setdefault(key, i) != i:
            # Deep copies keep the aliasing: two bidders would learn into one Q-table
            # and each count the other's auctions (the API audit).
            raise InvalidBidParameters(
                "strategies",
                strategy_label(strategy),
                f"the same learner is bidder {seen[key]} and bidder {i}: give "
                "each bidder its own (copy.deepcopy)",
            )
    strategies = tasks[0].spec.fresh_strategies()
    parts: list[ChunkColumns] = []
    summary: StreamingSummary | None = None
    total = sum(t.n_auctions for t in tasks)
    counted = None if progress is None else _Batched(_Done(progress, total))
    for task in tasks:
        if engine == "object":
            columns = _object_columns(ReplayState(task, strategies), counted)
        else:
            streams = Streams.from_seed(task.seed_seq, len(strategies))
            columns, _ = simulate_chunk_arrays(
                task.spec.environment(), strategies, streams, task.n_auctions, on_rows=counted
            )
        if row_sink is not None:
            row_sink(columns)
        if summarize:
            out = StreamingSummary.from_columns(columns, task.spec.labels)
            summary = out if summary is None else summary.merge(out)
        else:
            parts.append(columns)
        if counted is not None:
            counted.flush()
    for i, (outer, learnt_outer) in enumerate(zip(simulator.strategies, strategies, strict=True)):
        mine, learnt = _unwrapped(outer), _unwrapped(learnt_outer)
        if type(mine) is type(learnt) and hasattr(mine, "__dict__"):
            # Into the caller's own objects, which it may hold (the API audit: they were
            # replaced, and a kept reference showed none of what this run learnt).
            mine.__dict__.update(learnt.__dict__)
        else:
            simulator.strategies[i] = learnt_outer
    elapsed = time.perf_counter() - started
    if summary is not None:
        return MonteCarloResults(tasks, None, summary, elapsed_s=elapsed)
    return MonteCarloResults.from_chunks(tasks, parts, elapsed_s=elapsed)


def _unwrapped(strategy: Any) -> Any:
    """The strategy inside any :class:`~.strategies.base.LabelledStrategy` wrappers."""
    while isinstance(strategy, LabelledStrategy):
        strategy = strategy.inner
    return strategy


def _first_rows(tasks: Sequence[ChunkTask]) -> list[int]:
    """Each chunk's first row in the run's columns."""
    return list(itertools.accumulate((t.n_auctions for t in tasks), initial=0))[:-1]


def _run_pool(
    tasks: Sequence[ChunkTask],
    summarize: bool,
    engine: Engine,
    n_workers: int,
    progress: ProgressCallback | None,
    started: float,
    row_sink: Callable[[ChunkColumns], None] | None = None,
) -> MonteCarloResults:
    total = sum(t.n_auctions for t in tasks)
    results: dict[int, ChunkColumns | StreamingSummary | None] = {}
    summary: StreamingSummary | None = None
    in_place = not summarize and row_sink is None and engine == "fast"
    shared = _run_columns(tasks, shared=True) if in_place else None
    first_rows = _first_rows(tasks)
    merged = 0  # summaries merged so far, in chunk order
    done = reported = 0  # auctions in finished chunks; the count last reported
    # The workers' finished auctions, chunks part done included (see _run_counted).
    counter = None if progress is None else multiprocessing.get_context().Value("q", 0)
    # Keep a bounded number of chunks in flight: a streamed run's memory stays flat.
    in_flight = 2 * n_workers
    with ProcessPoolExecutor(
        max_workers=min(n_workers, len(tasks)),
        initializer=_start_worker,
        initargs=(counter, shared),
    ) as pool:
        pending: dict[Future[ChunkColumns | StreamingSummary | None], int] = {}
        next_task = 0
        while next_task < len(tasks) or pending:
            while next_task < len(tasks) and len(pending) < in_flight:
                task = tasks[next_task]
                job = pool.submit(
                    _run_counted,
                    task,
                    summarize and row_sink is None,
                    engine,
                    None if shared is None else first_rows[next_task],
                )
                pending[job] = next_task
                next_task += 1
            timeout = None if progress is None else PROGRESS_INTERVAL_S
            finished, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                results[index] = future.result()
                done += tasks[index].n_auctions
            if progress is not None and counter is not None:
                # A finished chunk has counted all its auctions; the max guards the end.
                seen = min(total, max(done, int(counter.value)))
                if seen > reported:
                    progress(seen, total)
                    reported = seen
            if summarize:
                while merged in results:
                    part = results.pop(merged)
                    assert part is not None  # only columns written in place are None
                    if row_sink is not None:
                        part = _sink(part, row_sink, tasks[merged])
                    assert isinstance(part, StreamingSummary)
                    summary = part if summary is None else summary.merge(part)
                    merged += 1
    elapsed = time.perf_counter() - started
    if summarize:
        return MonteCarloResults(tasks, None, summary, elapsed_s=elapsed)
    if shared is not None:
        return MonteCarloResults(tasks, shared, None, elapsed_s=elapsed)
    parts = [results[i] for i in range(len(tasks))]
    return MonteCarloResults.from_chunks(
        tasks, [p for p in parts if p is not None], elapsed_s=elapsed
    )
