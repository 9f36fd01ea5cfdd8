"""Competitive-equilibrium bidding: the symmetric Bayes-Nash equilibrium bid."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ...errors import InvalidBidParameters
from ..equilibrium import BiddingGame, BidFunction, solve_equilibrium
from .base import (
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FloatArray,
    single_bid,
    single_bid_batch,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["CompetitiveEquilibriumStrategy", "first_price_equilibrium_table", "game_of_view"]


def first_price_equilibrium_table(
    dist: Any, n: int, reserve_bps: float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Grid ``(v, b(v))`` of the symmetric first-price equilibrium for ``n`` bidders.

    ``b(v) = v - ∫_r^v F(x)^(n-1) dx / F(v)^(n-1)`` for values above the reserve ``r``
    (Riley & Samuelson 1981; Krishna, *Auction Theory*, ch. 2), ``r`` at the reserve,
    NaN (no bid) below it; see :mod:`phantom_auction.simulation.equilibrium`.
    """
    solved = solve_equilibrium(BiddingGame(dist, n, "discriminatory", reserve_bps))
    return solved.values, solved.bids


def game_of_view(view: AuctionView) -> BiddingGame:
    """The bidding game a view describes: its values, rivals, reserve, cap and phantoms.

    Without a value distribution, values are taken as uniform over the accepted range
    (the bidder's prior). The reserve is the view's ``min_improvement_bps``.
    """
    dist = view.value_distribution
    low, high = view.min_improvement_bps, view.max_improvement_bps
    if dist is None:
        if not (math.isfinite(low) and math.isfinite(high)):
            raise InvalidBidParameters(
                "value_distribution", None, "is needed when the improvement range is unbounded"
            )
        from scipy import stats

        dist = stats.uniform(loc=low, scale=high - low)
    return BiddingGame(
        dist,
        view.num_bidders,
        view.mechanism,
        reserve_bps=low if math.isfinite(low) else 0.0,
        max_bid_bps=high,
        phantoms=view.phantom_model,
        policy=view.phantom_policy,
        min_participants=view.min_participants,
    )


def _game_fields(view: AuctionView) -> tuple[Any, ...]:
    """The fields of ``view`` that :func:`game_of_view` reads (compared instead of the
    games: a view without a value distribution makes a new scipy one each time)."""
    return (
        view.value_distribution,
        view.num_bidders,
        view.mechanism,
        view.min_improvement_bps,
        view.max_improvement_bps,
        view.phantom_model,
        view.phantom_policy,
        view.min_participants,
    )


class CompetitiveEquilibriumStrategy(BidderStrategy):
    """Bids the symmetric Bayes-Nash equilibrium for the values, rivals, reserve and phantoms.

    The game is the view's (:func:`game_of_view`): the value distribution, the number of
    real bidders, the reserve (``min_improvement_bps``), the bid cap, the phantom model,
    the phantom policy and ``min_participants``; it is solved by
    :func:`~phantom_auction.simulation.equilibrium.solve_equilibrium` (closed form for
    pay-as-bid without phantoms, ``(n-1)/n * v`` for uniform values on [0, H]; value
    in second price when that is dominant; an ODE otherwise). A bidder whose value is
    below the reserve does not bid (one at it bids it). With correlated values (market mode) the
    independent-values solution is an approximation. Strategic timing: one bid late in
    the window (75–95 % of it), so that nothing about it leaks early. Whole order, no
    priority fee; risk neutral.
    """

    name: ClassVar[str] = "equilibrium"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": False,
        "uses_private_value": True,
        "rebids": False,
        "vectorised": True,
    }

    def __init__(self) -> None:
        self._game: tuple[Any, ...] | None = None
        self._bids: BidFunction | None = None

    def bid_function(self, view: AuctionView) -> BidFunction:
        """The equilibrium bid function of ``view``'s game (solved once per game: views
        that differ only in timing or volume, as live auctions' do, share it)."""
        game = _game_fields(view)
        if self._bids is None or self._game != game:
            self._bids = solve_equilibrium(game_of_view(view))
            self._game = game
        return self._bids

    def equilibrium_bid(self, values_bps: NDArray[np.float64] | float, view: AuctionView) -> Any:
        """``b(v)`` in bps for values in bps; NaN where that value does not bid."""
        return self.bid_function(view)(np.asarray(values_bps, dtype=np.float64))

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
        u = float(rng.random())
        v = value_bps(baseline_price, private_value, view)
        bid = float(self.equilibrium_bid(v, view))
        t = view.window_ms * (0.75 + 0.2 * u)
        if not math.isfinite(bid):
            return []
        return single_bid(baseline_price, baseline_quantity, view, bid, t)

    def batch_draws(self, view: AuctionView) -> int:
        return 1

    def prepare_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        u: FloatArray,
    ) -> tuple[Any, ...]:
        return (view.window_ms * (0.75 + 0.2 * u[:, 0]),)  # the time

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        # NaN (no bid) fails single_bid_batch's minimum test: the slot stays empty.
        bid = self.equilibrium_bid(values_bps, view)
        return single_bid_batch(view, baseline_quantity, bid, prepared[0])
