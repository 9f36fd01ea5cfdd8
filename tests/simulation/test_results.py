"""Per-auction objects, the columnar results, frames and convergence paths."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from phantom_auction import VCGResult, individual_rationality_check
from phantom_auction.simulation import (
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
    run_monte_carlo,
    run_simulation,
)
from phantom_auction.simulation.results import FRAME_COLUMNS

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY

REQUIRED = (
    "improvement_bps",
    "mev_capture_rate",
    "price_discovery_efficiency",
    "bid_shading",
    "phantom_won",
    "winner_strategy",
    "clearing_price",
    "baseline_price",
    "true_price",
    "welfare",
    "welfare_improvement",
    "best_bid_time_ms",
    "num_real_bids",
    "num_phantom_bids",
    "real_fill_fraction",
)


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    sim = PhantomSimulator(
        SimulationConfig(seed=31, num_simulations=1_500, chunk_size=600),
        MarketConditions(trend=0.3),
    )
    return run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)


def test_frame_has_the_promised_columns(results) -> None:  # type: ignore[no-untyped-def]
    frame = results.to_frame()
    assert len(frame) == len(results) == 1_500
    assert set(REQUIRED) <= set(frame.columns)
    assert list(frame.columns[: len(FRAME_COLUMNS)]) == list(FRAME_COLUMNS)
    assert frame["phantom_won"].dtype == bool
    winners = set(frame["winner_strategy"].astype(str))
    assert winners <= {*results.labels, "phantom", "none"}
    assert (frame["winner_strategy"].astype(str) == "phantom").to_numpy().tolist() == frame[
        "phantom_won"
    ].tolist()
    # Identities of the definitions.
    np.testing.assert_allclose(
        (frame["clearing_price"] / frame["baseline_price"] - 1) * 1e4,
        frame["improvement_bps"],
        atol=1e-8,
    )
    capture = frame["mev_capture_rate"].dropna()
    assert capture.between(0.0, 1.0).all()
    assert (frame["welfare_improvement"].dropna() <= 1.0 + 1e-9).all()
    assert frame["real_fill_fraction"].between(0.0, 1.0 + 1e-12).all()
    assert (
        frame["mev_capture_rate"].dropna() <= frame["welfare_improvement"].dropna() + 1e-9
    ).all()
    # copy=False: the same frame over the results' own arrays (what the CLI writes);
    # the default is a copy that the caller may edit.
    shared = results.to_frame(copy=False)
    pd.testing.assert_frame_equal(shared, frame)
    name = "improvement_bps"
    assert np.shares_memory(shared[name].to_numpy(), results.columns[name])
    assert not np.shares_memory(frame[name].to_numpy(), results.columns[name])


def test_indexing_replays_the_same_auction(results) -> None:  # type: ignore[no-untyped-def]
    cols = results.columns
    for index in (0, 599, 600, 1_234, -1):
        result = results[index]
        i = index % len(results)
        for key, value in result.row.items():
            np.testing.assert_allclose(cols[key][i], value, rtol=1e-9, atol=1e-7, err_msg=key)
    assert len(results[10:13]) == 3
    with pytest.raises(IndexError):
        results[1_500]
    assert sum(1 for _ in results) == 1_500


def test_one_result_in_detail() -> None:
    sim = PhantomSimulator(SimulationConfig(seed=3), MarketConditions())
    seen_vcg = 0
    for _ in range(200):
        r = run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY)
        phantoms = [b for b in r.all_bids if b.is_phantom]
        real = [b for b in r.all_bids if not b.is_phantom]
        # Clearing order: the engine's, real bids in arrival (commit) order, then phantoms.
        assert list(r.all_bids) == real + phantoms
        assert [b.timestamp_ms for b in real] == sorted(b.timestamp_ms for b in real)
        assert all(b.private_value_bps is None for b in phantoms)
        # Python floats, not numpy scalars, though the object path keeps arrays.
        numbers = ("price", "improvement_bps", "quantity", "timestamp_ms", "priority_fee")
        assert {type(getattr(b, name)) for b in real for name in numbers} <= {float}
        assert r.metrics.avg_price_improvement == pytest.approx(
            (r.clearing_price / BASELINE_PRICE - 1) * 1e4, abs=1e-9
        )
        assert r.total_surplus == r.metrics.welfare
        path = r.convergence_path
        assert path.shape == r.execution_trace["time_grid_ms"].shape
        assert np.all(np.diff(path) >= 0)
        assert path[-1] == pytest.approx(max([0.0, *(b.improvement_bps for b in real)]))
        if r.vcg_result is not None:
            seen_vcg += 1
            assert isinstance(r.vcg_result, VCGResult)
            assert individual_rationality_check(r.vcg_result)
            real_pay = sum(
                a.payment - BASELINE_PRICE * a.quantity
                for a, b in zip(r.vcg_result.allocations, r.all_bids, strict=True)
                if not b.is_phantom
            )
            assert real_pay / BASELINE_PRICE * 1e4 / BASELINE_QUANTITY == pytest.approx(
                r.metrics.avg_price_improvement, abs=1e-7
            )
            # Welfare and revenue (added up from the allocated bids) are those of the
            # allocation records (made when read), to the bit.
            allocations = r.vcg_result.allocations
            assert r.vcg_result.total_revenue == math.fsum(a.payment for a in allocations)
            assert r.vcg_result.social_welfare == math.fsum(
                b.price * a.quantity for a, b in zip(allocations, r.all_bids, strict=True)
            )
        if r.winning_bid is not None:
            assert not r.winning_bid.is_phantom
            assert r.metrics.real_fill_fraction > 0
        if math.isnan(r.metrics.convergence_speed):
            assert not real
    assert seen_vcg > 150  # VCG results whenever the auction cleared
    other = PhantomSimulator(SimulationConfig(seed=3, mechanism="uniform"))
    assert run_simulation(other, BASELINE_PRICE, BASELINE_QUANTITY).vcg_result is None


def test_convergence_paths_match_the_object_path(results) -> None:  # type: ignore[no-untyped-def]
    time_ms, paths = results.convergence_paths(12)
    assert time_ms.shape == (101,) and paths.shape == (12, 101)
    assert time_ms[0] == 0.0 and time_ms[-1] == 80.0
    assert np.all(np.diff(paths, axis=1) >= 0)
    for i in range(12):
        np.testing.assert_allclose(paths[i], results[i].convergence_path, atol=1e-7)


def test_learning_strategies_keep_learning_across_run_simulation_calls() -> None:
    sim = PhantomSimulator(
        SimulationConfig(seed=2, enable_learning=True, real_strategy="adaptive", num_real_bidders=2)
    )
    for _ in range(40):
        run_simulation(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert all(s.auctions_learnt == 40 for s in sim.strategies)
    assert sum(int(s.visits.sum()) for s in sim.strategies) > 0


def test_result_objects_have_short_reprs_and_notebook_tables() -> None:
    from phantom_auction import MarketConditions, PhantomSimulator, SimulationConfig
    from phantom_auction import run_monte_carlo as run

    results = run(
        PhantomSimulator(SimulationConfig(num_simulations=500, seed=3), MarketConditions()),
        100.0,
        1000.0,
    )
    for obj in (results, results.summary, results[0]):
        text = repr(obj)
        assert "\n" not in text and len(text) < 200, text
        page = obj._repr_html_()
        assert page.startswith("<table>") and page.endswith("</table>")
    assert "improvement_bps" in results._repr_html_()
    assert "95% CI" in results.summary._repr_html_()
    assert "avg_price_improvement" in results[0]._repr_html_()
    assert repr(results).startswith("MonteCarloResults(500 auctions")


def test_progress_true_a_tqdm_like_bar_or_a_callback() -> None:
    import pytest

    from phantom_auction import (
        InvalidBidParameters,
        MarketConditions,
        PhantomSimulator,
        SimulationConfig,
    )
    from phantom_auction import run_monte_carlo as run

    sim = PhantomSimulator(
        SimulationConfig(num_simulations=2500, seed=3, chunk_size=1000), MarketConditions()
    )

    class Bar:  # the part of tqdm's interface a run uses
        total = None
        n = 0

        def update(self, k: int) -> None:
            self.n += k

    bar = Bar()
    plain = run(sim, 100.0, 1000.0).columns["improvement_bps"]
    with_bar = run(sim, 100.0, 1000.0, progress=bar).columns["improvement_bps"]
    assert (bar.total, bar.n) == (2500, 2500)
    np.testing.assert_array_equal(plain, with_bar)
    calls: list[tuple[int, int]] = []
    run(sim, 100.0, 1000.0, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]
    assert len(run(sim, 100.0, 1000.0, progress=True)) == 2500
    with pytest.raises(InvalidBidParameters, match="tqdm-like"):
        run(sim, 100.0, 1000.0, progress="yes")
