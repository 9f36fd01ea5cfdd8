"""analyze_results, calibrate_parameters and backtest_strategy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal, stats

from phantom_auction import InvalidBidParameters
from phantom_auction.simulation import (
    ConservativeStrategy,
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
    analyze_results,
    backtest_strategy,
    calibrate_parameters,
    create_strategy,
    run_monte_carlo,
    run_simulation,
)
from phantom_auction.simulation.analysis import _ratio_of_sums
from phantom_auction.simulation.results import METRIC_COLUMNS
from phantom_auction.simulation.streaming import RATIO_HEADLINES

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY

STATS = {
    "mean",
    "ci95_low",
    "ci95_high",
    "sem",
    "median",
    "std",
    "min",
    "max",
    "p05",
    "p95",
    "count",
}


def test_analysis_shape_and_consistency() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=4, num_simulations=1_200), MarketConditions())
    results = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    analysis = analyze_results(results)
    for metric in (*METRIC_COLUMNS, "clearing_price"):
        ratio = {"per_auction_mean"} if metric in RATIO_HEADLINES else set()
        assert set(analysis[metric]) == STATS | ratio, metric
        s = analysis[metric]
        assert s["min"] <= s["p05"] <= s["median"] <= s["p95"] <= s["max"]
    cols = results.columns
    assert analysis["improvement_bps"]["mean"] == pytest.approx(cols["improvement_bps"].mean())
    assert analysis["phantom_won"]["mean"] == pytest.approx(cols["phantom_won"].mean())
    shares = analysis["strategy_performance"]
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["phantom"] == pytest.approx(cols["phantom_won"].mean())
    assert 0.0 <= analysis["winner_diversity"] <= 1.0
    assert analysis["num_auctions"] == 1_200
    details = analysis["strategy_details"]
    assert set(details) == set(results.labels)
    # The objects' analysis agrees with the columns' analysis.
    from_objects = analyze_results(list(results)[:300])
    from_columns = analyze_results(results)
    assert from_objects["num_auctions"] == 300
    assert set(from_objects["strategy_performance"]) <= set(from_columns["strategy_performance"])
    head = {k: v[:300] for k, v in cols.items()}
    assert from_objects["improvement_bps"]["mean"] == pytest.approx(head["improvement_bps"].mean())


def test_each_win_share_has_a_wilson_interval_or_batch_means_for_learners() -> None:
    """The strategy table's shares had no interval (the statistician's audit): two
    strategies 2 points apart in 1,000 auctions could not be told apart from noise."""
    sim = PhantomSimulator(SimulationConfig(seed=5, num_simulations=1_500), MarketConditions())
    rows = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    summary_only = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, keep_rows=False)
    analysis = analyze_results(rows)
    shares, intervals = analysis["strategy_performance"], analysis["strategy_performance_ci95"]
    assert set(intervals) == set(shares)
    for name, share in shares.items():
        low, high = intervals[name]["ci95_low"], intervals[name]["ci95_high"]
        assert 0.0 <= low <= share <= high <= 1.0, name
        # Wilson's score interval: the share's z-score at either end is 1.96.
        for end in (low, high):
            if end not in (0.0, 1.0):
                z = abs(share - end) / math.sqrt(end * (1 - end) / 1_500)
                assert z == pytest.approx(1.959964, rel=1e-6), name
    # A run that kept no rows: the same intervals from its counts.
    assert analyze_results(summary_only)["strategy_performance_ci95"] == intervals
    # Dependent auctions: batch means over the rows' winner, none without rows.
    won = np.isin(rows.columns["winner_index"], [0]).astype(float)
    label = rows.labels[0]
    batches = analyze_results(rows, batches=10)["strategy_performance_ci95"][label]
    means = won.reshape(10, -1).mean(axis=1)
    half = stats.t.ppf(0.975, 9) * means.std(ddof=1) / math.sqrt(10)
    assert batches["ci95_low"] == pytest.approx(won.mean() - half)
    assert batches["ci95_high"] == pytest.approx(won.mean() + half)
    without_rows = analyze_results(summary_only, batches=2)["strategy_performance_ci95"]
    assert all(math.isnan(v["ci95_low"]) for v in without_rows.values())


def test_a_list_of_learning_auctions_gets_batch_means() -> None:
    """The API audit: the list of a learning run's auctions was analysed as independent
    (as a run's results are not)."""
    config = SimulationConfig(
        seed=1, enable_learning=True, real_strategy="adaptive", num_real_bidders=3
    )
    sim = PhantomSimulator(config)
    rows = [run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY) for _ in range(200)]
    assert all(r.execution_trace["learning"] for r in rows)
    analysis = analyze_results(rows)
    assert analysis["ci_method"].startswith("batch means")
    assert analysis["improvement_bps"] == analyze_results(rows, batches=20)["improvement_bps"]
    assert analyze_results(rows, batches=0)["ci_method"].startswith("independent")
    fixed = PhantomSimulator(SimulationConfig(seed=1, num_real_bidders=3))
    rows = [run_simulation(fixed, BASELINE_PRICE, BASELINE_QUANTITY) for _ in range(50)]
    assert not rows[0].execution_trace["learning"]
    assert analyze_results(rows)["ci_method"].startswith("independent")


