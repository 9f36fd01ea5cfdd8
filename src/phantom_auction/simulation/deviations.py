"""How far a strategy profile is from equilibrium: ``utility_loss`` (an ε-BNE estimate).

Every real bidder plays ``strategy`` except bidder 0, which plays it *deviated*: its
improvement becomes ``scale * bid + shift`` bps (capped at the accepted maximum; a bid
pushed below the minimum is not sent). For each deviation on a grid of scalings and
shifts the simulator runs the same auctions (same seed: the same values, phantoms and
rivals' draws; common random numbers), and bidder 0's mean utility (value minus
payment, bps of the order) is compared with what it gets by not deviating. The loss is
the best gain over the grid, as bnelearn reports its utility loss (Bichler et al.
2021, "Learning equilibria in symmetric auction games using artificial neural
networks"): ``0`` for an equilibrium (within noise), positive when some deviation pays.
Standard errors are those of the paired per-auction differences.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidBidParameters
from .strategies.base import (
    BPS,
    AuctionView,
    Bid,
    BidBatch,
    BidderStrategy,
    call_generate_bids,
    strategy_label,
)

if TYPE_CHECKING:
    from .market import MarketConditions
    from .settings import SimulationConfig

__all__ = ["DEFAULT_SCALES", "DEFAULT_SHIFTS", "DeviatingStrategy", "UtilityLoss", "utility_loss"]

FloatArray = NDArray[np.float64]

#: Bid scalings and shifts (bps) tried by default; (1, 0) is not deviating.
DEFAULT_SCALES: tuple[float, ...] = (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25)
DEFAULT_SHIFTS: tuple[float, ...] = (-4.0, -1.0, 0.0, 1.0, 4.0)


class DeviatingStrategy(BidderStrategy):
    """``inner``'s bids moved to ``scale * bid + shift`` bps (same draws, same timing)."""

    name: ClassVar[str] = "deviation"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": False,
        "uses_private_value": True,
        "rebids": True,
        "vectorised": True,
    }

    def __init__(self, inner: Any, scale: float = 1.0, shift: float = 0.0) -> None:
        self.inner = inner
        self.scale = float(scale)
        self.shift = float(shift)

    def _move(self, bps: FloatArray, view: AuctionView) -> FloatArray:
        return np.minimum(self.scale * bps + self.shift, view.max_improvement_bps)

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
        bids = call_generate_bids(
            self.inner, baseline_price, baseline_quantity, market, rng, private_value, view
        )
        out = []
        for bid in bids:
            bps = float(self._move(np.array([(bid.price / baseline_price - 1.0) * BPS]), view)[0])
            if bps >= view.min_improvement_bps:
                out.append(bid._replace(price=baseline_price * (1.0 + bps / BPS)))
        return out

    def generate_batch(
        self,
        view: AuctionView,
        market: MarketConditions,
        baseline_price: float,
        baseline_quantity: float,
        values_bps: FloatArray,
        rng: np.random.Generator,
    ) -> BidBatch | None:
        if not isinstance(self.inner, BidderStrategy):
            return None
        batch = self.inner.generate_batch(
            view, market, baseline_price, baseline_quantity, values_bps, rng
        )
        if batch is None:
            return None
        moved = self._move(batch.improvement_bps, view)
        return replace(
            batch,
            improvement_bps=moved,
            present=batch.present & (moved >= view.min_improvement_bps),
        )


@dataclass(frozen=True, slots=True)
class UtilityLoss:
    """``utility_loss``'s answer; utilities and gains in bps of the order per auction.

    ``utility_bps`` (± ``utility_se_bps``): bidder 0's mean utility playing the profile;
    ``gain_bps`` (± ``gain_se_bps``): the best mean gain over the grid (>= 0: not
    deviating is on it), at ``best_scale`` and ``best_shift``; ``relative``: gain over
    utility (bnelearn's relative utility loss; NaN when the utility is 0); ``gains`` and
    ``gain_se``: every deviation's (scales x shifts).
    """

    strategy: str
    num_auctions: int
    utility_bps: float
    utility_se_bps: float
    gain_bps: float
    gain_se_bps: float
    best_scale: float
    best_shift: float
    scales: tuple[float, ...]
    shifts: tuple[float, ...]
    gains: FloatArray
    gain_se: FloatArray

    @property
    def relative(self) -> float:
        return self.gain_bps / self.utility_bps if self.utility_bps > 0.0 else math.nan

    def __repr__(self) -> str:
        return (
            f"UtilityLoss({self.strategy}: gain {self.gain_bps:.4f} ± {self.gain_se_bps:.4f} "
            f"bps at scale {self.best_scale:g}, shift {self.best_shift:+g} bps; utility "
            f"{self.utility_bps:.4f} ± {self.utility_se_bps:.4f} bps; {self.num_auctions} "
            "auctions)"
        )


