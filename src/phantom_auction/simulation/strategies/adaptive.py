"""Adaptive bidding: Q-learning over shading levels, across auctions."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...errors import InvalidBidParameters
from .base import (
    AuctionFeedback,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FeedbackBatch,
    FloatArray,
    single_bid,
    single_bid_batch,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["AdaptiveStrategy"]


class AdaptiveStrategy(BidderStrategy):
    """A Q-learning bidder choosing how much to shade its value (Watkins 1989).

    Actions are shading levels ``s`` (default 0, 0.05, …, 0.95): it bids ``(1 - s) v``
    for the whole order, once, 50–90 % into the window. Its state is a single one (no
    memory of rivals, as in Banchio & Skrzypacz 2022), so the update after each auction
    is ``Q(a) <- Q(a) + α (r + γ max Q - Q(a))`` with reward ``r`` = its utility in bps of
    the order and ``α = 1/visits(a)`` unless ``learning_rate`` is given. It explores with
    ε-greedy, ``ε_t = max(epsilon_min, epsilon * epsilon_decay**t)`` over the ``t``
    auctions learnt from, and updates its policy (greedy action, ε) every
    ``policy_refresh`` auctions, so that blocks of auctions can be simulated at once.

    Learning happens only when the simulator has ``enable_learning``; otherwise (and
    before any learning) it bids greedily, starting from a prior shading that grows with
    volatility and illiquidity: ``0.05 + 0.25 volatility + 0.15 (1 - liquidity)``.

    ``bids_bps`` replaces the shading levels by an absolute grid of bids (bps over the
    baseline), as in Banchio & Skrzypacz's experiments: action ``a`` bids
    ``bids_bps[a]`` whatever the value (a bid above the value is allowed; it is a
    mistake the learner can make and unlearn). A learner keeps its Q-table across
    Monte Carlo chunks and after the run (``run_monte_carlo``), so a later run goes on
    from what it learnt.
    """

    name: ClassVar[str] = "adaptive"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": True,
        "truthful": False,
        "uses_private_value": True,
        "rebids": False,
        "vectorised": True,
    }

    def __init__(
        self,
        shading_levels: Sequence[float] | None = None,
        learning_rate: float | None = None,
        discount: float = 0.0,
        epsilon: float = 1.0,
        epsilon_decay: float = 0.9995,
        epsilon_min: float = 0.01,
        policy_refresh: int = 16,
        bids_bps: Sequence[float] | None = None,
    ) -> None:
        grid = None if bids_bps is None else np.asarray(bids_bps, dtype=np.float64)
        if grid is not None and (grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid))):
            raise InvalidBidParameters("bids_bps", bids_bps, "must be a non-empty list of bps")
        self.bids_bps = grid
        levels = (
            np.round(np.arange(20) * 0.05, 10)
            if shading_levels is None
            else np.asarray(shading_levels, dtype=np.float64)
        )
        if levels.ndim != 1 or levels.size == 0 or not np.all((levels >= 0) & (levels < 1)):
            raise InvalidBidParameters(
                "shading_levels", shading_levels, "must be a non-empty list of values in [0, 1)"
            )
        if learning_rate is not None and not 0.0 < learning_rate <= 1.0:
            raise InvalidBidParameters("learning_rate", learning_rate, "must be in (0, 1]")
        if not 0.0 <= discount < 1.0:
            raise InvalidBidParameters("discount", discount, "must be in [0, 1)")
        if not 0.0 <= epsilon_min <= epsilon <= 1.0:
            raise InvalidBidParameters(
                "epsilon", epsilon, f"must satisfy 0 <= epsilon_min={epsilon_min} <= it <= 1"
            )
        if not 0.0 < epsilon_decay <= 1.0:
            raise InvalidBidParameters("epsilon_decay", epsilon_decay, "must be in (0, 1]")
        if isinstance(policy_refresh, bool) or not (
            isinstance(policy_refresh, int) and policy_refresh >= 1
        ):
            raise InvalidBidParameters("policy_refresh", policy_refresh, "must be an integer >= 1")
        self.shading_levels = levels
        self.learning_rate = learning_rate
        self.discount = float(discount)
        self.epsilon = float(epsilon)
        self.epsilon_decay = float(epsilon_decay)
        self.epsilon_min = float(epsilon_min)
        self.policy_refresh = policy_refresh
        actions = levels.size if grid is None else grid.size
        self.q_values = np.zeros(actions)
        self.visits = np.zeros(actions, dtype=np.int64)
        self.auctions_learnt = 0
        self._prior_set = False
        self._policy_block = -1
        self._greedy = 0
        self._policy_epsilon = 0.0
        self._last_action: int | None = None

    # -- policy ---------------------------------------------------------------------

    def prior_shading(self, market: MarketConditions) -> float:
        """Shading before any learning: more in volatile or illiquid markets."""
        return 0.05 + 0.25 * market.volatility + 0.15 * (1.0 - market.liquidity)

    def _refresh_policy(self, market: MarketConditions, view: AuctionView) -> None:
        if not self._prior_set:
            # A vanishing bump that only breaks the all-zero tie towards the prior; the
            # first visit of an action overwrites its value.
            prior = self.prior_shading(market)
            if self.bids_bps is None:
                distance = np.abs(self.shading_levels - prior)
            else:
                distance = np.abs(self.bids_bps - (1.0 - prior) * view.expected_value_bps)
            self.q_values = self.q_values - 1e-12 * distance
            self._prior_set = True
        block = self.auctions_learnt // self.policy_refresh
        if block != self._policy_block:
            self._policy_block = block
            self._greedy = int(np.argmax(self.q_values))
            self._policy_epsilon = (
                max(self.epsilon_min, self.epsilon * self.epsilon_decay**self.auctions_learnt)
                if view.learning
                else 0.0
            )

    @property
    def greedy_shading(self) -> float:
        """The shading level it currently believes best (with ``bids_bps``: NaN)."""
        if self.bids_bps is not None:
            return math.nan
        return float(self.shading_levels[int(np.argmax(self.q_values))])

    @property
    def greedy_bid_bps(self) -> float:
        """The absolute bid it currently believes best (without ``bids_bps``: NaN)."""
        if self.bids_bps is None:
            return math.nan
        return float(self.bids_bps[int(np.argmax(self.q_values))])

    def _bid(self, action: FloatArray | int, values: FloatArray | float) -> FloatArray:
        if self.bids_bps is not None:
            return np.asarray(self.bids_bps[action], dtype=np.float64)
        return np.asarray((1.0 - self.shading_levels[action]) * values, dtype=np.float64)

    def auctions_until_refresh(self) -> int:
        return self.policy_refresh - self.auctions_learnt % self.policy_refresh

    def _action(self, explore: float, pick: float) -> int:
        if explore < self._policy_epsilon:
            return min(int(pick * self.q_values.size), self.q_values.size - 1)
        return self._greedy

    # -- bids -----------------------------------------------------------------------

    def generate_bids(
        self,
        baseline_price: float,
        baseline_quantity: float,
        market: MarketConditions,
        rng: np.random.Generator,
        *,
        private_value: float | None = None,
        view: AuctionView | None = None,
    ) -> list[Bid]:
        view = view or AuctionView()
        explore, pick, when = rng.random(3).tolist()
        self._refresh_policy(market, view)
        action = self._action(explore, pick)
        v = value_bps(baseline_price, private_value, view)
        bid = float(self._bid(action, v))
        t = view.window_ms * (0.5 + 0.4 * when)
        bids = single_bid(baseline_price, baseline_quantity, view, bid, t)
        self._last_action = action if bids else None
        return bids

    def batch_draws(self, view: AuctionView) -> int:
        return 3

    def prepare_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        u: FloatArray,
    ) -> tuple[Any, ...]:
        # Each row's action under the current policy, what it keeps of its value (or,
        # on an absolute grid, its bid) and its time.
        self._refresh_policy(market, view)
        size = self.q_values.size
        explored = np.minimum((u[:, 1] * size).astype(np.int64), size - 1)
        action = np.where(u[:, 0] < self._policy_epsilon, explored, self._greedy)
        grid = self.bids_bps
        kept = grid[action] if grid is not None else 1.0 - self.shading_levels[action]
        return action, np.asarray(kept, dtype=np.float64), view.window_ms * (0.5 + 0.4 * u[:, 2])

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        action, kept, times = prepared
        # As _bid: the grid's bid, or (1 - shading) * value.
        bid = kept if self.bids_bps is not None else kept * values_bps
        b = single_bid_batch(view, baseline_quantity, bid, times)
        # The learner's action goes back with the feedback; -1 where it did not bid (a new
        # BidBatch: dataclasses.replace costs more than the bids).
        tag = np.where(b.present[:, 0], action, -1)
        return BidBatch(
            b.improvement_bps, b.quantity, b.timestamp_ms, b.priority_fee, b.present, tag
        )

    def batch_state(self, view: AuctionView, market: MarketConditions) -> Hashable:
        self._refresh_policy(market, view)
        return self._greedy, self._policy_epsilon

    def batch_key(self, view: AuctionView, market: MarketConditions) -> Hashable:
        # Its policy as of this auction (what the scalar form refreshes first), and the
        # state it comes from: two bidders with equal keys bid alike.
        self._refresh_policy(market, view)
        return (super().batch_key(view, market), self._greedy, self._policy_epsilon)

    # -- learning -------------------------------------------------------------------

    def _update(self, action: int | None, participated: bool, reward: float) -> None:
        self.auctions_learnt += 1
        if action is None or action < 0 or not participated or not math.isfinite(reward):
            return
        self.visits[action] += 1
        alpha = self.learning_rate if self.learning_rate is not None else 1.0 / self.visits[action]
        target = reward + (self.discount * float(self.q_values.max()) if self.discount else 0.0)
        self.q_values[action] += alpha * (target - self.q_values[action])

    def observe(self, feedback: AuctionFeedback) -> None:
        self._update(self._last_action, feedback.participated, feedback.reward_bps)
        self._last_action = None

    def observe_batch(self, feedback: FeedbackBatch) -> None:
        tags = feedback.tag
        for i in range(feedback.participated.shape[0]):
            action = None if tags is None else int(tags[i])
            self._update(action, bool(feedback.participated[i]), float(feedback.reward_bps[i]))
