"""The simulation's shared draws: the phantom sampler and the market's normal marginal."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from phantom_auction.engine.phantoms import PhantomArrays, PhantomModel, draw_phantom_arrays
from phantom_auction.mechanisms.rules import improvement_bps
from phantom_auction.simulation import (
    MarketConditions,
    PhantomSimulator,
    SimulationConfig,
    environment,
)
from phantom_auction.simulation.environment import (
    Streams,
    draw_exogenous,
    draw_exogenous_each,
    draw_phantoms,
    phantom_best,
    phantom_block,
    phantom_counts,
)
from phantom_auction.simulation.equilibrium import best_phantom_cdf, phantom_improvement_cdf
from phantom_auction.simulation.market import NormalValues


def test_phantom_counts_are_binomial_and_fill_the_first_slots() -> None:
    model = PhantomModel(max_phantom_bidders=12, bid_probability=0.35)
    rows = 200_000
    draw = draw_phantoms(model, np.random.default_rng(3), rows, 100.0, 1000.0)
    counts = draw.present.sum(axis=1)
    p, m = model.bid_probability, model.max_phantom_bidders
    se_mean = math.sqrt(m * p * (1 - p) / rows)
    assert abs(counts.mean() - m * p) < 4 * se_mean
    assert abs(counts.var() - m * p * (1 - p)) < 0.03 * m * p * (1 - p)
    for k in (0, 3, 6):
        expected = math.comb(m, k) * p**k * (1 - p) ** (m - k)
        observed = float(np.mean(counts == k))
        assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / rows)
    # Slots 0 .. k-1 hold the bids; the empty ones a zero bid at the baseline.
    np.testing.assert_array_equal(draw.present, np.arange(m) < counts[:, None])
    empty = ~draw.present
    assert (draw.price[empty] == 100.0).all()
    assert (draw.volume[empty] == 0.0).all() and (draw.priority_fee[empty] == 0.0).all()


def test_phantom_bids_have_the_models_distribution() -> None:
    # The same model as draw_phantom_arrays (the engine's numpy sampler) and as the
    # CDFs the equilibrium solver assumes, sampled another way.
    model = PhantomModel(max_phantom_bidders=12, bid_probability=0.4, mean_bps=22.0, sd_bps=7.0)
    rows = 100_000
    draw = draw_phantoms(model, np.random.default_rng(5), rows, 100.0, 1000.0)
    one = draw.improvement_bps[draw.present]
    best = np.where(draw.present, draw.improvement_bps, -np.inf).max(axis=1)
    for x in (9.0, 12.0, 18.0, 22.0, 30.0, 49.0, 50.0):
        p_one, p_best = float(np.mean(one <= x)), float(np.mean(best <= x))
        se_one = math.sqrt(max(p_one * (1 - p_one), 1e-12) / one.size)
        se_best = math.sqrt(max(p_best * (1 - p_best), 1e-12) / best.size)
        assert abs(float(phantom_improvement_cdf(model, x)) - p_one) < 4 * se_one + 1e-12
        assert abs(float(best_phantom_cdf(model, x)) - p_best) < 4 * se_best + 1e-12
    reference = draw_phantom_arrays(model, np.random.default_rng(6), rows, 100.0, 1000.0)
    for mine, theirs in (
        (draw.volume[draw.present], reference.volume[reference.present]),
        (draw.priority_fee[draw.present], reference.priority_fee[reference.present]),
    ):
        se = math.sqrt(mine.var() / mine.size + theirs.var() / theirs.size)
        assert abs(mine.mean() - theirs.mean()) < 4 * se
    assert (draw.volume[draw.present] >= 500.0).all() and (draw.volume <= 1000.0).all()
    fee_cap = draw.volume * model.priority_fee_max_ratio * model.fee_fraction[1]
    assert (draw.priority_fee <= fee_cap).all()
    bps = (draw.price[draw.present] / 100.0 - 1.0) * 10_000.0
    np.testing.assert_allclose(bps, one, atol=1e-9)


def test_phantom_draws_follow_the_seed_and_split_by_auction_count() -> None:
    model = PhantomModel()
    one = draw_phantoms(model, np.random.default_rng(9), 500, 100.0, 1000.0)
    again = draw_phantoms(model, np.random.default_rng(9), 500, 100.0, 1000.0)
    for field in ("present", "improvement_bps", "price", "volume", "priority_fee"):
        np.testing.assert_array_equal(getattr(one, field), getattr(again, field))
    none = draw_phantoms(PhantomModel(max_phantom_bidders=0), np.random.default_rng(1), 4, 1, 1)
    assert none.present.shape == (4, 0)
    always = draw_phantoms(PhantomModel(bid_probability=1.0), np.random.default_rng(1), 50, 1, 1)
    assert always.present.all()


@pytest.mark.parametrize("m", [0, 3, 20])
def test_phantoms_drawn_block_by_block_are_the_whole_draw(m: int) -> None:
    # The fast path draws a chunk's counts, then each block's bids in turn (issue 16):
    # the same numbers as the whole chunk at once, whatever the blocks.
    model = PhantomModel(max_phantom_bidders=m, bid_probability=0.3)
    whole = draw_phantoms(model, np.random.default_rng(4), 1000, 100.0, 1000.0)
    rng = np.random.default_rng(4)
    counts = phantom_counts(model, rng, 1000)
    parts = [
        phantom_block(model, rng, counts[lo:hi], 100.0, 1000.0, improvements=lo > 0)
        for lo, hi in ((0, 1), (1, 400), (400, 400), (400, 1000))
    ]
    for field in ("present", "price", "volume", "priority_fee"):
        joined = np.concatenate([getattr(p, field) for p in parts])
        np.testing.assert_array_equal(joined, getattr(whole, field), err_msg=field)
    assert parts[0].improvement_bps.shape == (1, 0)  # not asked for: left empty
    np.testing.assert_array_equal(parts[-1].improvement_bps, whole.improvement_bps[400:])


def _best_of_block(block: PhantomArrays, score: Callable[..., np.ndarray]) -> np.ndarray:
    """The floor as the fast path took it from the (A, M) arrays before phantom_best."""
    scores = np.where(
        block.present, score(improvement_bps(block.price, 100.0), block.priority_fee), 0.0
    )
    return np.maximum(scores.max(axis=1, initial=0.0), 0.0)


SCORES = {
    "improvement": (lambda imp, fee: imp, True),
    "twice": (lambda imp, fee: 2.0 * imp + 0.0 * (fee / 1000.0 * 1e4), True),
    "with_fee": (lambda imp, fee: imp + 0.5 * (fee / 1000.0 * 1e4), False),
}


@pytest.mark.parametrize("m", [0, 1, 3, 20])
@pytest.mark.parametrize("name", sorted(SCORES))
def test_phantom_best_is_the_best_of_the_block(m: int, name: str) -> None:
    # Under the floor policy the fast path takes only each auction's best phantom score
    # (issue 16): the same bits as the best of phantom_block's bids, the generator left
    # at the same place; candidates scored alone when the score rises with the quantile.
    score, monotone = SCORES[name]
    model = PhantomModel(max_phantom_bidders=m, bid_probability=0.6)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    counts = phantom_counts(model, rng_a, 5000)
    phantom_counts(model, rng_b, 5000)
    for lo, hi in ((0, 1), (1, 2000), (2000, 2000), (2000, 5000)):
        block = phantom_block(model, rng_a, counts[lo:hi], 100.0, 1000.0)
        best = phantom_best(model, rng_b, counts[lo:hi], 100.0, 1000.0, score, monotone=monotone)
        np.testing.assert_array_equal(best, _best_of_block(block, score))
    assert rng_a.random() == rng_b.random()


class _Chosen:
    """A generator whose uniforms are chosen (``random(shape)`` only)."""

    def __init__(self, u: np.ndarray) -> None:
        self.u = u

    def random(self, shape: tuple[int, int]) -> np.ndarray:
        assert shape == self.u.shape
        return self.u


def test_phantom_best_scores_every_near_tie(monkeypatch: pytest.MonkeyPatch) -> None:
    # Quantiles within QUANTILE_GAP of an auction's largest are all scored: two bids an
    # ulp apart in one auction give the same best whatever the gap (0: the largest alone).
    model = PhantomModel(max_phantom_bidders=4, bid_probability=0.5)
    top = 0.6180339887498949
    u = np.array(
        [[top, 0.5, 0.5], [np.nextafter(top, 0.0), 0.5, 0.5], [0.1, 0.5, 0.5], [0.3, 0.2, 0.1]]
    )
    counts = np.array([3, 0, 1])
    score, _ = SCORES["improvement"]
    block = phantom_block(model, _Chosen(u), counts, 100.0, 1000.0)  # type: ignore[arg-type]
    expected = _best_of_block(block, score)
    for gap in (environment.QUANTILE_GAP, 0.0, 1.0):
        monkeypatch.setattr(environment, "QUANTILE_GAP", gap)
        best = phantom_best(model, _Chosen(u), counts, 100.0, 1000.0, score, monotone=True)  # type: ignore[arg-type]
        np.testing.assert_array_equal(best, expected)
    assert expected[1] == 0.0 and expected[0] > expected[2] > 0.0


def test_normal_marginal_is_scipys_normal_to_the_bit() -> None:
    mine, scipys = NormalValues(39.3, 14.4), stats.norm(loc=39.3, scale=14.4)
    x = np.linspace(-60.0, 140.0, 2001)
    q = np.linspace(0.0, 1.0, 2001)
    for name in ("cdf", "sf", "pdf", "logpdf"):
        np.testing.assert_array_equal(getattr(mine, name)(x), getattr(scipys, name)(x))
    np.testing.assert_array_equal(mine.ppf(q), scipys.ppf(q))
    assert mine.cdf(40.0) == scipys.cdf(40.0) and np.ndim(mine.cdf(40.0)) == 0
    assert (mine.mean(), mine.median(), mine.std()) == (scipys.mean(), scipys.median(), 14.4)
    assert mine.var() == pytest.approx(scipys.var())
    assert mine.support() == scipys.support()
    # Anything else is scipy's own.
    assert mine.interval(0.9) == scipys.interval(0.9)
    assert mine == NormalValues(39.3, 14.4) and mine != NormalValues(39.3, 14.5)


def test_a_market_mode_run_does_not_import_scipy_stats() -> None:
    # scipy.stats takes 0.5-1 s to import: a default Monte Carlo run must not need it.
    code = (
        "import sys\n"
        "from phantom_auction.simulation import PhantomSimulator, SimulationConfig, "
        "run_monte_carlo\n"
        "sim = PhantomSimulator(SimulationConfig(num_simulations=300, seed=1))\n"
        "run_monte_carlo(sim, 100.0, 1000.0)\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    "market",
    [
        MarketConditions(),
        MarketConditions(correlation=0.4, volatility=0.7),
        MarketConditions(correlation_matrix=np.eye(6) * 0.7 + 0.3),  # a Cholesky product
    ],
)
def test_exogenous_draws_each_equal_one_auction_at_a_time(market: MarketConditions) -> None:
    sim = PhantomSimulator(SimulationConfig(seed=3, num_real_bidders=6), market)
    env = sim.environment(100.0, 1000.0)
    root = np.random.SeedSequence(8)
    many = draw_exogenous_each(env, Streams.from_seed(root, 6), 37)
    streams = Streams.from_seed(root, 6)
    ones = [draw_exogenous(env, streams, 1) for _ in range(37)]
    np.testing.assert_array_equal(
        many.true_premium_bps, np.concatenate([d.true_premium_bps for d in ones])
    )
    np.testing.assert_array_equal(many.values_bps, np.concatenate([d.values_bps for d in ones]))
    for field in ("present", "improvement_bps", "price", "volume", "priority_fee"):
        np.testing.assert_array_equal(
            getattr(many.phantoms, field),
            np.concatenate([getattr(d.phantoms, field) for d in ones]),
            err_msg=field,
        )


def test_a_config_shows_the_bounds_its_runs_apply() -> None:
    """The theory audit: a textbook run (a value distribution, no phantoms) clears from
    the baseline with no cap, but its config read the engine's 10 and 50 bps (and the
    report marked a 50 bps cap on its histogram). The config's bounds are the ones its
    auctions are judged by."""
    textbook = SimulationConfig(value_distribution=("uniform", 0, 100), num_phantom_bidders=0)
    given = SimulationConfig(
        value_distribution=("uniform", 0, 100), num_phantom_bidders=0, reserve_bps=70
    )
    market_mode = SimulationConfig()
    expected = [(textbook, (0.0, math.inf)), (given, (70.0, math.inf)), (market_mode, (10.0, 50.0))]
    for config, bounds in expected:
        assert (config.min_improvement_bps, config.max_improvement_bps) == bounds
        sim = PhantomSimulator(config, MarketConditions())
        env = environment.build_environment(config, sim.market, sim.strategies, 100.0, 1e3)
        assert (env.view.min_improvement_bps, env.view.max_improvement_bps) == bounds
        assert (env.rules.min_bps, env.rules.max_bps) == bounds
