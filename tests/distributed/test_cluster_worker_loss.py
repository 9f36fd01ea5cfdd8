"""A worker process killed mid-run does not change the result: Dask reruns its chunks."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

pytest.importorskip("distributed.client", reason="the distributed extra is not installed")

from phantom_auction.simulation import analyze_results, run_monte_carlo
from phantom_auction.simulation.distributed import (
    open_client,
    run_monte_carlo_on_cluster,
)

from .cluster_helpers import (
    BASELINE_PRICE,
    BASELINE_QUANTITY,
    assert_same_analysis,
    simulator,
)

# 24 chunks of ~0.1 s each: when the first one is done, both workers still have work.
N = 24_000
CHUNK = 1_000


def _chunk_keys(keys: Any) -> set[str]:
    return {str(k) for k in keys if str(k).startswith("phantom-auction-chunk-")}


@pytest.mark.slow
@pytest.mark.parametrize("keep_rows", [True, False], ids=["rows", "summary"])
def test_killing_a_worker_mid_run_leaves_the_result_unchanged(keep_rows: bool) -> None:
    sim = simulator(N, chunk_size=CHUNK)
    expected = analyze_results(
        run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, keep_rows=keep_rows)
    )
    with open_client(cluster="local:2") as client:
        pids: dict[str, int] = client.run(os.getpid)
        victim, victim_pid = sorted(pids.items())[0]
        killed_at: list[int] = []

        def kill_once(done: int, total: int) -> None:
            # Called on the client as chunks finish: end one worker after the first.
            if not killed_at:
                killed_at.append(done)
                os.kill(victim_pid, signal.SIGKILL)

        results = run_monte_carlo_on_cluster(
            sim,
            BASELINE_PRICE,
            BASELINE_QUANTITY,
            client,
            progress=kill_once,
            keep_rows=keep_rows,
        )
        assert killed_at and killed_at[0] < N  # the kill happened with work left
        # The scheduler saw the worker go with chunks of ours running or held there.
        removals = [
            msg
            for _, msg in client.get_events(victim)
            if isinstance(msg, dict) and msg.get("action") == "remove-worker"
        ]
        assert removals, "the scheduler did not notice the killed worker"
        lost = _chunk_keys(removals[0]["processing-tasks"]) | _chunk_keys(
            removals[0]["lost-computed-tasks"]
        )
        assert lost, "the killed worker had none of the run's chunks"
        # The nanny replaced the worker; the run did not wait for that, but it is back.
        client.wait_for_workers(2, timeout=60)
        assert victim_pid not in client.run(os.getpid).values()
    assert len(results) == N
    assert_same_analysis(expected, analyze_results(results))
