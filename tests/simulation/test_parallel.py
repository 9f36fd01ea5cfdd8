"""Progress within a chunk: the count moves more often than chunks end, only grows, ends
at the total, and the results do not change (the chunks and their seeds are the same)."""

from __future__ import annotations

import pytest

from phantom_auction import (
    InvalidBidParameters,
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
)
from phantom_auction.simulation import parallel, run_monte_carlo
from phantom_auction.simulation.kernels import BLOCK_ROWS

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY, assert_columns_equal


def _simulator(n: int, **config: object) -> PhantomSimulator:
    return PhantomSimulator(
        SimulationConfig(num_simulations=n, seed=11, **config), MarketConditions()
    )


def _run(sim: PhantomSimulator, **kwargs: object) -> tuple[object, list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []
    results = run_monte_carlo(
        sim,
        BASELINE_PRICE,
        BASELINE_QUANTITY,
        progress=lambda done, total: calls.append((done, total)),
        **kwargs,  # type: ignore[arg-type]
    )
    return results, calls


def _check_counts(calls: list[tuple[int, int]], total: int) -> None:
    done = [d for d, _ in calls]
    assert all(t == total for _, t in calls)
    assert done == sorted(set(done)), "done counts must strictly grow"
    assert done[-1] == total and done[0] > 0


def test_one_chunk_reports_each_block_of_the_fast_path() -> None:
    n = 2 * BLOCK_ROWS + 500  # one chunk (the default chunk is 65,536 auctions)
    sim = _simulator(n)
    assert sim.config.resolved_chunk_size > n
    results, calls = _run(sim)
    assert calls == [(BLOCK_ROWS, n), (2 * BLOCK_ROWS, n), (n, n)]
    plain = run_monte_carlo(_simulator(n), BASELINE_PRICE, BASELINE_QUANTITY)
    assert_columns_equal(plain.columns, results.columns, exact=True)  # type: ignore[attr-defined]


def test_the_object_path_reports_within_its_chunk() -> None:
    n = parallel.PROGRESS_ROWS + 100  # one chunk, a report at PROGRESS_ROWS at the latest
    _, calls = _run(_simulator(n), engine="object")
    _check_counts(calls, n)
    assert len(calls) >= 2 and calls[0][0] <= parallel.PROGRESS_ROWS


def test_worker_processes_report_through_their_shared_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two chunks of unequal size on the object path (each many PROGRESS_INTERVAL_S of
    # work: 60 bidders, ~0.1 ms an auction, and the interval made 10 ms; the forked
    # workers inherit it), on two processes: the parent hears of them in between.
    monkeypatch.setattr(parallel, "PROGRESS_INTERVAL_S", 0.01)
    n, chunk = parallel.PROGRESS_ROWS + 500, parallel.PROGRESS_ROWS + 100
    sim = _simulator(n, chunk_size=chunk, num_real_bidders=60)
    results, calls = _run(sim, engine="object", workers=2)
    _check_counts(calls, n)
    assert len(calls) > 2, calls
    alone = run_monte_carlo(
        _simulator(n, chunk_size=chunk, num_real_bidders=60),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
        engine="object",
    )
    assert_columns_equal(alone.columns, results.columns, exact=True)  # type: ignore[attr-defined]


def test_learners_report_within_their_chunks() -> None:
    n = 3 * parallel.PROGRESS_ROWS
    sim = _simulator(n, real_strategy="adaptive", enable_learning=True, num_real_bidders=2)
    _, calls = _run(sim)
    _check_counts(calls, n)
    assert len(calls) >= 3  # one chunk, a report every PROGRESS_ROWS auctions at least


def test_worker_processes_write_the_fast_paths_rows_in_place() -> None:
    # Three chunks, the last one short, on two processes: the rows the workers write
    # into the shared columns equal the ones a single process computes, dtypes too.
    n, chunk = 2 * BLOCK_ROWS + 700, BLOCK_ROWS
    results, calls = _run(_simulator(n, chunk_size=chunk), workers=2)
    _check_counts(calls, n)
    alone = run_monte_carlo(_simulator(n, chunk_size=chunk), BASELINE_PRICE, BASELINE_QUANTITY)
    columns = results.columns  # type: ignore[attr-defined]
    assert_columns_equal(alone.columns, columns, exact=True)
    assert {k: v.dtype for k, v in alone.columns.items()} == {
        k: v.dtype for k, v in columns.items()
    }
    # Rows streamed to a sink still come back through the pipe, in chunk order.
    seen: list[int] = []
    run_monte_carlo(
        _simulator(n, chunk_size=chunk),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
        workers=2,
        row_sink=lambda part: seen.append(len(part["improvement_bps"])),
    )
    assert seen == [chunk, chunk, n - 2 * chunk]


@pytest.mark.parametrize("workers", ["two", 2.5, True, 0, -1])
def test_workers_must_be_a_positive_integer(workers: object) -> None:
    """'two' was a ValueError from int(), 2.5 silently ran with 2 processes."""
    with pytest.raises(InvalidBidParameters) as info:
        run_monte_carlo(_simulator(100), BASELINE_PRICE, BASELINE_QUANTITY, workers=workers)  # type: ignore[arg-type]
    assert info.value.field == "workers" and info.value.value is workers