def test_analysis_of_run_simulation_results() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=8, num_real_bidders=3, real_strategy="truthful"))
    rows = [run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY) for _ in range(100)]
    analysis = analyze_results(rows)
    assert analysis["num_auctions"] == 100
    assert set(analysis["strategy_performance"]) == {"truthful", "phantom", "none"}
    # Truthful bids shade only where the value exceeds the 50 bps cap.
    assert analysis["bid_shading"]["median"] == pytest.approx(0.0, abs=1e-9)
    assert analysis["bid_shading"]["min"] >= -1e-9
    with pytest.raises(InvalidBidParameters, match="results"):
        analyze_results([])


def test_winner_diversity_extremes() -> None:
    one_winner = PhantomSimulator(
        SimulationConfig(
            seed=1,
            num_simulations=500,
            num_phantom_bidders=0,
            value_distribution=("uniform", 0, 1),
            real_strategy="truthful",
            num_real_bidders=1,
        )
    )
    a = analyze_results(run_monte_carlo(one_winner, BASELINE_PRICE, BASELINE_QUANTITY))
    assert a["winner_diversity"] == 0.0 or math.isnan(a["winner_diversity"])
    fair = PhantomSimulator(
        SimulationConfig(
            seed=1,
            num_simulations=20_000,
            num_phantom_bidders=0,
            value_distribution=("uniform", 0, 100),
            real_strategy="truthful",
            num_real_bidders=4,
        )
    )
    b = analyze_results(run_monte_carlo(fair, BASELINE_PRICE, BASELINE_QUANTITY))
    assert b["winner_diversity"] > 0.999  # symmetric bidders win equally often
    # One auction, one winner among five: 0, not -0.0 (the statistics audit).
    once = run_monte_carlo(
        PhantomSimulator(SimulationConfig(seed=1, num_simulations=1, num_phantom_bidders=0)),
        BASELINE_PRICE,
        BASELINE_QUANTITY,
    )
    diversity = analyze_results(once)["winner_diversity"]
    assert diversity == 0.0 and math.copysign(1.0, diversity) == 1.0


def test_calibration_recovers_the_generating_parameters() -> None:
    rng = np.random.default_rng(7)
    low, high = 10.0, 50.0
    true_mean, true_sd = 28.0, 9.0
    improvements = stats.truncnorm(
        (low - true_mean) / true_sd, (high - true_mean) / true_sd, loc=true_mean, scale=true_sd
    ).rvs(20_000, random_state=rng)
    # Prices with per-auction log returns of mean 4 bps and sd 12 bps.
    returns_bps = rng.normal(4.0, 12.0, 5_000)
    prices = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(returns_bps))) / 1e4)
    history = {
        "improvement_bps": np.concatenate((improvements, [70.0, math.nan])),
        "price": prices,
        "spread_bps": np.full(10, 6.0),
        "volume": np.array([1e5, 2e5, 3e5]),
        "ignored": np.zeros(3),
    }
    sim = PhantomSimulator(SimulationConfig(seed=1), MarketConditions())
    calibrated = calibrate_parameters(sim, history)
    model = calibrated.config.resolved_phantom_model
    assert model.mean_bps == pytest.approx(true_mean, abs=0.4)
    assert model.sd_bps == pytest.approx(true_sd, abs=0.4)
    assert calibrated.market.volatility == pytest.approx(12.0 / 40.0, abs=0.02)
    assert calibrated.market.trend == pytest.approx(4.0 / 20.0, abs=0.05)
    assert calibrated.market.spread == 6.0 and calibrated.market.volume == 2e5
    assert calibrated.calibration is not None
    assert calibrated.calibration["improvement_samples"] == 20_000
    assert sim.market == MarketConditions()  # the input is left alone
    assert len(calibrated.strategies) == len(sim.strategies)
    with pytest.raises(InvalidBidParameters, match="historical_data"):
        calibrate_parameters(sim, {"nothing": [1, 2]})
    with pytest.raises(InvalidBidParameters, match="price"):
        calibrate_parameters(sim, {"price": [100.0, -1.0, 3.0]})


