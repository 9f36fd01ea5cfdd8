"""Monte Carlo runs and sweeps on a Dask LocalCluster equal local runs to the last bit."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("distributed.client", reason="the distributed extra is not installed")

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import analyze_results, run_monte_carlo
from phantom_auction.simulation.distributed import (
    run_monte_carlo_on_cluster,
    sweep_on_cluster,
)
from phantom_auction.simulation.parallel import PROGRESS_ROWS

from .cluster_helpers import (
    BASELINE_PRICE,
    BASELINE_QUANTITY,
    FailingStrategy,
    FixedImprovementStrategy,
    assert_same_analysis,
    assert_same_columns,
    simulator,
)

# 6,000 auctions in 12 chunks: several chunks per worker, still about a second per run.
N = 6_000
CHUNK = 500


@pytest.mark.slow
def test_same_seed_same_analysis_for_one_two_local_workers_and_a_local_cluster(
    cluster_client: Any,
) -> None:
    sim = simulator(N, chunk_size=CHUNK)
    one = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, workers=1)
    two = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, workers=2)
    cluster = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, client=cluster_client)
    assert len(cluster) == N and cluster.rows_kept
    assert_same_columns(one.columns, two.columns)
    assert_same_columns(one.columns, cluster.columns)
    expected = analyze_results(one)
    assert_same_analysis(expected, analyze_results(two))
    assert_same_analysis(expected, analyze_results(cluster))
    # A different seed is a different sample: the comparison above can fail.
    other = run_monte_carlo_on_cluster(
        simulator(N, chunk_size=CHUNK, seed=7), BASELINE_PRICE, BASELINE_QUANTITY, cluster_client
    )
    assert analyze_results(other)["improvement_bps"]["mean"] != expected["improvement_bps"]["mean"]


def test_summary_only_runs_merge_partial_aggregates_exactly(cluster_client: Any) -> None:
    sim = simulator(N, chunk_size=CHUNK)
    local = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, workers=1, keep_rows=False)
    cluster = run_monte_carlo_on_cluster(
        sim, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client, keep_rows=False
    )
    assert not cluster.rows_kept
    assert cluster.summary.num_auctions == N
    assert (cluster.summary.wins == local.summary.wins).all()
    assert_same_analysis(analyze_results(local), analyze_results(cluster))


def test_progress_is_reported_after_every_chunk(cluster_client: Any) -> None:
    calls: list[tuple[int, int]] = []
    run_monte_carlo_on_cluster(
        simulator(N, chunk_size=CHUNK),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
        cluster_client,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(calls) == N // CHUNK
    assert all(total == N for _, total in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] == CHUNK and done[-1] == N


def test_progress_moves_within_chunks(cluster_client: Any) -> None:
    # Two chunks of PROGRESS_ROWS + 100 auctions on the object path: each worker tells
    # the client of its first PROGRESS_ROWS (or of a quarter second's work) before the
    # chunk ends, so the count moves more often than chunks end.
    chunk = PROGRESS_ROWS + 100
    calls: list[tuple[int, int]] = []
    results = run_monte_carlo_on_cluster(
        simulator(2 * chunk, chunk_size=chunk),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
        cluster_client,
        engine="object",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert len(results) == 2 * chunk
    done = [d for d, _ in calls]
    assert all(total == 2 * chunk for _, total in calls)
    assert done == sorted(set(done)) and done[-1] == 2 * chunk
    assert len(calls) > 2, calls
    assert any(d % chunk for d in done), "no count from within a chunk"


def test_sweep_yields_every_grid_point_equal_to_its_local_run(cluster_client: Any) -> None:
    phantoms = [0, 5, 15]
    sims = [simulator(2_000, chunk_size=CHUNK, num_phantom_bidders=k) for k in phantoms]
    calls: list[tuple[int, int]] = []
    finished = list(
        sweep_on_cluster(
            sims,
            BASELINE_PRICE,
            BASELINE_QUANTITY,
            cluster_client,
            progress=lambda done, total: calls.append((done, total)),
        )
    )
    assert sorted(i for i, _ in finished) == [0, 1, 2]
    assert calls[-1] == (6_000, 6_000) and len(calls) == 3 * 4
    for index, results in finished:
        local = run_monte_carlo(sims[index], BASELINE_PRICE, BASELINE_QUANTITY)
        assert_same_columns(local.columns, results.columns)
        assert_same_analysis(analyze_results(local), analyze_results(results))
    # The grid points really differ: no phantoms, none drawn; 15 slots, some.
    by_index = dict(finished)
    assert analyze_results(by_index[0])["num_phantom_bids"]["mean"] == 0.0
    assert analyze_results(by_index[2])["num_phantom_bids"]["mean"] > 1.0


def _chunk_priorities(dask_scheduler: Any) -> dict[str, tuple[Any, ...]]:
    """Every sweep chunk task's priority on the scheduler (the least runs first)."""
    return {
        key: task.priority
        for key, task in dask_scheduler.tasks.items()
        if str(key).startswith("phantom-auction-chunk-")
    }


