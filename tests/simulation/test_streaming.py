"""Streaming aggregates: exact merges, and quantiles within the stated error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from phantom_auction.simulation import QuantileSketch, StreamingSummary
from phantom_auction.simulation.streaming import MetricSummary

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(1, 400), elements=finite),
    q=st.floats(0.0, 1.0),
)
def test_sketch_quantile_is_within_alpha_of_the_lower_order_statistic(
    values: np.ndarray, q: float
) -> None:
    sketch = QuantileSketch()
    sketch.add(values)
    exact = float(np.quantile(values, q, method="lower"))
    got = sketch.quantile(q)
    tolerance = sketch.alpha * abs(exact) if abs(exact) >= 1e-12 else 1e-12
    assert abs(got - exact) <= tolerance * (1 + 1e-9)


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(np.float64, st.integers(2, 300), elements=finite),
    cut=st.integers(0, 300),
)
def test_merging_two_halves_equals_summarising_the_whole(values: np.ndarray, cut: int) -> None:
    cut = min(cut, values.size)
    whole = MetricSummary.of(values)
    merged = MetricSummary.of(values[:cut]).merge(MetricSummary.of(values[cut:]))
    assert merged.count == whole.count == values.size
    assert merged.minimum == whole.minimum and merged.maximum == whole.maximum
    assert merged.sketch == whole.sketch  # bucket counts add exactly
    assert merged.mean == pytest.approx(float(values.mean()), rel=1e-9, abs=1e-9)
    assert merged.std == pytest.approx(float(values.std(ddof=1)), rel=1e-7, abs=1e-6)


def test_nan_is_counted_apart_and_summary_merges_win_counts() -> None:
    cols = {
        "winner_index": np.array([0, 1, -1, -2, 0], dtype=np.int32),
        "mev_capture_rate": np.array([0.5, math.nan, 0.25, math.nan, 1.0]),
    }
    s = StreamingSummary.from_columns(cols, ("a", "b"))
    assert s.wins.tolist() == [2, 1, 1, 1]
    m = s.metrics["mev_capture_rate"]
    assert (m.count, m.nan_count) == (3, 2)
    assert m.stats()["mean"] == pytest.approx(0.583333333333)
    both = s.merge(s)
    assert both.num_auctions == 10 and both.wins.tolist() == [4, 2, 2, 2]
    with pytest.raises(ValueError, match="bidders"):
        s.merge(StreamingSummary.from_columns(cols, ("a", "c")))
    empty = MetricSummary.of(np.array([math.nan]))
    assert math.isnan(empty.stats()["mean"]) and math.isnan(empty.stats()["median"])


def test_a_rare_event_rate_gets_wilsons_interval_with_near_nominal_coverage() -> None:
    """The audit: a 0.15 % phantom win rate in runs of 1,000 auctions was covered 81 % of
    the time by the t interval, which is [0, 0] whenever no phantom won (19 % of runs).
    Wilson's score interval covers it ~95 % and never collapses."""
    from phantom_auction.simulation.intervals import finite_stats

    rate, n, runs = 0.0015, 1_000, 2_000
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(runs):
        column = rng.random(n) < rate  # an event: a bool column, as phantom_won is
        stats = finite_stats(column)
        assert stats["ci95_low"] <= stats["mean"] <= stats["ci95_high"]
        assert stats["ci95_low"] >= 0.0 and stats["ci95_high"] <= 1.0
        covered += stats["ci95_low"] <= rate <= stats["ci95_high"]
        # The streaming summary (runs too large to keep) gives the same interval.
        streamed = MetricSummary.of(column).stats()
        assert streamed["ci95_low"] == pytest.approx(stats["ci95_low"], abs=1e-12)
        assert streamed["ci95_high"] == pytest.approx(stats["ci95_high"], abs=1e-12)
    assert 0.92 <= covered / runs <= 0.99, covered / runs
    none = finite_stats(np.zeros(n, dtype=bool))
    assert none["ci95_low"] == 0.0
    assert none["ci95_high"] == pytest.approx(1.959964**2 / (n + 1.959964**2), rel=1e-6)
    # Not an event: Student's t as before (symmetric about the mean).
    other = finite_stats(np.array([0.0, 0.5, 1.0, 1.0]))
    assert other["mean"] - other["ci95_low"] == pytest.approx(other["ci95_high"] - other["mean"])


