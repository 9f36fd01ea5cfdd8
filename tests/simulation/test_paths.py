"""The fast path equals the object path, and results never depend on the worker count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import load_config
from phantom_auction.simulation import (
    MarketConditions,
    MonteCarloResults,
    PhantomSimulator,
    RowsNotKept,
    SimulationConfig,
    StreamingSummary,
    analyze_results,
    parallel,
    plan_chunks,
    run_monte_carlo,
    run_simulation,
    simulate_chunk,
    simulate_chunk_objects,
    standing,
    summarize_chunk,
)

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY, assert_columns_equal

CASES = {
    "default vcg": SimulationConfig(seed=3),
    "vickrey": SimulationConfig(seed=4, mechanism="second_price"),
    "uniform": SimulationConfig(seed=5, mechanism="uniform"),
    "pay-as-bid": SimulationConfig(seed=6, mechanism="first_price"),
    "learning": SimulationConfig(seed=7, enable_learning=True),
    "textbook": SimulationConfig(
        seed=8,
        num_phantom_bidders=0,
        value_distribution=("lognormal", 3.0, 0.6),
        mechanism="first_price",
        real_strategy="equilibrium",
    ),
    "many bidders, negative correlation": SimulationConfig(seed=9, num_real_bidders=12),
    "floor policy, fee-weighted score": SimulationConfig(
        seed=10,
        auction_config=load_config(
            env={
                "AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY": '"floor"',
                "AUCTION_AUCTION_MECHANICS_FEE_WEIGHT": "0.5",
            }
        ),
    ),
    "floor policy, uniform": SimulationConfig(
        seed=11,
        mechanism="uniform",
        auction_config=load_config(env={"AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY": '"floor"'}),
    ),
}
MARKETS = {"many bidders, negative correlation": MarketConditions(correlation=-0.05)}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_object_path(case: str) -> None:
    sim = PhantomSimulator(CASES[case], MARKETS.get(case, MarketConditions(trend=0.2)))
    task = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY, num_simulations=700)[0]
    args = (task.spec, task.chunk_index, task.n_auctions, task.seed_seq)
    fast = simulate_chunk(*args)
    assert_columns_equal(fast, simulate_chunk_objects(*args))
    if CASES[case].phantom_policy == "floor":
        assert not fast["phantom_won"].any()  # phantoms never take volume


def test_fast_path_equals_object_path_with_a_custom_scalar_strategy() -> None:
    from .test_seed_examples import DuckTypedStrategy, MyCustomStrategy

    sim = PhantomSimulator(SimulationConfig(seed=12))
    sim.strategies += [MyCustomStrategy(1.5), DuckTypedStrategy()]
    task = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY, num_simulations=500)[0]
    args = (task.spec, 0, task.n_auctions, task.seed_seq)
    assert_columns_equal(simulate_chunk(*args), simulate_chunk_objects(*args))


def test_run_simulation_is_the_first_auction_of_a_chunk_with_the_same_seed() -> None:
    config = SimulationConfig(seed=42)
    fresh = PhantomSimulator(config)
    result = run_simulation(fresh, BASELINE_PRICE, BASELINE_QUANTITY)
    task = plan_chunks(PhantomSimulator(config), BASELINE_PRICE, BASELINE_QUANTITY)[0]
    cols = simulate_chunk(task.spec, 0, 1, np.random.SeedSequence(42))
    for key, value in result.row.items():
        np.testing.assert_allclose(cols[key][0], value, rtol=1e-9, atol=1e-7, err_msg=key)
    # Successive calls continue the stream: a different auction.
    second = run_simulation(fresh, BASELINE_PRICE, BASELINE_QUANTITY)
    assert second.row["true_price"] != result.row["true_price"]


@pytest.mark.slow
def test_workers_do_not_change_results() -> None:
    config = SimulationConfig(
        seed=77, num_simulations=5_000, chunk_size=1_024, enable_learning=True
    )

    # Learners keep what they learn across runs (issue 11): each run gets a fresh simulator.
    def sim() -> PhantomSimulator:
        return PhantomSimulator(config, MarketConditions(volatility=0.5))

    one = run_monte_carlo(sim(), BASELINE_PRICE, BASELINE_QUANTITY, workers=1)
    two = run_monte_carlo(sim(), BASELINE_PRICE, BASELINE_QUANTITY, workers=2)
    assert len(one.tasks) == 5
    assert_columns_equal(one.columns, two.columns, exact=True)
    learnt = sim()
    s1 = run_monte_carlo(learnt, BASELINE_PRICE, BASELINE_QUANTITY, workers=1, keep_rows=False)
    s2 = run_monte_carlo(sim(), BASELINE_PRICE, BASELINE_QUANTITY, workers=2, keep_rows=False)
    assert s1.summary == s2.summary  # dataclass equality: every count and float
    assert analyze_results(s1) == analyze_results(s2)
    # The simulator's learners keep what they learnt over all 5 chunks of the run.
    learners = [s for s in learnt.strategies if hasattr(s, "auctions_learnt")]
    assert learners and all(s.auctions_learnt == 5_000 for s in learners)


def test_same_seed_same_results_and_different_seed_different() -> None:
    config = SimulationConfig(seed=5, num_simulations=800)
    a = run_monte_carlo(PhantomSimulator(config), BASELINE_PRICE, BASELINE_QUANTITY)
    b = run_monte_carlo(PhantomSimulator(config), BASELINE_PRICE, BASELINE_QUANTITY)
    c = run_monte_carlo(
        PhantomSimulator(dataclasses.replace(config, seed=6)), BASELINE_PRICE, BASELINE_QUANTITY
    )
    assert_columns_equal(a.columns, b.columns, exact=True)
    assert not np.array_equal(a.columns["true_price"], c.columns["true_price"])
    assert a.seed_entropy == 5
    # Without a seed the entropy is recorded, and rerunning with it reproduces the run.
    free = run_monte_carlo(
        PhantomSimulator(dataclasses.replace(config, seed=None)), BASELINE_PRICE, BASELINE_QUANTITY
    )
    again = run_monte_carlo(
        PhantomSimulator(dataclasses.replace(config, seed=free.seed_entropy)),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
    )
    assert_columns_equal(free.columns, again.columns, exact=True)


def test_chunks_are_planned_with_fixed_sizes_and_spawned_seeds() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=3, num_simulations=2_500, chunk_size=1_000))
    tasks = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert [t.n_auctions for t in tasks] == [1_000, 1_000, 500]
    children = np.random.SeedSequence(3).spawn(3)
    assert [t.seed_seq.spawn_key for t in tasks] == [c.spawn_key for c in children]
    import pickle

    restored = pickle.loads(pickle.dumps(tasks[1]))
    assert_columns_equal(
        simulate_chunk(restored.spec, 1, restored.n_auctions, restored.seed_seq),
        simulate_chunk(tasks[1].spec, 1, tasks[1].n_auctions, tasks[1].seed_seq),
        exact=True,
    )
    # The Dask path: the same tasks, merged by from_chunks.
    merged = MonteCarloResults.from_chunks(
        tasks, [simulate_chunk(t.spec, t.chunk_index, t.n_auctions, t.seed_seq) for t in tasks]
    )
    # In this process, the chunks write their rows into the run's columns: the same rows
    # and dtypes as the chunks' own columns joined.
    direct = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert_columns_equal(merged.columns, direct.columns, exact=True)
    assert {k: v.dtype for k, v in merged.columns.items()} == {
        k: v.dtype for k, v in direct.columns.items()
    }
    summaries = [summarize_chunk(t.spec, t.chunk_index, t.n_auctions, t.seed_seq) for t in tasks]
    assert (
        MonteCarloResults.from_chunks(tasks, summaries).summary
        == run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, keep_rows=False).summary
    )


def test_progress_and_object_engine() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=2, num_simulations=300, chunk_size=128))
    seen: list[tuple[int, int]] = []
    fast = run_monte_carlo(
        sim, BASELINE_PRICE, BASELINE_QUANTITY, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(128, 300), (256, 300), (300, 300)]
    slow = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, engine="object")
    assert_columns_equal(fast.columns, slow.columns)


def test_summary_only_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = PhantomSimulator(SimulationConfig(seed=2, num_simulations=3_000, chunk_size=1_000))
    rows = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    monkeypatch.setattr(parallel, "STREAMING_THRESHOLD", 2_000)
    summary_only = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert not summary_only.rows_kept and rows.rows_kept
    with pytest.raises(RowsNotKept):
        summary_only.to_frame()
    assert isinstance(summary_only.summary, StreamingSummary)
    exact, sketched = analyze_results(rows), analyze_results(summary_only)
    for metric in ("improvement_bps", "bid_shading", "clearing_price", "welfare"):
        for stat in ("mean", "std", "min", "max", "count"):
            assert sketched[metric][stat] == pytest.approx(exact[metric][stat], rel=1e-9)
        values = rows.columns[metric][np.isfinite(rows.columns[metric])]
        for q, name in ((0.05, "p05"), (0.5, "median"), (0.95, "p95")):
            lower = np.quantile(values, q, method="lower")
            assert abs(sketched[metric][name] - lower) <= 0.001 * abs(lower) + 1e-12
    assert sketched["strategy_performance"] == exact["strategy_performance"]
    # A summary-only run can still show any auction: it is replayed.
    assert summary_only[1234].row["true_price"] == pytest.approx(rows.columns["true_price"][1234])


@settings(max_examples=15, deadline=None)
@given(
    mechanism=st.sampled_from(["vcg", "vickrey", "uniform", "discriminatory"]),
    real=st.integers(0, 7),
    phantoms=st.integers(0, 6),
    volatility=st.floats(0.0, 1.0),
    liquidity=st.floats(0.05, 1.0),
    trend=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**31),
)
def test_invariants_and_path_agreement_for_any_setup(
    mechanism: str,
    real: int,
    phantoms: int,
    volatility: float,
    liquidity: float,
    trend: float,
    seed: int,
) -> None:
    sim = PhantomSimulator(
        SimulationConfig(
            num_real_bidders=real, num_phantom_bidders=phantoms, mechanism=mechanism, seed=seed
        ),
        MarketConditions(volatility=volatility, liquidity=liquidity, trend=trend),
    )
    task = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY, num_simulations=60)[0]
    args = (task.spec, 0, task.n_auctions, task.seed_seq)
    cols = simulate_chunk(*args)
    assert_columns_equal(cols, simulate_chunk_objects(*args))
    imp = cols["improvement_bps"]
    assert np.all((imp >= -1e-9) & (imp <= 50.0 + 1e-9))
    assert np.all(cols["real_fill_fraction"] <= 1.0 + 1e-12)
    # Not clipped (results.py): above 1 when a filler pays more than the best real value.
    available = cols["available_surplus_bps"]
    capture = cols["mev_capture_rate"]
    assert np.all(np.isnan(capture) == (available <= 0.0))
    has = available > 0.0
    assert np.all(capture[has] >= 0.0)
    np.testing.assert_allclose(capture[has], imp[has] / available[has], rtol=1e-12)
    welfare = cols["welfare_improvement"][np.isfinite(cols["welfare_improvement"])]
    assert np.all(welfare <= 1.0 + 1e-9)
    # Built-in strategies never bid above their value: fillers never lose money.
    for name, values in cols.items():
        if name.startswith("profit_bps:"):
            assert np.all(values >= -1e-7), name
    assert np.array_equal(cols["phantom_won"], cols["winner_index"] == -1)
    assert np.all(cols["num_phantom_bids"] <= phantoms)


@pytest.mark.parametrize("window_ms", [100.0, 80.0, 7.3, 1e-3, 333.3])
def test_a_bids_first_grid_point_is_searchsorteds(window_ms: float) -> None:
    # The convergence paths place each bid at the first grid time at or after it by
    # arithmetic on the even grid: the same index as a binary search, at the grid's
    # times, one ulp either side of them and anywhere in the window.
    env = PhantomSimulator(SimulationConfig(seed=1)).environment(100.0, 1000.0)
    arrays = standing.arrays_of(dataclasses.replace(env, window_ms=window_ms))
    grid = arrays.time_grid_ms
    times = np.concatenate(
        [
            np.random.default_rng(0).random(100_000) * window_ms,
            grid,
            np.nextafter(grid, np.inf),
            np.nextafter(grid[1:], -np.inf),
        ]
    )
    np.testing.assert_array_equal(
        standing.first_point_at_or_after(arrays, times), np.searchsorted(grid, times)
    )
