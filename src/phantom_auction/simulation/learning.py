"""Learning harness: Q-learning bidders in repeated auctions (Banchio & Skrzypacz 2022).

Banchio & Skrzypacz, "Artificial Intelligence and Auction Design" (EC 2022): two
Q-learners with a common value of 1 choose bids from a discrete grid, ε-greedy with
decaying exploration; in first-price auctions they learn to bid well below the value
(tacit collusion), in second-price auctions close to it. :func:`banchio_skrzypacz`
reruns that experiment in the simulator, in bps: the value is ``value_bps`` (the
paper's 1), the bid grid ``value_bps * k / steps`` for ``k = 1..steps``, first vs
second price, with and without phantom bids, over several seeds. Each learner is an
:class:`~.strategies.adaptive.AdaptiveStrategy` with an absolute bid grid, one state,
learning rate ``alpha``, discount ``gamma`` and ``ε_t = exp(-beta t)`` (the paper's
schedule); its greedy action is refreshed every 16 auctions (the simulator's learning
block) while its Q-table updates after every auction. The run is cut into ``windows``
consecutive Monte Carlo runs (learners carry their Q-tables from one to the next); after
each, the mean bid / value actually played in it and the greedy bid / value are recorded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import load_config
from ..engine.phantoms import PhantomModel
from ..errors import InvalidBidParameters

__all__ = ["LearningRun", "banchio_skrzypacz"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LearningRun:
    """One (mechanism, phantoms) arm over seeds: bid / value per window, seeds x windows.

    ``auctions``: the auctions played by the end of each window; ``played``: the mean bid
    over value actually submitted in the window (exploration included); ``greedy``: the
    learners' mean greedy bid over value at its end; ``improvement_bps``: the user's mean
    improvement in the window.
    """

    mechanism: str
    phantoms: bool
    seeds: tuple[int, ...]
    auctions: FloatArray
    played: FloatArray
    greedy: FloatArray
    improvement_bps: FloatArray

    @property
    def label(self) -> str:
        name = "first price" if self.mechanism == "discriminatory" else "second price"
        return f"{name}, {'with' if self.phantoms else 'no'} phantoms"

    def final(self, tail: float = 0.1) -> tuple[float, float, float]:
        """Mean played bid / value over the last ``tail`` of windows: mean, sd over seeds,
        and the standard error of the mean over seeds (both NaN for one seed)."""
        k = max(1, round(tail * self.played.shape[1]))
        per_seed = self.played[:, -k:].mean(axis=1)
        # One seed says nothing of the spread: NaN, not a claim of perfect precision.
        sd = float(per_seed.std(ddof=1)) if per_seed.size > 1 else math.nan
        return float(per_seed.mean()), sd, sd / math.sqrt(per_seed.size)


def _run_arm(
    mechanism: str,
    phantom_model: PhantomModel | None,
    seed: int,
    *,
    value_bps: float,
    steps: int,
    auctions: int,
    windows: int,
    alpha: float,
    gamma: float,
    beta: float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    from .market import MarketConditions
    from .parallel import run_monte_carlo
    from .settings import SimulationConfig
    from .simulator import PhantomSimulator
    from .strategies.adaptive import AdaptiveStrategy

    # Bids may be anything in [0, value]; a lone learner may trade (no participation rule).
    # Phantoms rank and take volume (`reserve`), whatever the packaged default policy.
    config = load_config(
        env={
            "AUCTION_PHANTOM_AUCTION_PHANTOM_POLICY": "reserve",
            "AUCTION_PHANTOM_AUCTION_MIN_IMPROVEMENT_BPS": "0",
            "AUCTION_PHANTOM_AUCTION_MAX_IMPROVEMENT_BPS": repr(float(value_bps)),
            "AUCTION_PHANTOM_AUCTION_MIN_PARTICIPANTS": "1",
        }
    )
    grid = value_bps * np.arange(1, steps + 1) / steps
    learners = [
        AdaptiveStrategy(
            bids_bps=grid.tolist(),
            learning_rate=alpha,
            discount=gamma,
            epsilon=1.0,
            epsilon_decay=math.exp(-beta),
            epsilon_min=0.0,
        )
        for _ in range(2)
    ]
    per_window = auctions // windows
    played, greedy, improvement = [], [], []
    for w in range(windows):
        sim = PhantomSimulator(
            SimulationConfig(
                num_real_bidders=2,
                num_phantom_bidders=0
                if phantom_model is None
                else phantom_model.max_phantom_bidders,
                phantom_model=phantom_model,
                value_distribution=("uniform", value_bps, value_bps * (1.0 + 1e-12)),
                mechanism=mechanism,
                num_simulations=per_window,
                seed=seed * 100_003 + w,
                enable_learning=True,
                auction_config=config,
            ),
            MarketConditions(),
            learners,
        )
        columns = run_monte_carlo(sim, 100.0, 1000.0, keep_rows=True).columns
        learners = list(sim.strategies)
        played.append(1.0 - float(np.nanmean(columns["bid_shading"])))
        greedy.append(float(np.mean([s.greedy_bid_bps for s in learners])) / value_bps)
        improvement.append(float(np.mean(columns["improvement_bps"])))
    return np.array(played), np.array(greedy), np.array(improvement)


def _is_real(value: object) -> bool:
    """A real number (``bool`` excluded: a flag is not a rate)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _checked_seeds(seeds: object) -> tuple[int, ...]:
    """``seeds`` as a tuple, or the error naming ``seeds`` with the value passed."""
    reason = "must be a non-empty sequence of integers >= 0, e.g. (1, 2, 3)"
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise InvalidBidParameters("seeds", seeds, reason)
    out = tuple(seeds)
    if not out:
        # No run to report: final() would fail on the empty arrays (IndexError).
        raise InvalidBidParameters("seeds", seeds, reason)
    for seed in out:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise InvalidBidParameters("seeds", seeds, f"{reason}; not {seed!r}")
    return out