def test_wilsons_interval_is_for_events_not_for_numbers_that_happen_to_be_0_or_1() -> None:
    """The statistics audit: any column whose values were all 0 or 1 got Wilson's
    interval, whatever its unit: 0 bps of improvement in every auction had [0, 0.0126]
    bps, and {0 x 199, 1} a Wilson interval where {0 x 199, 1.5} had a t one. Only a
    bool column (an event) gets Wilson's now, on both paths."""
    from phantom_auction.simulation.intervals import finite_stats

    zeros = np.zeros(300)
    for column in (zeros, np.append(np.zeros(199), 1.0), np.ones(40)):
        exact, streamed = finite_stats(column), MetricSummary.of(column).stats()
        for stats in (exact, streamed):
            centre = stats["mean"]
            assert stats["ci95_high"] - centre == pytest.approx(centre - stats["ci95_low"])
    assert (finite_stats(zeros)["ci95_low"], finite_stats(zeros)["ci95_high"]) == (0.0, 0.0)
    event = np.append(np.zeros(199, dtype=bool), True)
    exact, streamed = finite_stats(event), MetricSummary.of(event).stats()
    merged = MetricSummary().merge(MetricSummary.of(event)).stats()
    for stats in (exact, streamed, merged):
        assert 0.0 < stats["ci95_low"] < stats["mean"] - 0.001  # Wilson's, asymmetric
        assert stats["ci95_low"] == pytest.approx(exact["ci95_low"], abs=1e-12)


@given(hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)))
@settings(max_examples=60, deadline=None)
def test_streamed_quantiles_stay_within_the_exact_extremes(values: np.ndarray) -> None:
    # The sketch's bucket values can lie just past min or max (p95 = 50.049 with a max
    # of 50.0 at the bid cap, in the audit).
    stats = MetricSummary.of(values).stats()
    for q in ("p05", "median", "p95"):
        assert stats["min"] <= stats[q] <= stats["max"], (q, stats)


def _analysed(keep_rows: bool, workers: int = 1, **fields: Any) -> dict[str, Any]:
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        analyze_results,
        run_monte_carlo,
    )

    config = SimulationConfig(seed=5, num_real_bidders=3, **fields)
    simulator = PhantomSimulator(config, MarketConditions())
    run = run_monte_carlo(simulator, 100.0, 1000.0, keep_rows=keep_rows, workers=workers)
    return analyze_results(run)


def test_a_learning_run_without_rows_gets_batch_means_over_its_chunks() -> None:
    """The API audit: a learning run that kept no rows (every run over 10 M auctions)
    reported the independent-auctions interval, ~7x too narrow, and said so."""
    fields = {"num_simulations": 20_000, "chunk_size": 1_000, "enable_learning": True,
              "real_strategy": "adaptive"}  # fmt: skip
    kept, summarised = _analysed(True, **fields), _analysed(False, **fields)
    assert summarised["ci_method"] == "batch means (20 batches of whole chunks, Student t)"
    for metric in ("improvement_bps", "real_fill_fraction", "welfare"):
        # 20 chunks of 1,000 auctions: the rows' 20 batches, so the same interval.
        for key in ("mean", "ci95_low", "ci95_high"):
            assert summarised[metric][key] == pytest.approx(kept[metric][key], rel=1e-9), metric
    # One chunk: no batches to be had, and it says so (not an independent interval).
    alone = _analysed(False, **{**fields, "chunk_size": 65_536})
    assert alone["ci_method"].startswith("not available: the auctions depend on each other")
    assert math.isnan(alone["improvement_bps"]["ci95_low"])


def test_a_ratio_of_sums_without_rows_gets_an_interval() -> None:
    """The API audit: without rows, mev_capture_rate and bid_shading had no interval."""
    fields = {"num_simulations": 20_000, "chunk_size": 1_000}
    summarised = _analysed(False, **fields)
    assert summarised["ci_method"] == "independent auctions (Student t)"
    kept = _analysed(True, **fields)
    for metric in ("mev_capture_rate", "bid_shading"):
        got, want = summarised[metric], kept[metric]
        assert got["mean"] == pytest.approx(want["mean"], rel=1e-12)
        assert got["ci95_low"] < got["mean"] < got["ci95_high"]
        # Batch means over 20 chunks against the rows' own interval: the same width
        # within the batch estimate's own error (~1/sqrt(2 x 19)).
        ratio = (got["ci95_high"] - got["ci95_low"]) / (want["ci95_high"] - want["ci95_low"])
        assert 0.5 < ratio < 2.0, (metric, ratio)
    assert summarised == _analysed(False, workers=2, **fields)  # whatever the workers