def test_a_fit_the_data_cannot_pin_down_stays_within_the_bounds_or_is_refused() -> None:
    """The API audit: [10, 10, 10] gave a mean of -503.65 bps and an sd of 5e-152,
    [10, 20, ..., 50] an sd of 1.5e17, [20, 20, 20] a ZeroDivisionError."""
    sim = PhantomSimulator(SimulationConfig(seed=1))

    def fit(values: list[float]) -> tuple[float, float]:
        model = calibrate_parameters(sim, {"improvement_bps": values}).config
        return model.resolved_phantom_model.mean_bps, model.resolved_phantom_model.sd_bps

    for same in ([10.0, 10.0, 10.0], [20.0, 20.0, 20.0], [-50.0, -40.0, 60.0, 30.0]):
        with pytest.raises(InvalidBidParameters, match=r"1 distinct': needs at least 2 distinct"):
            fit(same)
    # Evenly spread: the widest sd (10 widths), all but uniform on the bounds.
    mean, sd = fit([10.0, 20.0, 30.0, 40.0, 50.0])
    assert 10.0 <= mean <= 50.0 and sd == pytest.approx(400.0)
    # Falling from the lower bound: the mean at that bound, a half-normal's sd.
    mean, sd = fit([10.0, 20.0, 30.0])
    assert mean == pytest.approx(10.0) and 5.0 < sd < 30.0
    # And the fit is the likelihood's maximum over the allowed (mean, sd).
    x = np.array([10.0, 20.0, 30.0])

    def loglik(m: float, s: float) -> float:
        return float(stats.truncnorm((10 - m) / s, (50 - m) / s, loc=m, scale=s).logpdf(x).sum())

    grid = max(loglik(m, s) for m in np.linspace(10, 50, 41) for s in np.geomspace(0.04, 400, 60))
    assert loglik(mean, sd) >= grid - 1e-6


def test_calibration_accepts_a_data_frame() -> None:
    import pandas as pd

    frame = pd.DataFrame({"improvement_bps": np.linspace(12, 45, 200)})
    calibrated = calibrate_parameters(PhantomSimulator(SimulationConfig()), frame)
    assert 12 < calibrated.config.resolved_phantom_model.mean_bps < 45


def test_backtest_strategy_across_scenarios() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=5, num_simulations=1_500))
    report = backtest_strategy(
        sim,
        ConservativeStrategy(),
        {"calm": {}, "volatile": {"volatility": 0.9}, "trending": MarketConditions(trend=1.0)},
    )
    assert set(report) == {"calm", "volatile", "trending"}
    # The default mix already has a conservative bidder: the tested one gets its own label.
    assert report["volatile"]["win_share"] == 0.0
    assert math.isnan(report["volatile"]["bid_shading"])
    assert report["calm"]["win_share"] > 0.0
    assert report["calm"]["bid_shading"] == pytest.approx(0.2, abs=0.2)
    for row in report.values():
        assert row["num_auctions"] == 1_500
        assert row["profit_bps"] >= 0.0
    listed = backtest_strategy(
        sim, create_strategy("truthful"), [MarketConditions()], num_simulations=200
    )
    assert set(listed) == {"scenario_0"} and listed["scenario_0"]["num_auctions"] == 200
    with pytest.raises(InvalidBidParameters, match="scenarios"):
        backtest_strategy(sim, ConservativeStrategy(), {"bad": {"colour": "red"}})


def test_the_seeds_keys_are_served_with_the_same_statistics() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=6, num_simulations=800), MarketConditions())
    results = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    analysis = analyze_results(results)
    mean = analyze_results(results)["avg_price_improvement"]["mean"]
    assert mean == pytest.approx(float(results.columns["improvement_bps"].mean()))
    assert analysis["avg_price_improvement"] == analysis["improvement_bps"]
    assert analysis["phantom_win_rate"] == analysis["phantom_won"]
    assert analysis["convergence_speed"] == analysis["best_bid_time_ms"]
    # The per-auction SimulationMetrics speak the same names.
    one = results[3]
    assert one.metrics.avg_price_improvement == pytest.approx(one.row["improvement_bps"])
    assert one.metrics.phantom_win_rate == float(one.row["phantom_won"])
    assert analysis["ci_method"].startswith("independent")


