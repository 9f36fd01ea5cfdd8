"""Learning runs give a local run's numbers through every cluster entry point.

A run with ``enable_learning`` and a learning strategy carries its learners from
auction to auction, so its chunks cannot run apart: ``run_monte_carlo(client=)``,
``run_monte_carlo_on_cluster``, ``sweep_on_cluster`` and ``simulate --cluster`` run it in
this process, as a local run does, and say so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed.client", reason="the distributed extra is not installed")

from typer.testing import CliRunner

from phantom_auction.cli import app
from phantom_auction.simulation import analyze_results, run_monte_carlo
from phantom_auction.simulation.distributed import (
    run_monte_carlo_on_cluster,
    sweep_on_cluster,
)
from phantom_auction.simulation.parallel import (
    LEARNING_RUNS_LOCALLY,
    carries_learners,
    plan_chunks,
    simulate_chunk,
)
from phantom_auction.simulation.results import MonteCarloResults

from .cluster_helpers import (
    BASELINE_PRICE,
    BASELINE_QUANTITY,
    assert_same_analysis,
    assert_same_columns,
    simulator,
)

# 5,000 auctions in 10 chunks: the learners cross nine chunk boundaries.
N = 5_000
CHUNK = 500


def _learning(**config: Any) -> Any:
    sim = simulator(N, chunk_size=CHUNK, enable_learning=True, **config)
    assert carries_learners(sim)
    return sim


def _chunks_apart(sim: Any) -> MonteCarloResults:
    """What the cluster used to compute: every chunk from the planned learners' state."""
    tasks = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    parts = [simulate_chunk(t.spec, t.chunk_index, t.n_auctions, t.seed_seq) for t in tasks]
    return MonteCarloResults.from_chunks(tasks, parts)