def test_batches_asked_of_a_run_without_rows_are_used() -> None:
    """The review: a summary-only run reduced ``batches`` to yes or no, always 20."""
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        analyze_results,
        run_monte_carlo,
    )

    config = SimulationConfig(seed=5, num_simulations=10_000, chunk_size=1_000)
    run = run_monte_carlo(
        PhantomSimulator(config, MarketConditions()), 100.0, 1000.0, keep_rows=False
    )
    assert analyze_results(run, batches=4)["ci_method"] == (
        "batch means (4 batches of whole chunks, Student t)"
    )
    assert analyze_results(run)["ci_method"] == "independent auctions (Student t)"
    # 20 asked of 10 chunks: one batch a chunk.
    assert analyze_results(run, batches=20)["ci_method"].startswith("batch means (10 batches")


def test_blocks_past_the_most_kept_merge_neighbours_and_keep_every_sum() -> None:
    from phantom_auction.simulation.streaming import MAX_BLOCKS

    summary = StreamingSummary(("a",))
    for i in range(2 * MAX_BLOCKS + 3):
        columns = {"winner_index": np.array([0]), "x": np.array([float(i)])}
        summary = summary.merge(StreamingSummary.from_columns(columns, ["a"]))
    assert MAX_BLOCKS // 2 <= len(summary.blocks) <= MAX_BLOCKS
    assert sum(n for n, _ in summary.blocks) == 2 * MAX_BLOCKS + 3
    # In order: each block's values come after the one before's.
    means = [sums["x"][1] / sums["x"][0] for _, sums in summary.blocks]
    assert means == sorted(means)
    assert sum(sums["x"][1] for _, sums in summary.blocks) == sum(range(2 * MAX_BLOCKS + 3))


@given(
    hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e3, 1e3)),
    st.integers(0, 60),
)
@settings(max_examples=60, deadline=None)
def test_pair_co_moments_merge_exactly_in_any_split(values: np.ndarray, cut: int) -> None:
    """A ratio headline's co-moments merged over two chunks equal those of the whole."""
    from phantom_auction.simulation.streaming import PairSummary

    x = values
    y = np.abs(values[::-1]) + 1.0
    x = np.where(np.arange(x.size) % 7 == 3, np.nan, x)  # undefined in some auctions
    cut = min(cut, x.size)
    whole = PairSummary.of(x, y)
    merged = PairSummary.of(x[:cut], y[:cut]).merge(PairSummary.of(x[cut:], y[cut:]))
    assert merged.count == whole.count
    for name in ("mean_x", "mean_y", "cxx", "cyy", "cxy"):
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-9, abs=1e-6)


def test_the_real_fill_fraction_gets_an_interval_that_covers_its_mean() -> None:
    """The coverage audit: the share of the order real bids fill is 1 in ~99.5 % of the
    defaults' auctions and 0 in nearly all others. Student's t gave [1, 1] to every run
    of 100 auctions without an unfilled one (61 % of them) and covered the mean in 35 %
    of 400 runs. As a share in [0, 1] it gets Wilson's interval, on both paths: the
    analysis of kept rows and the streaming summary of a run that keeps none."""
    from phantom_auction.simulation import (
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
        analyze_results,
        run_monte_carlo,
    )

    market = MarketConditions()

    def run(n: int, seed: int, keep_rows: bool = False) -> Any:
        sim = PhantomSimulator(SimulationConfig(num_simulations=n, seed=seed), market)
        return run_monte_carlo(sim, 100.0, 1000.0, workers=1, keep_rows=keep_rows)

    truth = run(200_000, 7).summary.stats("real_fill_fraction")["mean"]
    assert 0.99 < truth < 1.0  # the case above: a share nearly always 1
    runs, covered, whole = 200, 0, 0
    for seed in range(runs):
        results = run(100, 1_000 + seed, keep_rows=seed < 20)
        stats = results.summary.stats("real_fill_fraction")
        assert stats["ci95_low"] <= stats["mean"] <= stats["ci95_high"] <= 1.0
        whole += stats["mean"] == 1.0
        covered += stats["ci95_low"] <= truth <= stats["ci95_high"]
        if seed < 20:  # kept rows: the same interval from the rows themselves
            rows = analyze_results(results)["real_fill_fraction"]
            assert rows["ci95_low"] == pytest.approx(stats["ci95_low"], abs=1e-12)
            assert rows["ci95_high"] == pytest.approx(stats["ci95_high"], abs=1e-12)
    assert whole > runs // 3  # the runs where t collapsed to [1, 1]
    assert 0.92 <= covered / runs <= 1.0, covered / runs
