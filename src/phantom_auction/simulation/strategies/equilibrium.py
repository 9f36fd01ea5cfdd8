"""Competitive-equilibrium bidding: the symmetric Bayes-Nash equilibrium bid."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

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

__all__ = ["CompetitiveEquilibriumStrategy", "first_price_equilibrium_table"]

#: Tail mass left out of the bid table on each side of the value distribution.
_TAIL = 1e-9
_POINTS = 4097


def _distribution_key(dist: Any) -> tuple[Any, ...]:
    inner = getattr(dist, "dist", None)
    kwds = getattr(dist, "kwds", {})
    return (
        getattr(inner, "name", type(dist).__name__),
        tuple(getattr(dist, "args", ())),
        tuple(sorted(kwds.items())) if isinstance(kwds, dict) else id(dist),
    )


#: Gauss-Legendre nodes per table point: exact for polynomial F^(n-1) up to degree 127.
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(64)
_TABLES: dict[tuple[Any, ...], tuple[FloatArray, FloatArray]] = {}


def first_price_equilibrium_table(dist: Any, n: int) -> tuple[FloatArray, FloatArray]:
    """Grid ``(v, b(v))`` of the symmetric first-price equilibrium for ``n`` bidders.

    ``b(v) = v - ∫_lo^v F(x)^(n-1) dx / F(v)^(n-1)`` (Vickrey 1961; Krishna, *Auction
    Theory*, ch. 2) for independent values with CDF F: the expected highest rival value
    given that it is below v. Each point integrates ``(F(x)/F(v))^(n-1)`` over
    ``[lo, v]`` with 64-point Gauss-Legendre quadrature (exact for uniform values),
    ``lo`` being F's 1e-9 quantile; points are an even grid and a quantile grid between
    F's 1e-9 and 1 - 1e-9 quantiles. Cached per (distribution, n).
    """
    key = (_distribution_key(dist), n)
    cached = _TABLES.get(key)
    if cached is not None:
        return cached
    lo, hi = float(dist.ppf(_TAIL)), float(dist.ppf(1.0 - _TAIL))
    grid = np.concatenate(
        (
            np.linspace(lo, hi, _POINTS),
            np.asarray(dist.ppf(np.linspace(_TAIL, 1.0 - _TAIL, _POINTS)), dtype=np.float64),
        )
    )
    x = np.unique(grid[np.isfinite(grid) & (grid >= lo)])
    half = (x - lo) / 2.0
    nodes = lo + half[:, None] * (_NODES[None, :] + 1.0)
    top = np.asarray(dist.cdf(x), dtype=np.float64)
    bids = x.copy()
    positive = top > 0.0
    ratio = np.asarray(dist.cdf(nodes[positive]), dtype=np.float64) / top[positive, None]
    integral = half[positive] * ((ratio ** (n - 1)) @ _WEIGHTS)
    bids[positive] = x[positive] - integral
    table = (x, np.minimum(bids, x))
    if len(_TABLES) > 64:
        _TABLES.clear()
    _TABLES[key] = table
    return table


class CompetitiveEquilibriumStrategy(BidderStrategy):
    """Bids the symmetric Bayes-Nash equilibrium for the value distribution and rivals.

    In pay-as-bid (first-price) auctions it bids ``b(v)`` of
    :func:`first_price_equilibrium_table` for the view's ``num_bidders`` and value
    distribution (``(n-1)/n * v`` for uniform values on [0, H]); in VCG, second-price
    and uniform-price auctions, where bidding one's value is (weakly) dominant for a
    whole-order bidder, it bids its value. With correlated values (market mode) the
    independent-values formula is an approximation, and phantom bids are not modelled
    as rivals. Strategic timing: one bid late in the window (75–95 % of it), so that
    nothing about it leaks early. Whole order, no priority fee; risk neutral.
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
        self._table_key: tuple[Any, ...] | None = None
        self._table: tuple[FloatArray, FloatArray] | None = None

    def _bid_table(self, view: AuctionView) -> tuple[FloatArray, FloatArray] | None:
        """The first-price table for ``view``, or ``None`` when it bids its value."""
        if view.mechanism != "discriminatory":
            return None
        dist = view.value_distribution
        if dist is None:
            low, high = view.min_improvement_bps, view.max_improvement_bps
            if not (math.isfinite(low) and math.isfinite(high)):
                return None
            from scipy import stats

            dist = stats.uniform(loc=low, scale=high - low)
        key = (view.num_bidders, _distribution_key(dist))
        if self._table is None or self._table_key != key:
            self._table = first_price_equilibrium_table(dist, view.num_bidders)
            self._table_key = key
        return self._table

    def equilibrium_bid(self, values_bps: NDArray[np.float64] | float, view: AuctionView) -> Any:
        """``b(v)`` in bps for values in bps (before the accepted range is applied)."""
        table = self._bid_table(view)
        v = np.asarray(values_bps, dtype=np.float64)
        if table is None:
            return v.copy()
        x, b = table
        # Above the table F = 1, so b stays at b(top); below it b(v) = v.
        out = np.interp(v, x, b)
        return np.where(v < x[0], v, out)

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
        return single_bid(baseline_price, baseline_quantity, view, bid, t)

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch:
        u = rng.random((values_bps.shape[0],))
        bid = self.equilibrium_bid(values_bps, view)
        return single_bid_batch(view, baseline_quantity, bid, view.window_ms * (0.75 + 0.2 * u))
