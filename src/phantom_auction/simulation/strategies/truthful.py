"""Truthful bidding: offer exactly one's value (the dominant strategy in VCG / second price)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...mechanisms.rules import to_us
from .base import (
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FloatArray,
    order_volume,
    single_bid,
    single_bid_batch,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["TruthfulStrategy", "order_volume"]


def _last_ms(view: AuctionView) -> float:
    """The window's last microsecond, in ms. ``window_ms * u`` with ``u`` within ~1e-5 of 1
    rounds to the deadline itself, which the half-open window leaves out: capped here, a
    truthful bidder always bids (the rule book's times are whole microseconds)."""
    return (to_us(view.window_ms) - 1) / 1000.0


class TruthfulStrategy(BidderStrategy):
    """Bids its private value for the whole order, once, at a uniform time in the window.

    Values above the accepted range are bid at ``max_improvement_bps``; a value below
    ``min_improvement_bps`` cannot be bid, so the bidder abstains. No priority fee.
    Vickrey (1961): in second-price and VCG auctions this is weakly dominant.
    """

    name: ClassVar[str] = "truthful"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": True,
        "uses_private_value": True,
        "rebids": False,
        "vectorised": True,
    }

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
        return single_bid(
            baseline_price, baseline_quantity, view, v, min(view.window_ms * u, _last_ms(view))
        )

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
        return (np.minimum(view.window_ms * u[:, 0], _last_ms(view)),)  # the time

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        return single_bid_batch(view, baseline_quantity, values_bps, prepared[0])
