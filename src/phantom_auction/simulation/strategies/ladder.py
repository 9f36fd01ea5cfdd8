"""Ladder bidding: re-bids on a jittered timer, each offer clamped to a margined value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .base import (
    BOUND_SLACK_BPS,
    BPS,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    FloatArray,
    new_bid,
    order_volume,
    spread,
    value_bps,
)

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["LadderStrategy"]


class LadderStrategy(BidderStrategy):
    """The seed's fillers: one bid per ``interval_ms`` over the collection window.

    Per auction it draws ``2 * slots + extra_draws`` uniforms: slot ``k``'s timing from
    ``u[k]``, its offer from ``u[slots + k]`` (see :meth:`_schedule`), the priority fee,
    ``fee_fraction`` of the largest allowed, from the last one, and, if it sizes its
    bids, their volume from ``u[2 * slots]`` (:meth:`_quantity`). Offers are clamped to
    the accepted minimum and to ``cap = min(value * (1 - margin), accepted maximum)``; it
    abstains when the cap is below the accepted minimum or when it :meth:`sits_out` the
    market.
    """

    interval_ms: float
    margin: float
    fee_fraction: tuple[float, float]
    #: Uniforms per auction beyond the two per slot (the fee's; 2 with a volume draw).
    extra_draws: ClassVar[int] = 1

    def slots(self, view: AuctionView) -> int:
        """Bids per auction: one per interval over the collection window."""
        return int(view.window_ms // self.interval_ms) + 1

    def sits_out(self, market: MarketConditions) -> bool:
        """Whether it does not bid in this market at all (default: never)."""
        return False

    def _quantity(self, full: float, view: AuctionView, u: Any) -> Any:
        """Volume of its bids from the draw(s) ``u`` (default: the whole order)."""
        return full

    def _schedule(self, u: list[float], r: int) -> Iterator[tuple[float, float]]:
        """``(time ms, offer bps)`` of each of the ``r`` slots, before clamping."""
        raise NotImplementedError

    def _batch_schedule(self, u: FloatArray, r: int) -> tuple[FloatArray, FloatArray]:
        """:meth:`_schedule` for every row of ``u``: times and offers, ``(n, r)`` each."""
        raise NotImplementedError

    def _fee(self, qty: Any, view: AuctionView, u: Any) -> Any:
        """Priority fee of bids of volume ``qty`` from the draw(s) ``u`` (scalar or rows)."""
        f0, f1 = self.fee_fraction
        return qty * view.priority_fee_max_ratio * (f0 + (f1 - f0) * u)

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
        u = rng.random(2 * r + self.extra_draws).tolist()
        v = value_bps(baseline_price, private_value, view)
        cap = min(v * (1.0 - self.margin), view.max_improvement_bps)
        if self.sits_out(market) or not cap >= view.min_improvement_bps - BOUND_SLACK_BPS:
            return []
        qty = self._quantity(order_volume(baseline_quantity, view), view, u[2 * r])
        fee = self._fee(qty, view, u[-1])
        lowest, duration = view.min_improvement_bps, view.duration_ms
        bids = []
        for t, offer in self._schedule(u, r):
            # min/max as conditionals: this loop runs for every bid of the object path.
            imp = offer if offer > lowest else lowest
            if imp > cap:
                imp = cap
            price = baseline_price * (1.0 + imp / BPS)
            bids.append(new_bid((price, qty, t if t < duration else duration, fee)))
        return bids

    def batch_draws(self, view: AuctionView) -> int:
        return 2 * self.slots(view) + self.extra_draws

    def prepare_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        u: FloatArray,
    ) -> tuple[Any, ...]:
        # Times (within the auction), offers raised to the accepted minimum, volume and
        # fee (one number, or one per row): all but the cap at the value.
        r = self.slots(view)
        full = order_volume(baseline_quantity, view)
        qty = self._quantity(full, view, u[:, 2 * r])
        fee = self._fee(qty, view, u[:, -1])
        times, offers = self._batch_schedule(u, r)
        np.minimum(times, view.duration_ms, out=times)
        # _batch_schedule's arrays are its own: raised in place.
        np.maximum(offers, view.min_improvement_bps, out=offers)
        return times, offers, qty, fee

    def finish_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        prepared: tuple[Any, ...],
    ) -> BidBatch:
        times, offers, qty, fee = prepared
        n, r = offers.shape
        cap = np.minimum(values_bps * (1.0 - self.margin), view.max_improvement_bps)
        imp = np.minimum(offers, cap[:, None])
        ok = cap >= view.min_improvement_bps - BOUND_SLACK_BPS
        if self.sits_out(market):
            ok[:] = False
        # One volume, fee and verdict per row, spread over its slots (read-only views).
        return BidBatch(imp, spread(qty, (n, r)), times, spread(fee, (n, r)), spread(ok, (n, r)))