def test_a_learning_run_on_a_cluster_equals_the_local_run_bit_for_bit(
    cluster_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    local_sim = _learning()
    local = run_monte_carlo(local_sim, BASELINE_PRICE, BASELINE_QUANTITY)
    expected = analyze_results(local)
    # The test can fail: chunks run apart (the old cluster path) give other numbers.
    apart = analyze_results(_chunks_apart(_learning()))
    assert apart["improvement_bps"]["mean"] != expected["improvement_bps"]["mean"]

    via_client, on_cluster = _learning(), _learning()
    with caplog.at_level(logging.WARNING):
        runs = {
            "run_monte_carlo(client=)": run_monte_carlo(
                via_client, BASELINE_PRICE, BASELINE_QUANTITY, client=cluster_client
            ),
            "run_monte_carlo_on_cluster": run_monte_carlo_on_cluster(
                on_cluster, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client
            ),
        }
    for name, results in runs.items():
        assert len(results) == N and results.rows_kept, name
        assert_same_columns(local.columns, results.columns)
        assert_same_analysis(expected, analyze_results(results))
    # Each said that it ran here, once.
    notices = [r for r in caplog.records if LEARNING_RUNS_LOCALLY in r.getMessage()]
    assert len(notices) == 2 and all(r.levelno == logging.WARNING for r in notices)
    # No chunk went to the cluster.
    assert not [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]
    # The learners kept what they learnt, as locally: the next runs continue alike.
    again = analyze_results(run_monte_carlo(local_sim, BASELINE_PRICE, BASELINE_QUANTITY))
    for sim in (via_client, on_cluster):
        assert_same_analysis(
            again,
            analyze_results(
                run_monte_carlo_on_cluster(sim, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client)
            ),
        )


def test_summary_only_learning_run_on_a_cluster_equals_the_local_one(cluster_client: Any) -> None:
    local = run_monte_carlo(_learning(), BASELINE_PRICE, BASELINE_QUANTITY, keep_rows=False)
    cluster = run_monte_carlo_on_cluster(
        _learning(), BASELINE_PRICE, BASELINE_QUANTITY, cluster_client, keep_rows=False
    )
    assert not cluster.rows_kept
    assert_same_analysis(analyze_results(local), analyze_results(cluster))


def test_a_sweep_runs_learning_points_here_and_the_others_on_the_cluster(
    cluster_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sims = [
        simulator(2_000, chunk_size=CHUNK, enable_learning=learning)
        for learning in (False, True, False)
    ]
    calls: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING):
        finished = list(
            sweep_on_cluster(
                sims,
                BASELINE_PRICE,
                BASELINE_QUANTITY,
                cluster_client,
                progress=lambda done, total: calls.append((done, total)),
            )
        )
    assert finished[0][0] == 1  # the learning point, run here, comes first
    assert sorted(i for i, _ in finished) == [0, 1, 2]
    assert any(LEARNING_RUNS_LOCALLY in r.getMessage() for r in caplog.records)
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (6_000, 6_000)
    assert {total for _, total in calls} == {6_000}
    fresh = [
        simulator(2_000, chunk_size=CHUNK, enable_learning=learning)
        for learning in (False, True, False)
    ]
    for index, results in finished:
        local = run_monte_carlo(fresh[index], BASELINE_PRICE, BASELINE_QUANTITY)
        assert_same_columns(local.columns, results.columns)
        assert_same_analysis(analyze_results(local), analyze_results(results))
    assert not [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]


def test_closing_a_sweep_with_learners_early_cancels_the_cluster_chunks(
    cluster_client: Any,
) -> None:
    sims = [
        simulator(2_000, chunk_size=CHUNK, enable_learning=learning)
        for learning in (True, False, False)
    ]
    sweep = sweep_on_cluster(sims, BASELINE_PRICE, BASELINE_QUANTITY, cluster_client)
    try:
        first, _ = next(sweep)
        assert first == 0
    finally:
        sweep.close()
    ours = [k for k in cluster_client.futures if str(k).startswith("phantom-auction-chunk-")]
    assert ours == []


@pytest.mark.slow
def test_simulate_with_learning_on_cluster_local_2_prints_the_local_numbers(
    runner: CliRunner, tmp_path: Path
) -> None:
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(f"[simulation]\nchunk_size = {CHUNK}\n")  # 10 chunks, not 1
    args = ["simulate", "--config", str(scenario), "-n", str(N), "--seed", "11", "--json"]
    args.append("--learning")
    on_cluster = runner.invoke(app, [*args, "--cluster", "local:2"])
    assert on_cluster.exit_code == 0, on_cluster.output
    local = runner.invoke(app, args)
    assert local.exit_code == 0, local.output
    two = runner.invoke(app, [*args, "--workers", "2"])
    assert two.exit_code == 0, two.output
    assert on_cluster.stdout == local.stdout == two.stdout
    # It said what it did, on stderr (stdout is the JSON).
    assert LEARNING_RUNS_LOCALLY in on_cluster.stderr
    assert LEARNING_RUNS_LOCALLY not in local.stderr


def test_simulate_with_learning_on_a_cluster_does_not_start_it(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run will not use the cluster, so starting one (or joining a scheduler) is
    # only cost: a dead scheduler address must not even be tried.
    import phantom_auction.simulation.distributed as distributed

    def no_cluster(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a cluster was opened: {args} {kwargs}")

    monkeypatch.setattr(distributed, "open_client", no_cluster)
    args = ["simulate", "-n", "500", "--seed", "3", "--json", "--learning"]
    for where in (["--cluster", "local:2"], ["--scheduler", "tcp://127.0.0.1:9"]):
        result = runner.invoke(app, [*args, *where])
        assert result.exit_code == 0, result.output
        assert LEARNING_RUNS_LOCALLY in result.stderr
    plain = runner.invoke(app, [*args[:-1], "--cluster", "local:2"])
    assert plain.exit_code != 0 and "a cluster was opened" in repr(plain.exception)