def test_ci_of_the_mean_is_students_t() -> None:
    from phantom_auction.simulation.intervals import finite_stats

    x = np.random.default_rng(3).normal(5.0, 2.0, size=50)
    s = finite_stats(np.append(x, np.nan))
    low, high = stats.t.interval(0.95, df=49, loc=x.mean(), scale=x.std(ddof=1) / math.sqrt(50))
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx((low, high))
    assert s["sem"] == pytest.approx(x.std(ddof=1) / math.sqrt(50))


def test_the_t_quantile_is_scipy_stats_own_without_importing_it() -> None:
    from phantom_auction.simulation.intervals import t_quantile_975

    # Bit for bit scipy.stats' t.ppf, from 1 to a trillion degrees of freedom.
    for df in [*range(1, 300), *np.logspace(2.5, 12, 60).tolist()]:
        assert t_quantile_975(df) == float(stats.t.ppf(0.975, df)), df
    assert math.isnan(t_quantile_975(0.5))
    # And an analysis in a fresh process leaves scipy.stats unloaded (~0.5 s to import).
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from phantom_auction import MarketConditions, PhantomSimulator, SimulationConfig\n"
        "from phantom_auction.simulation import analyze_results, run_monte_carlo\n"
        "config = SimulationConfig(num_simulations=500, seed=1)\n"
        "sim = PhantomSimulator(config, MarketConditions())\n"
        "analysis = analyze_results(run_monte_carlo(sim, 100.0, 1000.0))\n"
        "assert analysis['improvement_bps']['ci95_low'] < analysis['improvement_bps']['mean']\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_batch_means_cover_a_dependent_series_where_the_iid_interval_does_not() -> None:
    """AR(1) with phi = 0.9 (like a learner's slowly drifting bids): the iid interval is
    about sqrt((1 + phi) / (1 - phi)) = 4.4 times too narrow; batch means are not."""
    from phantom_auction.simulation.intervals import finite_stats

    rng = np.random.default_rng(12)
    phi, n, reps = 0.9, 4000, 300
    covered = {"iid": 0, "batch": 0}
    for _ in range(reps):
        e = rng.normal(size=n)
        e[0] /= math.sqrt(1 - phi * phi)  # start in the stationary distribution
        x = signal.lfilter([1.0], [1.0, -phi], e)
        for name, batches in (("iid", None), ("batch", 20)):
            s = finite_stats(x, batches=batches)
            covered[name] += s["ci95_low"] <= 0.0 <= s["ci95_high"]
    assert covered["batch"] / reps > 0.88
    assert covered["iid"] / reps < 0.5


