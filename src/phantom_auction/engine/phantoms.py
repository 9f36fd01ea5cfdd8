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

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from ..config import AuctionConfig
from ..errors import InvalidBidParameters

if TYPE_CHECKING:
    from .result import AuctionResult

__all__ = [
    "PHANTOM_SEED_SIZE",
    "PhantomArrays",
    "PhantomBid",
    "PhantomModel",
    "draw_phantom_arrays",
    "draw_phantom_bids",
    "phantom_commitment",
    "phantom_generator",
    "verify_phantoms",
]

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


# -- live engine: one auction's phantoms from a committed seed --

PHANTOM_SEED_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class PhantomBid:
    """One phantom bid of a live auction: slot ``slot`` of the model, id ``phantom-<slot>``.

    ``improved_price`` in B per A, ``volume`` in token A units, ``priority_fee`` in token
    units, exactly as a real bid; a phantom ranks and sets prices but never fills.
    """

    slot: int
    improved_price: float
    volume: float
    priority_fee: float

    @property
    def bidder_id(self) -> str:
        """``phantom-<slot>``: the name the phantom carries in rankings."""
        return f"phantom-{self.slot}"


def _check_seed(seed: object) -> bytes:
    if not isinstance(seed, bytes) or len(seed) != PHANTOM_SEED_SIZE:
        raise InvalidBidParameters(
            "phantom_seed", seed, f"must be exactly {PHANTOM_SEED_SIZE} bytes"
        )
    return seed


def phantom_commitment(seed: bytes) -> bytes:
    """SHA-256 of the 32-byte phantom seed: published when the auction opens."""
    return hashlib.sha256(_check_seed(seed)).digest()


def phantom_generator(seed: bytes) -> np.random.Generator:
    """The generator a live auction draws its phantoms from, derived from the seed alone.

    ``numpy.random.default_rng(int.from_bytes(seed, "big"))``, i.e.
    ``Generator(PCG64(SeedSequence(entropy=<seed read as a big-endian integer>)))``;
    anyone holding the revealed seed recomputes the same draws.
    """
    return np.random.default_rng(int.from_bytes(_check_seed(seed), "big"))


def draw_phantom_bids(
    model: PhantomModel, seed: bytes, baseline_price: float, baseline_amount: float
) -> tuple[PhantomBid, ...]:
    """The phantom bids of one auction: :func:`draw_phantom_arrays` on
    :func:`phantom_generator` of ``seed``, keeping the slots that bid, in slot order."""
    arrays = draw_phantom_arrays(model, phantom_generator(seed), 1, baseline_price, baseline_amount)
    present = arrays.present[0].tolist()
    prices = arrays.price[0].tolist()
    volumes = arrays.volume[0].tolist()
    fees = arrays.priority_fee[0].tolist()
    return tuple(
        PhantomBid(slot, prices[slot], volumes[slot], fees[slot])
        for slot in range(len(present))
        if present[slot]
    )


def verify_phantoms(result: AuctionResult, *, model: PhantomModel | None = None) -> bool:
    """Check a finished auction's phantom bids against its revealed seed.

    True iff SHA-256 of ``result.phantom_seed`` is the ``phantom_commitment`` published
    at open, the phantom bids recomputed from that seed (with ``model``, by default the
    one the result names; pass the published configuration's model to check that too)
    are exactly ``result.phantom_bids``, and the phantoms in ``result.ranking`` are
    those same bids. So no phantom can have been added, removed or moved after the
    real bids were seen.
    """
    seed = result.phantom_seed
    if not isinstance(seed, bytes) or len(seed) != PHANTOM_SEED_SIZE:
        return False
    if hashlib.sha256(seed).digest() != result.phantom_commitment:
        return False
    if model is not None and model != result.phantom_model:
        return False
    expected = draw_phantom_bids(result.phantom_model, seed, result.baseline_price, result.amount)
    if expected != result.phantom_bids:
        return False
    ranked = sorted(
        (entry.bidder_id, entry.improved_price, entry.volume, entry.priority_fee)
        for entry in result.ranking
        if entry.is_phantom
    )
    listed = sorted(
        (bid.bidder_id, bid.improved_price, bid.volume, bid.priority_fee) for bid in expected
    )
    return ranked == listed
