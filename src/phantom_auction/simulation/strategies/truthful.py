"""Truthful bidding: offer exactly one's value (the dominant strategy in VCG / second price)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .base import (
    BOUND_SLACK_BPS,
    BPS,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FloatArray,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["TruthfulStrategy", "order_volume"]


def order_volume(baseline_quantity: float, view: AuctionView) -> float:
    """The largest volume a bid may carry (token A): the whole order, within the limit."""
    return baseline_quantity * min(1.0, view.max_volume_fraction)


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
        if not v >= view.min_improvement_bps - BOUND_SLACK_BPS:
            return []
        imp = min(v, view.max_improvement_bps)
        t = view.window_ms * u
        qty = order_volume(baseline_quantity, view)
        return [Bid(baseline_price * (1.0 + imp / BPS), qty, t, 0.0)]

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch:
        n = values_bps.shape[0]
        u = rng.random((n,))
        imp = np.asarray(np.minimum(values_bps, view.max_improvement_bps))[:, None]
        present = (values_bps >= view.min_improvement_bps - BOUND_SLACK_BPS)[:, None]
        qty = np.full((n, 1), order_volume(baseline_quantity, view))
        return BidBatch(imp, qty, (view.window_ms * u)[:, None], np.zeros((n, 1)), present)
