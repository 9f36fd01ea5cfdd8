"""Q-learning bidders in repeated auctions (textbook mode, values U[0, 100] bps).

Reported figures (``pytest -s`` prints them): the adaptive bidder's mean bid as a
fraction of its value over the last 20 % of auctions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from phantom_auction.errors import InvalidBidParameters
from phantom_auction.simulation import AdaptiveStrategy, run_monte_carlo

from .conftest import BASELINE_PRICE, BASELINE_QUANTITY, textbook

AUCTIONS = 20_000


def _late_bid_fraction(columns: dict[str, np.ndarray], label: str = "adaptive") -> float:
    shading = columns[f"bid_shading:{label}"][int(0.8 * AUCTIONS) :]
    return 1.0 - float(np.nanmean(shading))


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 4])
def test_adaptive_learns_the_equilibrium_shading_against_equilibrium_bidders(n: int) -> None:
    target = (n - 1) / n
    fractions = []
    for seed in (1, 2, 3):
        sim = textbook(
            n - 1,
            "first_price",
            "equilibrium",
            num_simulations=AUCTIONS,
            seed=100 * n + seed,
            enable_learning=True,
        )
        sim.strategies.append(AdaptiveStrategy())
        cols = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY).columns
        fractions.append(_late_bid_fraction(cols))
        # It started far away: the first auctions explore uniformly over [0.05, 1].
        early = 1.0 - float(np.nanmean(cols["bid_shading:adaptive"][:500]))
        assert abs(fractions[-1] - target) < abs(early - target)
    print(
        f"\nadaptive among {n - 1} equilibrium bidders, first price: bid/value over the "
        f"last 20% = {', '.join(f'{f:.3f}' for f in fractions)} (equilibrium {target:.3f})"
    )
    # The best response to equilibrium bidders is the equilibrium shading; the grid
    # has a 0.05 step and the payoff (1 - f) f^(n-1) is flat near its maximum, so a
    # noisy learner may settle one or two steps away.
    assert all(abs(f - target) < 0.11 for f in fractions)
    assert abs(float(np.mean(fractions)) - target) < 0.06


def test_adaptive_does_not_learn_without_enable_learning() -> None:
    sim = textbook(2, "first_price", "equilibrium", num_simulations=2_000, seed=3)
    learner = AdaptiveStrategy()
    sim.strategies.append(learner)
    cols = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY).columns
    shading = cols["bid_shading:adaptive"]
    finite = shading[np.isfinite(shading)]
    # It bids its prior shading (0.05 + 0.25*0.3 + 0.15*0.3 = 0.17 -> level 0.15) throughout.
    np.testing.assert_allclose(finite, 0.15, atol=1e-6)


@pytest.mark.slow
def test_two_adaptive_bidders_with_private_values_end_at_or_below_the_one_shot_equilibrium() -> (
    None
):
    """Shading learners with private values U[0, 100]: second price near truthful, first
    price at or below the one-shot equilibrium shading (1/2). Not Banchio & Skrzypacz's
    setting (common value, absolute bids): that is ``test_banchio_skrzypacz`` below."""
    fractions = {}
    revenue = {}
    for mechanism in ("first_price", "second_price"):
        sim = textbook(
            2, mechanism, "adaptive", num_simulations=AUCTIONS, seed=8, enable_learning=True
        )
        cols = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY).columns
        fractions[mechanism] = _late_bid_fraction(cols)
        revenue[mechanism] = float(cols["improvement_bps"][int(0.8 * AUCTIONS) :].mean())
    print(
        f"\ntwo adaptive bidders, bid/value over the last 20%: first price "
        f"{fractions['first_price']:.3f}, second price {fractions['second_price']:.3f}; "
        f"user improvement {revenue['first_price']:.1f} vs {revenue['second_price']:.1f} bps"
    )
    assert fractions["first_price"] < fractions["second_price"] - 0.2
    # Second price makes truthful bidding dominant: learners end close to their value.
    assert fractions["second_price"] > 0.8
    # In first price they end at or below the one-shot equilibrium (1/2): no more
    # aggressive than theory, typically lower (tacit collusion).
    assert fractions["first_price"] < 0.55


def test_learning_is_reproducible_and_the_same_on_both_paths() -> None:
    from phantom_auction.simulation.parallel import (
        plan_chunks,
        simulate_chunk,
        simulate_chunk_objects,
    )

    from .conftest import assert_columns_equal

    sim = textbook(2, "first_price", "adaptive", num_simulations=600, seed=4, enable_learning=True)
    task = plan_chunks(sim, BASELINE_PRICE, BASELINE_QUANTITY)[0]
    args = (task.spec, 0, task.n_auctions, task.seed_seq)
    fast = simulate_chunk(*args)
    assert_columns_equal(fast, simulate_chunk(*args), exact=True)
    assert_columns_equal(fast, simulate_chunk_objects(*args))
    # The spec's learners are untouched: chunks start from the planned state.
    assert all(s.auctions_learnt == 0 for s in task.spec.strategies)


def test_learners_keep_their_q_tables_across_chunks_and_after_the_run() -> None:
    sim = textbook(
        2,
        "first_price",
        AdaptiveStrategy(epsilon_decay=0.998),
        num_simulations=3_000,
        seed=6,
        enable_learning=True,
        chunk_size=1_000,
    )
    first = run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY, workers=2).columns
    # Three chunks, one learner state: it learnt from every auction, and still holds it.
    assert [s.auctions_learnt for s in sim.strategies] == [3_000, 3_000]
    q_after = [s.q_values.copy() for s in sim.strategies]
    assert all(np.any(q != 0.0) for q in q_after)
    # No restart at a chunk boundary: exploration (epsilon 0.998^t) stays decayed, so
    # the bids just after 1,000 auctions are as spread as those just before.
    shading = first["bid_shading"]
    spread_before = float(np.nanstd(shading[800:1_000]))
    spread_after = float(np.nanstd(shading[1_000:1_200]))
    spread_start = float(np.nanstd(shading[:200]))
    assert spread_after < 0.6 * spread_start and spread_before < 0.6 * spread_start
    # A second run goes on from there.
    run_monte_carlo(sim, BASELINE_PRICE, BASELINE_QUANTITY)
    assert [s.auctions_learnt for s in sim.strategies] == [6_000, 6_000]
    # The same seed and a fresh simulator give the same numbers on any number of workers.
    again = textbook(
        2,
        "first_price",
        AdaptiveStrategy(epsilon_decay=0.998),
        num_simulations=3_000,
        seed=6,
        enable_learning=True,
        chunk_size=1_000,
    )
    same = run_monte_carlo(again, BASELINE_PRICE, BASELINE_QUANTITY, workers=1).columns
    np.testing.assert_array_equal(same["improvement_bps"], first["improvement_bps"])


@pytest.mark.slow
def test_banchio_skrzypacz() -> None:
    """Two Q-learners, common value, absolute bid grid (Banchio & Skrzypacz 2022): first
    price ends well below the value, second price much closer to it."""
    from phantom_auction.simulation.learning import banchio_skrzypacz

    runs = banchio_skrzypacz(seeds=(1, 2, 3), auctions=24_000, windows=8, with_phantoms=(False,))
    first, second = runs
    f_mean, _, f_se = first.final(0.25)
    s_mean, _, s_se = second.final(0.25)
    print(
        f"\nB&S, bid/value over the last quarter (3 seeds, 24,000 auctions): first price "
        f"{f_mean:.3f} ± {f_se:.3f}, second price {s_mean:.3f} ± {s_se:.3f}"
    )
    assert f_mean < 0.7
    assert s_mean > f_mean + 0.1


def _run(seeds: int) -> Any:
    from phantom_auction.simulation.learning import LearningRun

    played = np.linspace(0.2, 0.8, 4 * seeds).reshape(seeds, 4)
    zeros = np.zeros_like(played)
    return LearningRun(
        "discriminatory", False, tuple(range(seeds)), np.arange(4.0), played, zeros, zeros
    )


def test_one_seed_gives_no_spread_over_seeds() -> None:
    """The API audit: one seed reported sd 0 and se 0 (perfect precision); a one-sample
    sd is undefined."""
    mean, sd, se = _run(1).final(0.5)
    assert mean == pytest.approx(0.7) and math.isnan(sd) and math.isnan(se)
    mean, sd, se = _run(2).final(0.5)
    assert math.isfinite(sd) and sd > 0.0 and se == pytest.approx(sd / math.sqrt(2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seeds": ()}, "seeds"),  # accepted; final() then raised IndexError
        ({"seeds": 1}, "seeds"),  # TypeError: object of type 'int' has no len()
        ({"seeds": (-1,)}, "seeds"),  # reported as seed=-100003
        ({"seeds": (1, 2.5)}, "seeds"),
        ({"seeds": "12"}, "seeds"),
        ({"alpha": 0}, "alpha"),  # reported as learning_rate=0
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"beta": -1}, "beta"),  # reported as epsilon_decay=2.718...
        ({"beta": math.inf}, "beta"),  # epsilon_decay=0.0
        ({"beta": 800.0}, "beta"),
        ({"gamma": 1.0}, "gamma"),  # reported as discount=1.0
        ({"value_bps": math.inf}, "value_bps"),  # reported as bids_bps=[inf, ...]
    ],
)
def test_banchio_skrzypacz_names_the_argument_passed(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], field: str
) -> None:
    from phantom_auction.simulation import learning

    def must_not_run(*_: Any, **__: Any) -> Any:
        raise AssertionError("checked before any run")

    monkeypatch.setattr(learning, "_run_arm", must_not_run)
    with pytest.raises(InvalidBidParameters) as info:
        learning.banchio_skrzypacz(auctions=100, windows=2, **kwargs)
    assert info.value.field == field
    assert info.value.value is kwargs[field]  # as passed, not transformed