def test_closing_a_sweep_early_cancels_its_remaining_chunks(cluster_client: Any) -> None:
    sims = [simulator(4_000, chunk_size=CHUNK, num_phantom_bidders=k) for k in (0, 5, 10, 15)]
    sweep = sweep_on_cluster(sims, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client)
    try:
        # Every chunk is submitted before the sweep returns, earlier grid points queued
        # first: each point's chunks rank above every chunk of the next. (Which point
        # completes first is up to the workers: one slow chunk can hold a point back.)
        chunks = 4 * 4_000 // CHUNK
        deadline = time.monotonic() + 30.0
        priorities = cluster_client.run_on_scheduler(_chunk_priorities)
        while len(priorities) < chunks and time.monotonic() < deadline:
            time.sleep(0.01)  # the submissions travel apart from this call
            priorities = cluster_client.run_on_scheduler(_chunk_priorities)
        by_point: dict[int, list[tuple[Any, ...]]] = {}
        for key, priority in priorities.items():
            by_point.setdefault(int(str(key).split("-")[4]), []).append(priority)
        assert sorted(by_point) == [0, 1, 2, 3]
        for point in range(3):
            assert max(by_point[point]) < min(by_point[point + 1])
        first, _ = next(sweep)
        assert first in range(4)
    finally:
        sweep.close()  # also when an assertion failed: no chunk left for the next test
    ours = [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]
    assert ours == []


def test_custom_strategies_and_the_object_path_run_on_the_cluster(cluster_client: Any) -> None:
    sim = simulator(120, chunk_size=40)
    sim.strategies.append(FixedImprovementStrategy(12.0))
    for keep_rows in (True, False):
        local = run_monte_carlo(
            sim, BASELINE_PRICE, BASELINE_QUANTITY, engine="object", keep_rows=keep_rows
        )
        cluster = run_monte_carlo_on_cluster(
            sim,
            BASELINE_PRICE,
            BASELINE_QUANTITY,
            cluster_client,
            engine="object",
            keep_rows=keep_rows,
        )
        analysis = analyze_results(cluster)
        assert "fixed" in analysis["strategy_performance"]
        assert_same_analysis(analyze_results(local), analysis)


def test_a_failing_chunk_raises_its_own_error_on_the_client(cluster_client: Any) -> None:
    sim = simulator(2_000, chunk_size=CHUNK)
    sim.strategies.append(FailingStrategy())
    with pytest.raises(RuntimeError, match="strategy failed on the worker"):
        run_monte_carlo_on_cluster(sim, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client)
    assert not [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]


def test_bad_arguments_are_refused_before_anything_is_submitted(cluster_client: Any) -> None:
    with pytest.raises(InvalidBidParameters, match="baseline"):
        run_monte_carlo_on_cluster(simulator(100), 0.0, BASELINE_QUANTITY, cluster_client)
    with pytest.raises(InvalidBidParameters, match="engine"):
        run_monte_carlo_on_cluster(
            simulator(100),
            BASELINE_PRICE,
            BASELINE_QUANTITY,
            cluster_client,
            engine="slow",  # type: ignore[arg-type]
        )
    with pytest.raises(InvalidBidParameters, match="workers or client"):
        run_monte_carlo(
            simulator(100), BASELINE_PRICE, BASELINE_QUANTITY, workers=2, client=cluster_client
        )
    with pytest.raises(InvalidBidParameters, match="simulators"):
        sweep_on_cluster([], BASELINE_PRICE, BASELINE_QUANTITY, cluster_client)
    assert not [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]


def _set_fingerprint(digest: str) -> None:
    """Run on a worker: make it look as if it had loaded other source."""
    from phantom_auction.simulation import parallel

    parallel.CODE_FINGERPRINT = digest


def test_workers_that_loaded_other_code_are_refused_by_name(cluster_client: Any) -> None:
    """The Dask audit: workers started before a code change kept the code they first
    imported and gave numbers 1e-8 off the client's, without a word. Each worker's
    source digest is compared with the client's before a run."""
    from phantom_auction.simulation.distributed import WorkersRunOtherCode
    from phantom_auction.simulation.parallel import CODE_FINGERPRINT

    workers = sorted(cluster_client.scheduler_info()["workers"])
    one = workers[0]
    cluster_client.run(_set_fingerprint, "0" * 16, workers=[one])
    try:
        with pytest.raises(WorkersRunOtherCode) as refused:
            run_monte_carlo_on_cluster(
                simulator(1_000, seed=5, chunk_size=CHUNK), 100.0, 1000.0, cluster_client
            )
        assert refused.value.value == [one] and "restart" in str(refused.value)
        with pytest.raises(WorkersRunOtherCode):
            list(
                sweep_on_cluster(
                    [simulator(1_000, seed=5, chunk_size=CHUNK)], 100.0, 1000.0, cluster_client
                )
            )
    finally:
        cluster_client.run(_set_fingerprint, CODE_FINGERPRINT, workers=[one])
    results = run_monte_carlo_on_cluster(
        simulator(1_000, seed=5, chunk_size=CHUNK), 100.0, 1000.0, cluster_client
    )
    assert len(results) == 1_000
