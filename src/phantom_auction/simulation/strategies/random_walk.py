"""Random-walk bidding: the bid path is a geometric Brownian motion with jumps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy.special import ndtri

from .base import (
    BOUND_SLACK_BPS,
    BPS,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FloatArray,
    add_to_rows,
    cumsum_rows,
    new_bid,
    order_volume,
    spread,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["RandomWalkStrategy"]


class RandomWalkStrategy(BidderStrategy):
    """A filler whose offer follows a jump diffusion (Merton 1976) over the window.

    It opens at ``start`` (50–80 %) of its value and re-bids every ``step_ms``; between
    bids the log of its offer moves by ``(drift - sigma²/2) dτ + sigma √dτ Z`` plus, with
    probability ``jump_rate * dτ``, a jump ``N(0, jump_sd²)``, where ``dτ`` is the step
    as a fraction of the collection window and ``sigma = base_sigma + vol_sigma *
    volatility``. Offers are capped at its value and at the accepted maximum; a point
    of the path below the accepted minimum is not submitted. Whole order; a priority
    fee of ``fee_fraction`` (20 %) of the largest allowed.
    """

    name: ClassVar[str] = "random_walk"
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
        step_ms: float = 5.0,
        start: tuple[float, float] = (0.5, 0.8),
        drift: float = 0.4,
        base_sigma: float = 0.2,
        vol_sigma: float = 0.5,
        jump_rate: float = 2.0,
        jump_sd: float = 0.15,
        fee_fraction: float = 0.2,
    ) -> None:
        self.step_ms = float(step_ms)
        self.start = (float(start[0]), float(start[1]))
        self.drift = float(drift)
        self.base_sigma = float(base_sigma)
        self.vol_sigma = float(vol_sigma)
        self.jump_rate = float(jump_rate)
        self.jump_sd = float(jump_sd)
        self.fee_fraction = float(fee_fraction)

    def slots(self, view: AuctionView) -> int:
        """Points of the bid path: one per step over the collection window."""
        return int(view.window_ms // self.step_ms) + 1

    def _coefficients(self, view: AuctionView, market: MarketConditions) -> tuple[float, ...]:
        dtau = self.step_ms / view.window_ms
        sigma = self.base_sigma + self.vol_sigma * market.volatility
        return (
            (self.drift - 0.5 * sigma * sigma) * dtau,
            sigma * math.sqrt(dtau),
            self.jump_rate * dtau,
        )

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
        u = rng.random(4 * r - 2)
        v = value_bps(baseline_price, private_value, view)
        cap = min(v, view.max_improvement_bps)
        floor = view.min_improvement_bps - BOUND_SLACK_BPS
        if not (v > 0.0 and cap >= floor):
            return []
        mu, scale, p_jump = self._coefficients(view, market)
        z = ndtri(u[1 + r : 2 * r]).tolist()
        occurs = u[2 * r : 3 * r - 1].tolist()
        sizes = u[3 * r - 1 :]
        times = u[1 : 1 + r].tolist()
        qty = order_volume(baseline_quantity, view)
        fee = qty * view.priority_fee_max_ratio * self.fee_fraction
        s0, s1 = self.start
        log_bid = math.log(v * (s0 + (s1 - s0) * float(u[0])))
        step_ms, duration = self.step_ms, view.duration_ms
        bids = []
        for k in range(r):
            if k:
                step = mu + scale * z[k - 1]
                if occurs[k - 1] < p_jump:
                    step += self.jump_sd * float(ndtri(sizes[k - 1]))
                log_bid += step
            # min() as conditionals: this loop runs for every point of every path.
            imp = math.exp(log_bid)
            if imp > cap:
                imp = cap
            if imp >= floor:
                t = step_ms * (k + 0.5 * times[k])
                price = baseline_price * (1.0 + imp / BPS)
                bids.append(new_bid((price, qty, t if t < duration else duration, fee)))
        return bids

    def batch_draws(self, view: AuctionView) -> int:
        return 4 * self.slots(view) - 2

    def prepare_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        u: FloatArray,
    ) -> tuple[Any, ...]:
        # The opening fraction of the value, the path's steps after the first (diffusion
        # and jumps) and the times: all but the value.
        r = self.slots(view)
        mu, scale, p_jump = self._coefficients(view, market)
        s0, s1 = self.start
        opening = s0 + (s1 - s0) * u[:, 0]
        # In place, the same operations as the scalar form (x * y == y * x, bit for bit).
        steps = ndtri(u[:, 1 + r : 2 * r])
        steps *= scale
        steps += mu
        # Only the jumps that occur need their size (the draws are taken regardless):
        # found once, as flat indices ``at`` into the (n, r - 1) occurrences, then moved
        # to the draws' rows.
        at = np.flatnonzero(u[:, 2 * r : 3 * r - 1] < p_jump)
        row = at // (r - 1)
        sizes = np.ascontiguousarray(u).reshape(-1)[at + row * (u.shape[1] - (r - 1)) + (3 * r - 1)]
        steps.reshape(-1)[at] += self.jump_sd * ndtri(sizes)
        times = u[:, 1 : 1 + r] * 0.5
        add_to_rows(times, np.arange(r, dtype=np.float64))
        times *= self.step_ms
        # A time is at most fl(step * (r - 0.5)) (rounding is monotone): when that is
        # within the auction, the cap at its end changes nothing and is skipped.
        if not self.step_ms * (r - 0.5) <= view.duration_ms:
            np.minimum(times, view.duration_ms, out=times)
        return opening, steps, times

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        opening, later_steps, times = prepared
        n, r = times.shape
        cap = np.minimum(values_bps, view.max_improvement_bps)
        ok = (values_bps > 0.0) & (cap >= view.min_improvement_bps - BOUND_SLACK_BPS)
        steps = np.empty((n, r))
        with np.errstate(divide="ignore", invalid="ignore"):
            steps[:, 0] = np.log(values_bps * opening)
        steps[:, 1:] = later_steps
        imp = np.exp(cumsum_rows(steps), out=steps)
        np.minimum(imp, cap[:, None], out=imp)
        present = imp >= view.min_improvement_bps - BOUND_SLACK_BPS
        present &= ok[:, None]
        if not ok.all():  # (rows without a value, or whose cap is below the minimum)
            imp[~ok] = 0.0
        qty = order_volume(baseline_quantity, view)
        fee = qty * view.priority_fee_max_ratio * self.fee_fraction
        return BidBatch(imp, spread(qty, (n, r)), times, spread(fee, (n, r)), present)
