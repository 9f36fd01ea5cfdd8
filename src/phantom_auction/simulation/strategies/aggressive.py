"""Aggressive bidding: frequent small raises up to (almost) one's value."""

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

__all__ = ["AggressiveStrategy"]


class AggressiveStrategy(BidderStrategy):
    """The seed's aggressive filler: re-bids every ~10 ms in small 10–15 bps steps, low fees.

    Opens at ``open_bps`` (uniform in 10–15 bps) within ``interval_ms`` of the auction's
    start and raises by ``step_bps`` (uniform in 10–15 bps) every ``interval_ms`` (±10 %
    jitter), never below the accepted minimum, never above its value less a thin
    ``margin`` (2 %) nor above the accepted maximum. It bids for the whole order with a
    priority fee of ``fee_fraction`` (0–10 %) of the largest allowed fee. Abstains when
    even the capped bid would be below the accepted minimum. Best for liquid markets:
    by the end of the window it has shaded little.
    """

    name: ClassVar[str] = "aggressive"
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
        interval_ms: float = 10.0,
        open_bps: tuple[float, float] = (10.0, 15.0),
        step_bps: tuple[float, float] = (10.0, 15.0),
        margin: float = 0.02,
        fee_fraction: tuple[float, float] = (0.0, 0.1),
    ) -> None:
        self.interval_ms = float(interval_ms)
        self.open_bps = (float(open_bps[0]), float(open_bps[1]))
        self.step_bps = (float(step_bps[0]), float(step_bps[1]))
        self.margin = float(margin)
        self.fee_fraction = (float(fee_fraction[0]), float(fee_fraction[1]))

    def slots(self, view: AuctionView) -> int:
        """Bids per auction: one per interval over the collection window."""
        return int(view.window_ms // self.interval_ms) + 1

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
        u = rng.random(2 * r + 1).tolist()
        v = value_bps(baseline_price, private_value, view)
        cap = min(v * (1.0 - self.margin), view.max_improvement_bps)
        if not cap >= view.min_improvement_bps - BOUND_SLACK_BPS:
            return []
        qty = order_volume(baseline_quantity, view)
        f0, f1 = self.fee_fraction
        fee = qty * view.priority_fee_max_ratio * (f0 + (f1 - f0) * u[2 * r])
        o0, o1 = self.open_bps
        s0, s1 = self.step_bps
        interval, lowest, duration = self.interval_ms, view.min_improvement_bps, view.duration_ms
        t = interval * u[0]
        level = o0 + (o1 - o0) * u[r]
        bids = []
        for k in range(r):
            if k:
                t += interval * (0.9 + 0.2 * u[k])
                level += s0 + (s1 - s0) * u[r + k]
            # min/max as conditionals: this loop runs for every bid of the object path.
            imp = level if level > lowest else lowest
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
        u = rng.random((n, 2 * r + 1))
        cap = np.minimum(values_bps * (1.0 - self.margin), view.max_improvement_bps)
        qty = order_volume(baseline_quantity, view)
        f0, f1 = self.fee_fraction
        fee = qty * view.priority_fee_max_ratio * (f0 + (f1 - f0) * u[:, 2 * r])
        o0, o1 = self.open_bps
        s0, s1 = self.step_bps
        gaps = np.empty((n, r))
        gaps[:, 0] = self.interval_ms * u[:, 0]
        gaps[:, 1:] = self.interval_ms * (0.9 + 0.2 * u[:, 1:r])
        times = np.minimum(np.cumsum(gaps, axis=1), view.duration_ms)
        steps = np.empty((n, r))
        steps[:, 0] = o0 + (o1 - o0) * u[:, r]
        steps[:, 1:] = s0 + (s1 - s0) * u[:, r + 1 : 2 * r]
        levels = np.maximum(np.cumsum(steps, axis=1), view.min_improvement_bps)
        imp = np.minimum(levels, cap[:, None])
        present = np.broadcast_to(
            (cap >= view.min_improvement_bps - BOUND_SLACK_BPS)[:, None], (n, r)
        )
        return BidBatch(
            imp,
            np.full((n, r), qty),
            times,
            np.broadcast_to(fee[:, None], (n, r)).copy(),
            present.copy(),
        )
