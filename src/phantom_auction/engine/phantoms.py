"""Calibrated phantom bids: a randomised reserve drawn among the real bids.

One model, two samplers. The simulator draws many auctions at once from a numpy
generator (:func:`draw_phantom_arrays`). A live auction draws its phantoms from its
committed 32-byte seed alone (:func:`draw_phantom_bids`): SHAKE-256 of a domain tag and
the seed, read as 64-bit words, four per slot, turned into uniforms and then into bids
with the standard library only (``docs/commitment.md`` has the derivation step by step
and test vectors), so that anyone holding the revealed seed recomputes the same bids,
and one auction's draw costs microseconds instead of a numpy generator's setup. In both
samplers every slot's numbers are taken whether or not the slot holds a bid, so they
depend only on the stream, never on presence.

Model (SPEC, "Phantom bids"): each of ``max_phantom_bidders`` slots holds a bid with
probability ``bid_probability``; its improvement is a normal of mean ``mean_bps`` and
sd ``sd_bps`` truncated to ``[min_bps, max_bps]`` (inverse-CDF sampling); its volume is a
uniform fraction of the order and its priority fee a uniform fraction of the largest
allowed fee, so that phantoms look like real bids.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Final, TypeAlias

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
    "phantom_uniforms",
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
        return phantom_id(self.slot)


_PHANTOM_IDS: Final = tuple(f"phantom-{slot}" for slot in range(256))


def phantom_id(slot: int) -> str:
    """``phantom-<slot>`` (the common ones made once, not per auction)."""
    return _PHANTOM_IDS[slot] if 0 <= slot < 256 else f"phantom-{slot}"


def _check_seed(seed: object) -> bytes:
    if not isinstance(seed, bytes) or len(seed) != PHANTOM_SEED_SIZE:
        raise InvalidBidParameters(
            "phantom_seed", seed, f"must be exactly {PHANTOM_SEED_SIZE} bytes"
        )
    return seed


def phantom_commitment(seed: bytes) -> bytes:
    """SHA-256 of the 32-byte phantom seed: published when the auction opens."""
    return hashlib.sha256(_check_seed(seed)).digest()


#: Domain tag hashed before the seed: this stream is never valid for anything else.
PHANTOM_STREAM_DOMAIN: Final = b"phantom-auction/phantoms/v1"
#: Bytes of stream per slot: four 64-bit words (presence, improvement, volume, fee).
_SLOT_BYTES: Final = 32
_TWO_POW_M53: Final = 2.0**-53
_SQRT2: Final = math.sqrt(2.0)
_NATIVE_WORDS: Final = array("Q").itemsize == 8
_WORD_SWAP: Final = sys.byteorder == "little"


def _words(stream: bytes) -> Sequence[int]:
    """``stream`` as big-endian unsigned 64-bit words (array: one C call, no tuple)."""
    if not _NATIVE_WORDS:  # pragma: no cover - every mainstream platform has 8-byte "Q"
        return struct.unpack(f">{len(stream) // 8}Q", stream)
    words = array("Q", stream)
    if _WORD_SWAP:
        words.byteswap()
    return words


def phantom_uniforms(seed: bytes, count: int) -> list[float]:
    """The first ``count`` uniforms ``u_j`` in [0, 1) of the seed's phantom stream.

    ``stream = SHAKE-256(PHANTOM_STREAM_DOMAIN || seed)``; word ``w_j`` is bytes
    ``8j .. 8j+7`` read big-endian unsigned, and ``u_j = (w_j >> 11) * 2**-53`` (its top
    53 bits, exactly representable). Slot ``s`` uses ``u_4s`` (presence), ``u_4s+1``
    (improvement), ``u_4s+2`` (volume) and ``u_4s+3`` (fee).
    """
    stream = hashlib.shake_256(PHANTOM_STREAM_DOMAIN + _check_seed(seed)).digest(8 * count)
    return [(w >> 11) * _TWO_POW_M53 for w in _words(stream)]


class _SeedSampler:
    """One model's constants for drawing a live auction's phantoms from its seed."""

    __slots__ = (
        "_fee_low",
        "_fee_ratio",
        "_fee_span",
        "_high",
        "_inv_cdf",
        "_low",
        "_max_bps",
        "_min_bps",
        "_presence",
        "_size",
        "_slots",
        "_span",
        "_vol_low",
        "_vol_span",
    )

    def __init__(self, model: PhantomModel) -> None:
        self._slots = model.max_phantom_bidders
        self._size = _SLOT_BYTES * model.max_phantom_bidders
        # Present iff u < p, u = (w >> 11) * 2**-53; as integers (p * 2**53 is exact):
        # (w >> 11) < p * 2**53  <=>  (w >> 11) < ceil(p * 2**53)  <=>  w < ceil(...) << 11.
        self._presence = math.ceil(model.bid_probability * 2.0**53) << 11
        # Truncated normal by inverse CDF: u' = Phi(a) + (Phi(b) - Phi(a)) u, improvement
        # = mean + sd * Phi^-1(u'), clipped to [min_bps, max_bps].
        z_low = (model.min_bps - model.mean_bps) / model.sd_bps
        z_high = (model.max_bps - model.mean_bps) / model.sd_bps
        self._low = 0.5 * math.erfc(-z_low / _SQRT2)
        self._high = 0.5 * math.erfc(-z_high / _SQRT2)
        self._span = self._high - self._low
        self._inv_cdf = NormalDist(model.mean_bps, model.sd_bps).inv_cdf
        self._min_bps, self._max_bps = model.min_bps, model.max_bps
        self._vol_low = model.volume_fraction[0]
        self._vol_span = model.volume_fraction[1] - model.volume_fraction[0]
        self._fee_ratio = model.priority_fee_max_ratio
        self._fee_low = model.fee_fraction[0]
        self._fee_span = model.fee_fraction[1] - model.fee_fraction[0]

    def draw(self, seed: bytes, baseline_price: float, amount: float) -> tuple[PhantomBid, ...]:
        """The phantom bids drawn from ``seed``, in slot order."""
        return bids_of(self.draw_columns(seed, baseline_price, amount))

    def draw_columns(self, seed: bytes, baseline_price: float, amount: float) -> PhantomColumns:
        """The same draw as ``(slots, prices, volumes, fees)``: tuples of numbers, which
        the garbage collector stops tracking, where bid objects would stay tracked for as
        long as the auction runs."""
        if not self._slots:
            return _NO_COLUMNS
        stream = hashlib.shake_256(PHANTOM_STREAM_DOMAIN + seed).digest(self._size)
        words = _words(stream)
        presence = self._presence
        low, span, inv_cdf = self._low, self._span, self._inv_cdf
        min_bps, max_bps = self._min_bps, self._max_bps
        vol_low, vol_span = self._vol_low, self._vol_span
        fee_ratio, fee_low, fee_span = self._fee_ratio, self._fee_low, self._fee_span
        slots = [s for s, w in enumerate(words[::4]) if w < presence]
        prices, volumes, fees = [], [], []
        for slot in slots:
            j = 4 * slot
            u = low + span * ((words[j + 1] >> 11) * _TWO_POW_M53)
            if u <= 0.0:
                improvement = min_bps
            elif u >= 1.0:
                improvement = max_bps
            else:  # min(max(x, min_bps), max_bps), without the two calls
                improvement = inv_cdf(u)
                if improvement < min_bps:
                    improvement = min_bps
                elif improvement > max_bps:
                    improvement = max_bps
            volume = amount * (vol_low + vol_span * ((words[j + 2] >> 11) * _TWO_POW_M53))
            prices.append(baseline_price * (1.0 + improvement / 10_000.0))
            volumes.append(volume)
            fees.append(
                volume * fee_ratio * (fee_low + fee_span * ((words[j + 3] >> 11) * _TWO_POW_M53))
            )
        return (tuple(slots), tuple(prices), tuple(volumes), tuple(fees))


#: A draw as columns: slots, improved prices, volumes, priority fees (equal lengths).
PhantomColumns: TypeAlias = tuple[
    tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]
]
_NO_COLUMNS: Final[PhantomColumns] = ((), (), (), ())


def bids_of(columns: PhantomColumns) -> tuple[PhantomBid, ...]:
    """The :class:`PhantomBid` records of a draw given as columns."""
    return tuple(map(PhantomBid, *columns))


_SAMPLERS: dict[PhantomModel, _SeedSampler] = {}


def _sampler(model: PhantomModel) -> _SeedSampler:
    sampler = _SAMPLERS.get(model)
    if sampler is None:
        if len(_SAMPLERS) >= 64:
            _SAMPLERS.clear()
        sampler = _SAMPLERS[model] = _SeedSampler(model)
    return sampler


def draw_phantom_bids(
    model: PhantomModel, seed: bytes, baseline_price: float, baseline_amount: float
) -> tuple[PhantomBid, ...]:
    """The phantom bids of one live auction, from its 32-byte seed alone, in slot order.

    For each slot ``s`` of ``model.max_phantom_bidders``, with the uniforms of
    :func:`phantom_uniforms`: present iff ``u_4s < bid_probability``; improvement ``=
    NormalDist(mean_bps, sd_bps).inv_cdf(Phi(a) + (Phi(b) - Phi(a)) * u_4s+1)`` clipped to
    ``[min_bps, max_bps]`` (``Phi(z) = erfc(-z / sqrt 2) / 2`` at the standardised
    bounds; ``min_bps`` / ``max_bps`` when the argument is <= 0 / >= 1); price ``=
    baseline * (1 + improvement / 10_000)``; volume ``= amount * (lo + (hi - lo) *
    u_4s+2)`` over ``volume_fraction``; fee ``= volume * priority_fee_max_ratio * (lo +
    (hi - lo) * u_4s+3)`` over ``fee_fraction``. ``docs/commitment.md`` spells it out.
    """
    return _sampler(model).draw(_check_seed(seed), baseline_price, baseline_amount)


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