def _profit(
    config: SimulationConfig,
    market: MarketConditions,
    strategy: Any,
    deviation: tuple[float, float],
    baseline: tuple[float, float],
    workers: int | None,
) -> FloatArray:
    """Bidder 0's utility per auction (bps of the order) when it plays ``deviation``."""
    from .parallel import run_monte_carlo
    from .simulator import PhantomSimulator

    sim = PhantomSimulator(replace(config, real_strategy=strategy), market)
    sim.strategies[0] = DeviatingStrategy(sim.strategies[0], *deviation)
    label = strategy_label(sim.strategies[0])
    result = run_monte_carlo(sim, *baseline, workers=workers, keep_rows=True)
    return np.asarray(result.columns[f"profit_bps:{label}"], dtype=np.float64)


def _grid(name: str, values: Sequence[float], *, positive: bool) -> tuple[float, ...]:
    """``values`` as floats, each finite (and > 0 if ``positive``), or the error naming
    ``name`` with the value passed."""
    what = "finite numbers > 0" if positive else "finite numbers (bps)"
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidBidParameters(name, values, f"must be a sequence of {what}")
    out: list[float] = []
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or (positive and not value > 0.0)
        ):
            raise InvalidBidParameters(name, values, f"must be {what}; not {value!r}")
        out.append(float(value))
    return tuple(out)


def utility_loss(
    config: SimulationConfig,
    market: MarketConditions | None = None,
    strategy: Any = None,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    shifts: Sequence[float] = DEFAULT_SHIFTS,
    baseline_price: float = 100.0,
    baseline_quantity: float = 1000.0,
    workers: int | None = None,
) -> UtilityLoss:
    """The best gain (bps of the order) one bidder gets by deviating from ``strategy``.

    ``config`` (a :class:`~.settings.SimulationConfig`, not a simulator) gives the
    auctions (``num_simulations`` of them, from ``seed``: give one so that every
    deviation sees the same auctions), ``market`` a
    :class:`~.market.MarketConditions` (``None``: the default one), ``strategy`` the
    profile every real bidder plays (a registered name or a strategy object; ``None``:
    ``config.real_strategy``). ``scales``: finite multipliers > 0 of the bid, 1 among
    them; ``shifts``: finite bps added to it, 0 among them. Learning is off: a learner is
    judged on what it bids now.
    """
    from .market import MarketConditions
    from .settings import SimulationConfig
    from .simulator import PhantomSimulator

    if not isinstance(config, SimulationConfig):
        # A simulator passed for its config failed deep inside, on num_real_bidders.
        hint = (
            ": pass its parts, utility_loss(simulator.config, simulator.market, ...)"
            if isinstance(config, PhantomSimulator)
            else ""
        )
        raise TypeError(
            f"utility_loss: config={type(config).__name__} is not a SimulationConfig{hint}"
        )
    if market is not None and not isinstance(market, MarketConditions):
        raise TypeError(
            f"utility_loss: market={type(market).__name__} is not a MarketConditions (or None)"
        )
    market = market if market is not None else MarketConditions()
    chosen = config.real_strategy if strategy is None else strategy
    if chosen is None:
        raise InvalidBidParameters("strategy", None, "give the strategy profile to test")
    if config.num_real_bidders < 1:
        raise InvalidBidParameters("num_real_bidders", config.num_real_bidders, "must be >= 1")
    if config.seed is None:
        raise InvalidBidParameters(
            "seed", None, "give a seed: every deviation must face the same auctions"
        )
    scale_grid = _grid("scales", scales, positive=True)
    shift_grid = _grid("shifts", shifts, positive=False)
    # Not deviating is the reference every gain is measured against.
    if 1.0 not in scale_grid:
        raise InvalidBidParameters("scales", scales, "must include 1 (not deviating)")
    if 0.0 not in shift_grid:
        raise InvalidBidParameters("shifts", shifts, "must include 0 bps (not deviating)")
    config = replace(config, enable_learning=False)
    baseline = (baseline_price, baseline_quantity)
    base = _profit(config, market, chosen, (1.0, 0.0), baseline, workers)
    n = base.size
    gains = np.zeros((len(scale_grid), len(shift_grid)))
    ses = np.zeros_like(gains)
    for i, scale in enumerate(scale_grid):
        for j, shift in enumerate(shift_grid):
            if scale == 1.0 and shift == 0.0:
                continue
            diff = _profit(config, market, chosen, (scale, shift), baseline, workers) - base
            gains[i, j] = float(diff.mean())
            ses[i, j] = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    flat = int(np.argmax(gains))
    i, j = flat // gains.shape[1], flat % gains.shape[1]
    return UtilityLoss(
        strategy=chosen if isinstance(chosen, str) else strategy_label(chosen),
        num_auctions=n,
        utility_bps=float(base.mean()),
        utility_se_bps=float(base.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf,
        gain_bps=float(gains[i, j]),
        gain_se_bps=float(ses[i, j]),
        best_scale=scale_grid[i],
        best_shift=shift_grid[j],
        scales=scale_grid,
        shifts=shift_grid,
        gains=gains,
        gain_se=ses,
    )