def banchio_skrzypacz(
    *,
    seeds: Sequence[int] = (1, 2, 3, 4, 5),
    auctions: int = 60_000,
    windows: int = 30,
    value_bps: float = 100.0,
    steps: int = 20,
    alpha: float = 0.05,
    gamma: float = 0.95,
    beta: float = 1e-4,
    mechanisms: Sequence[str] = ("first_price", "second_price"),
    phantom_model: PhantomModel | None = None,
    with_phantoms: Sequence[bool] = (False, True),
    progress: Any = None,
) -> list[LearningRun]:
    """The experiment of the module docstring; one :class:`LearningRun` per arm.

    ``seeds``: a non-empty sequence of integers >= 0, one run per seed and arm;
    ``value_bps``: the common value (bps); ``alpha`` in (0, 1], ``gamma`` in [0, 1);
    ``beta`` >= 0 (below 745, where ``exp(-beta)`` underflows to 0).
    ``phantom_model`` (used for the arms with phantoms): by default two slots, each
    bidding with probability 0.5 around 60 % of the value (sd 20 %), within [0, value].
    ``progress(done, total)`` is called after each seed of each arm.
    """
    if not (isinstance(auctions, int) and isinstance(windows, int) and 1 <= windows <= auctions):
        raise InvalidBidParameters("windows", windows, f"must be in [1, auctions={auctions}]")
    if not (isinstance(steps, int) and steps >= 2):
        raise InvalidBidParameters("steps", steps, "must be an integer >= 2")
    if not _is_real(value_bps) or not 0.0 < value_bps < math.inf:
        raise InvalidBidParameters("value_bps", value_bps, "must be finite bps > 0")
    seed_list = _checked_seeds(seeds)
    # Checked here, not by the learners: they would name their own fields and the
    # transformed values (learning_rate, discount, epsilon_decay = exp(-beta)).
    if not _is_real(alpha) or not 0.0 < alpha <= 1.0:
        raise InvalidBidParameters("alpha", alpha, "must be in (0, 1]")
    if not _is_real(gamma) or not 0.0 <= gamma < 1.0:
        raise InvalidBidParameters("gamma", gamma, "must be in [0, 1)")
    if not _is_real(beta) or not (beta >= 0.0 and math.exp(-beta) > 0.0):
        raise InvalidBidParameters(
            "beta", beta, "must be >= 0 and below about 745 (exp(-beta) underflows to 0)"
        )
    model = phantom_model or PhantomModel(
        max_phantom_bidders=2,
        bid_probability=0.5,
        mean_bps=0.6 * value_bps,
        sd_bps=0.2 * value_bps,
        min_bps=0.0,
        max_bps=value_bps,
    )
    from ..mechanisms.clearing import canonical_mechanism

    arms = [(canonical_mechanism(m), p) for m in mechanisms for p in with_phantoms]
    total, done = len(arms) * len(seed_list), 0
    runs = []
    for mechanism, phantoms in arms:
        rows = []
        for seed in seed_list:
            rows.append(
                _run_arm(
                    mechanism,
                    model if phantoms else None,
                    seed,
                    value_bps=value_bps,
                    steps=steps,
                    auctions=auctions,
                    windows=windows,
                    alpha=alpha,
                    gamma=gamma,
                    beta=beta,
                )
            )
            done += 1
            if progress is not None:
                progress(done, total)
        per_window = auctions // windows
        runs.append(
            LearningRun(
                mechanism,
                phantoms,
                seed_list,
                per_window * np.arange(1, windows + 1, dtype=np.float64),
                np.array([r[0] for r in rows]),
                np.array([r[1] for r in rows]),
                np.array([r[2] for r in rows]),
            )
        )
    return runs
