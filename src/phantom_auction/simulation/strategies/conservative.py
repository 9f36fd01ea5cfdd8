"""Conservative bidding: few, well-margined bids, and none in illiquid or volatile markets."""

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
from .truthful import order_volume

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["ConservativeStrategy"]


class ConservativeStrategy(BidderStrategy):
    """The seed's conservative filler: a bid every ~30 ms offering 30–50 bps, higher fees.

    Each bid (every ``interval_ms`` ± 10 %, the first ~30 ms in) offers a fresh target
    uniform in ``target_bps`` (30–50 bps) but never more than its value less a wide
    ``margin`` (20 %), nor the accepted maximum. It sizes 50–100 % of the order (the
    whole order in textbook mode) and pays 30–60 % of the largest allowed priority fee.
    It sits out markets with ``volatility > max_volatility`` (0.6) or
    ``liquidity < min_liquidity`` (0.3), and auctions where even its capped bid would
    fall below the accepted minimum.
    """

    name: ClassVar[str] = "conservative"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": False,
        "uses_private_value": True,
        "rebids": True,
        "vectorised": True,
    }

    def __init__(
        self,
        interval_ms: float = 30.0,
        target_bps: tuple[float, float] = (30.0, 50.0),
        margin: float = 0.2,
        size_fraction: tuple[float, float] = (0.5, 1.0),
        fee_fraction: tuple[float, float] = (0.3, 0.6),
        max_volatility: float = 0.6,
        min_liquidity: float = 0.3,
    ) -> None:
        self.interval_ms = float(interval_ms)
        self.target_bps = (float(target_bps[0]), float(target_bps[1]))
        self.margin = float(margin)
        self.size_fraction = (float(size_fraction[0]), float(size_fraction[1]))
        self.fee_fraction = (float(fee_fraction[0]), float(fee_fraction[1]))
        self.max_volatility = float(max_volatility)
        self.min_liquidity = float(min_liquidity)

    def slots(self, view: AuctionView) -> int:
        """Bids per auction: one per interval over the collection window."""
        return int(view.window_ms // self.interval_ms) + 1

    def sits_out(self, market: MarketConditions) -> bool:
        """Whether the market is too volatile or too illiquid to bid in at all."""
        return market.volatility > self.max_volatility or market.liquidity < self.min_liquidity

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
        r = self.slots(view)
        u = rng.random(2 * r + 2).tolist()
        v = value_bps(baseline_price, private_value, view)
        cap = min(v * (1.0 - self.margin), view.max_improvement_bps)
        if self.sits_out(market) or not cap >= view.min_improvement_bps - BOUND_SLACK_BPS:
            return []
        full = order_volume(baseline_quantity, view)
        z0, z1 = self.size_fraction
        qty = full if view.whole_order else full * (z0 + (z1 - z0) * u[2 * r])
        f0, f1 = self.fee_fraction
        fee = qty * view.priority_fee_max_ratio * (f0 + (f1 - f0) * u[2 * r + 1])
        a0, a1 = self.target_bps
        lowest, duration = view.min_improvement_bps, view.duration_ms
        t = 0.0
        bids = []
        for k in range(r):
            t += self.interval_ms * (0.9 + 0.2 * u[k])
            target = a0 + (a1 - a0) * u[r + k]
            imp = target if target > lowest else lowest
            if imp > cap:
                imp = cap
            price = baseline_price * (1.0 + imp / BPS)
            bids.append(Bid(price, qty, t if t < duration else duration, fee))
        return bids

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch:
        n, r = values_bps.shape[0], self.slots(view)
        u = rng.random((n, 2 * r + 2))
        cap = np.minimum(values_bps * (1.0 - self.margin), view.max_improvement_bps)
        full = order_volume(baseline_quantity, view)
        z0, z1 = self.size_fraction
        qty = np.full(n, full) if view.whole_order else full * (z0 + (z1 - z0) * u[:, 2 * r])
        f0, f1 = self.fee_fraction
        fee = qty * view.priority_fee_max_ratio * (f0 + (f1 - f0) * u[:, 2 * r + 1])
        a0, a1 = self.target_bps
        times = np.minimum(
            np.cumsum(self.interval_ms * (0.9 + 0.2 * u[:, :r]), axis=1), view.duration_ms
        )
        targets = np.maximum(a0 + (a1 - a0) * u[:, r : 2 * r], view.min_improvement_bps)
        imp = np.minimum(targets, cap[:, None])
        ok = cap >= view.min_improvement_bps - BOUND_SLACK_BPS
        if self.sits_out(market):
            ok[:] = False
        return BidBatch(
            imp,
            np.repeat(qty[:, None], r, axis=1),
            times,
            np.repeat(fee[:, None], r, axis=1),
            np.repeat(ok[:, None], r, axis=1),
        )
