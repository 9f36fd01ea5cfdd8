"""Calibrated phantom bids: a randomised reserve drawn among the real bids.

One generator serves both the live engine (one auction, from a committed seed) and the
simulator (many auctions at once). Every slot's draws are taken whether or not the slot
holds a bid, so the numbers depend only on the generator's state, never on presence.

Model (SPEC, "Phantom bids"): each of ``max_phantom_bidders`` slots holds a bid with
probability ``bid_probability``; its improvement is a normal of mean ``mean_bps`` and
sd ``sd_bps`` truncated to ``[min_bps, max_bps]`` (inverse-CDF sampling); its volume is a
uniform fraction of the order and its priority fee a uniform fraction of the largest
allowed fee, so that phantoms look like real bids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from ..config import AuctionConfig
from ..errors import InvalidBidParameters

__all__ = ["PhantomArrays", "PhantomModel", "draw_phantom_arrays"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PhantomModel:
    """Parameters of the phantom-bid distribution (bps over baseline; fractions of the order)."""

    max_phantom_bidders: int = 20
    bid_probability: float = 0.3
    mean_bps: float = 25.0
    sd_bps: float = 10.0
    min_bps: float = 10.0
    max_bps: float = 50.0
    volume_fraction: tuple[float, float] = (0.5, 1.0)
    fee_fraction: tuple[float, float] = (0.0, 0.5)
    priority_fee_max_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.max_phantom_bidders < 0:
            raise InvalidBidParameters(
                "max_phantom_bidders", self.max_phantom_bidders, "must be >= 0"
            )
        if not 0.0 <= self.bid_probability <= 1.0:
            raise InvalidBidParameters("bid_probability", self.bid_probability, "must be in [0, 1]")
        if not self.sd_bps > 0.0:
            raise InvalidBidParameters("sd_bps", self.sd_bps, "must be > 0")
        if not self.min_bps <= self.max_bps:
            raise InvalidBidParameters("min_bps", self.min_bps, f"is above max_bps={self.max_bps}")
        for name in ("volume_fraction", "fee_fraction"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high <= 1.0:
                raise InvalidBidParameters(name, (low, high), "must satisfy 0 <= low <= high <= 1")

    @classmethod
    def from_config(cls, config: AuctionConfig) -> PhantomModel:
        """The model the engine uses for ``config`` (``[phantom_auction]`` + mechanics)."""
        pa = config.phantom_auction
        return cls(
            max_phantom_bidders=pa.max_phantom_bidders,
            bid_probability=pa.bid_probability,
            mean_bps=pa.phantom_improvement_mean_bps,
            sd_bps=pa.phantom_improvement_sd_bps,
            min_bps=pa.min_improvement_bps,
            max_bps=pa.max_improvement_bps,
            volume_fraction=(0.5, min(1.0, config.auction_mechanics.max_bid_value_multiplier)),
            priority_fee_max_ratio=config.auction_mechanics.priority_fee_max_ratio,
        )


@dataclass(frozen=True, slots=True)
class PhantomArrays:
    """Phantom bids of ``A`` auctions x ``M`` slots; ``present`` masks the slots that bid."""

    present: NDArray[np.bool_]
    improvement_bps: FloatArray
    price: FloatArray
    volume: FloatArray
    priority_fee: FloatArray


def draw_phantom_arrays(
    model: PhantomModel,
    rng: np.random.Generator,
    n_auctions: int,
    baseline_price: float | FloatArray,
    baseline_amount: float | FloatArray,
) -> PhantomArrays:
    """Draw phantom bids for ``n_auctions`` auctions (prices in B per A, volumes in token A)."""
    shape = (n_auctions, model.max_phantom_bidders)
    present = rng.random(shape) < model.bid_probability
    lo = ndtr((model.min_bps - model.mean_bps) / model.sd_bps)
    hi = ndtr((model.max_bps - model.mean_bps) / model.sd_bps)
    u = lo + (hi - lo) * rng.random(shape)
    improvement = np.clip(model.mean_bps + model.sd_bps * ndtri(u), model.min_bps, model.max_bps)
    baseline = np.asarray(baseline_price, dtype=np.float64).reshape(-1, 1)
    amount = np.asarray(baseline_amount, dtype=np.float64).reshape(-1, 1)
    volume = amount * rng.uniform(*model.volume_fraction, size=shape)
    fee = volume * model.priority_fee_max_ratio * rng.uniform(*model.fee_fraction, size=shape)
    return PhantomArrays(
        present=present,
        improvement_bps=improvement,
        price=baseline * (1.0 + improvement / 10_000.0),
        volume=volume,
        priority_fee=fee,
    )