def test_threaded_statistics_are_the_one_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above THREADED_STATS_ROWS the columns are summarised on several threads: the
    same numbers, bit for bit (NaN where NaN), with and without batch means."""
    from phantom_auction.simulation import analysis as analysis_module

    config = SimulationConfig(seed=9, num_simulations=3_000)
    results = run_monte_carlo(PhantomSimulator(config, MarketConditions()), 100.0, 1000.0)
    monkeypatch.setattr(analysis_module, "_threads", lambda: 4)
    for batches in (None, 20):
        monkeypatch.setattr(analysis_module, "THREADED_STATS_ROWS", 1_000)
        threaded = analyze_results(results, batches=batches)
        monkeypatch.setattr(analysis_module, "THREADED_STATS_ROWS", 10**9)
        alone = analyze_results(results, batches=batches)
        assert threaded.keys() == alone.keys()
        for key, value in alone.items():
            if isinstance(value, dict):
                assert value.keys() == threaded[key].keys(), key
                for stat, number in value.items():
                    other = threaded[key][stat]
                    assert number == other or (number != number and other != other), (key, stat)
            else:
                assert value == threaded[key], key


def test_learning_runs_use_batch_means() -> None:
    config = SimulationConfig(seed=2, num_simulations=2000, enable_learning=True)
    results = run_monte_carlo(PhantomSimulator(config, MarketConditions()), 100.0, 1000.0)
    analysis = analyze_results(results)
    assert analysis["ci_method"].startswith("batch means (20 batches")
    forced = analyze_results(results, batches=0)
    assert forced["ci_method"].startswith("independent")
    assert forced["improvement_bps"]["mean"] == analysis["improvement_bps"]["mean"]


def test_headlines_are_ratios_of_sums_with_the_distribution_beside() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=5, num_simulations=3000), MarketConditions())
    results = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    cols, analysis = results.columns, analyze_results(results)
    capture = analysis["mev_capture_rate"]
    # Every auction counts in the headline, none dropped or clipped.
    assert capture["mean"] == pytest.approx(
        cols["improvement_bps"].sum() / cols["available_surplus_bps"].sum()
    )
    assert capture["per_auction_mean"] == pytest.approx(np.nanmean(cols["mev_capture_rate"]))
    assert capture["ci95_low"] < capture["mean"] < capture["ci95_high"]
    shading = analysis["bid_shading"]
    assert shading["mean"] == pytest.approx(cols["shaded_bps"].sum() / cols["valued_bps"].sum())
    # The seed's price_discovery_efficiency: bps against the competitive price.
    np.testing.assert_allclose(
        cols["price_discovery_efficiency"], cols["improvement_bps"] - cols["competitive_bps"]
    )
    assert (cols["competitive_bps"] <= np.maximum(cols["best_real_value_bps"], 0) + 1e-12).all()
    assert "best_bid_time_ms" in cols and "convergence_speed_ms" not in cols
    # Summary-only runs give the same headline and interval, from their co-moments (the
    # statistics audit: in fewer than 5 chunks they had none, and did not say why).
    summary = analyze_results(run_monte_carlo(sim, 100.0, 1000.0, keep_rows=False))
    assert sim.config.num_simulations < 5 * sim.config.resolved_chunk_size
    for name, rows in (("mev_capture_rate", capture), ("bid_shading", shading)):
        for stat in ("mean", "ci95_low", "ci95_high", "sem"):
            assert summary[name][stat] == pytest.approx(rows[stat], rel=1e-9), (name, stat)


def test_intervals_of_runs_too_small_for_them_are_absent_and_say_why() -> None:
    """The statistics audit: a run where nothing filled gave ratio headlines symmetric
    Wilson intervals below 0 ([-0.00026, 0.00026]), one auction a finite MEV capture
    interval, and a learning run of 30 auctions the independent interval labelled
    batch means."""
    sim = PhantomSimulator(SimulationConfig(seed=1, num_simulations=300, min_participants=1000))
    none_filled = analyze_results(run_monte_carlo(sim, 100.0, 1000.0))
    for name in ("mev_capture_rate", "improvement_bps"):
        stats = none_filled[name]
        assert (stats["mean"], stats["ci95_low"], stats["ci95_high"]) == (0.0, 0.0, 0.0), name
    # An event and a share nearly always 0 or 1: Wilson's, above 0 though none happened.
    for name in ("phantom_won", "real_fill_fraction"):
        stats = none_filled[name]
        assert stats["mean"] == stats["ci95_low"] == 0.0 < stats["ci95_high"] < 0.02, name
    one = analyze_results(
        run_monte_carlo(PhantomSimulator(SimulationConfig(seed=1, num_simulations=1)), 100.0, 1e3)
    )
    assert math.isnan(one["mev_capture_rate"]["ci95_low"])
    assert math.isnan(one["improvement_bps"]["ci95_low"])
    learning = SimulationConfig(seed=2, num_simulations=30, enable_learning=True)
    short = analyze_results(run_monte_carlo(PhantomSimulator(learning), 100.0, 1000.0))
    assert short["ci_method"].startswith("not available: the auctions depend on each other")
    assert math.isnan(short["improvement_bps"]["ci95_low"])


def test_ratio_of_sums_interval_covers_the_true_ratio() -> None:
    """Delta method on (x, y) pairs with E[x] / E[y] = 2 / 5: about 95 % coverage."""
    rng = np.random.default_rng(8)
    hits, reps = 0, 400
    for _ in range(reps):
        y = rng.exponential(5.0, 500)
        x = 0.4 * y + rng.normal(0.0, 1.0, 500)
        s = _ratio_of_sums(x, y, None)
        hits += s["ci95_low"] <= 0.4 <= s["ci95_high"]
    assert 0.91 < hits / reps < 0.99


def test_batches_below_two_are_refused() -> None:
    """The API audit: batches=1 gave NaN intervals and numpy warnings."""
    from phantom_auction.errors import InvalidBidParameters
    from phantom_auction.simulation import (
        PhantomSimulator,
        SimulationConfig,
        analyze_results,
        run_monte_carlo,
    )

    run = run_monte_carlo(
        PhantomSimulator(SimulationConfig(num_simulations=100, seed=1)), 100.0, 1000.0
    )
    for bad in (1, -3, True, 2.5):
        with pytest.raises(InvalidBidParameters, match="batches"):
            analyze_results(run, batches=bad)  # type: ignore[arg-type]
    assert analyze_results(run, batches=2)["ci_method"].startswith("batch means (2 batches")
