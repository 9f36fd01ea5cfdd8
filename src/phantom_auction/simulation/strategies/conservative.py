"""Conservative bidding: few, well-margined bids, and none in illiquid or volatile markets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .base import AuctionView, FloatArray, cumsum_rows
from .ladder import LadderStrategy

if TYPE_CHECKING:
    from ..market import MarketConditions

__all__ = ["ConservativeStrategy"]


class ConservativeStrategy(LadderStrategy):
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

    #: Uniforms per auction beyond the two per slot: the volume's and the fee's.
    extra_draws: ClassVar[int] = 2

    def sits_out(self, market: MarketConditions) -> bool:
        """Whether the market is too volatile or too illiquid to bid in at all."""
        return market.volatility > self.max_volatility or market.liquidity < self.min_liquidity

    def _quantity(self, full: float, view: AuctionView, u: Any) -> Any:
        z0, z1 = self.size_fraction
        return full if view.whole_order else full * (z0 + (z1 - z0) * u)

    def _schedule(self, u: list[float], r: int) -> Iterator[tuple[float, float]]:
        a0, a1 = self.target_bps
        t = 0.0
        for k in range(r):
            t += self.interval_ms * (0.9 + 0.2 * u[k])
            yield t, a0 + (a1 - a0) * u[r + k]

    def _batch_schedule(self, u: FloatArray, r: int) -> tuple[FloatArray, FloatArray]:
        a0, a1 = self.target_bps
        times = cumsum_rows(self.interval_ms * (0.9 + 0.2 * u[:, :r]))
        return times, a0 + (a1 - a0) * u[:, r : 2 * r]
