"""Calibrated phantom bids: a randomised reserve drawn among the real bids.

One concept past 600 lines: the model, its two samplers and the verifier share the
libm-free ``ln``, the SHAKE-256 stream and the sampler's constants, and must stay bit for
bit with each other and with docs/phantoms.md; the seed pool (``phantom_pool.py``) is
the separable part and lives apart.

One model, two samplers. The simulator draws many auctions at once from a numpy
generator (:func:`draw_phantom_arrays`, inverse CDF). A live auction draws its phantoms
from its committed 32-byte seed alone (:func:`draw_phantom_bids`): SHAKE-256 of a domain
tag and the seed, read as 64-bit words, turned into uniforms and then into bids with
correctly rounded IEEE-754 operations only (+, -, x, /, sqrt in a fixed order; the one
logarithm is :func:`ln`, a fixed polynomial), so that a verifier in any language redraws
every bit from the revealed seed. ``docs/phantoms.md`` specifies the derivation, its
accuracy, and test vectors; one auction's draw costs microseconds.

Model (SPEC, "Phantom bids"): each of ``max_phantom_bidders`` slots holds a bid with
probability ``bid_probability``; its improvement is a normal of mean ``mean_bps`` and
sd ``sd_bps`` truncated to ``[min_bps, max_bps]``; its volume is a uniform fraction of
the order and its priority fee a uniform fraction of the largest allowed fee, so that
phantoms look like real bids.

One module for the phantom draw and its libm-free arithmetic: the spec's test vectors
pin both together, and a verifier ports them together.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias, overload

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
    "PhantomBids",
    "PhantomModel",
    "draw_phantom_arrays",
    "draw_phantom_bids",
    "draw_phantom_columns",
    "phantom_commitment",
    "phantom_uniforms",
    "truncated_normal_bps",
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
        for name in ("bid_probability", "mean_bps", "sd_bps", "min_bps", "max_bps"):
            if not math.isfinite(getattr(self, name)):
                raise InvalidBidParameters(name, getattr(self, name), "must be finite")
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

    @classmethod
    def from_document(cls, doc: Any) -> PhantomModel:
        """The model a published ``phantom_model`` object states (``auction_opened`` and
        the competition document): its fields by name, pairs as two-element lists."""
        if not isinstance(doc, dict):
            raise InvalidBidParameters("phantom_model", doc, "must be a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        for keys, problem in ((doc.keys() - fields, "unknown"), (fields - doc.keys(), "missing")):
            if keys:
                raise InvalidBidParameters("phantom_model", sorted(keys), f"{problem} keys")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # a string for a number, a short pair
            raise InvalidBidParameters("phantom_model", doc, str(exc)) from None


@dataclass(frozen=True, slots=True)
class PhantomArrays:
    """Phantom bids of ``A`` auctions x ``M`` slots; ``present`` masks the slots that bid."""

    present: NDArray[np.bool_]
    improvement_bps: FloatArray
    price: FloatArray
    volume: FloatArray
    priority_fee: FloatArray


def truncated_normal_bps(model: PhantomModel, u: FloatArray) -> FloatArray:
    """The improvements (bps) of uniforms ``u`` in [0, 1): the model's truncated normal's
    inverse CDF, clipped to its bounds (the simulator's draw; a live auction's is the
    libm-free sampler below).

    An interval above the mean (``a > 0`` sds) is drawn through the upper tail's CDF,
    ``ndtr(-x)``: its lower CDF rounds to 1 from ``a`` ~ 8.3 on, where every draw fell on
    ``max_bps``, the far bound (the theory audit). An interval whose CDF range
    underflows to nothing (~38 sds away) is a point at the bound nearest the mean."""
    a = (model.min_bps - model.mean_bps) / model.sd_bps
    b = (model.max_bps - model.mean_bps) / model.sd_bps
    z: FloatArray
    if a > 0.0:
        upper, lower = ndtr(-a), ndtr(-b)
        if not upper > lower:
            return np.full(u.shape, model.min_bps)  # the bound nearest the mean
        z = -ndtri(upper - (upper - lower) * u)
    else:
        lo, hi = ndtr(a), ndtr(b)
        if not hi > lo:
            return np.full(u.shape, model.max_bps)
        z = ndtri(lo + (hi - lo) * u)
    # np.clip's bits (max then min), without its Python-level overhead.
    bps: FloatArray = np.maximum(model.mean_bps + model.sd_bps * z, model.min_bps)
    np.minimum(bps, model.max_bps, out=bps)
    return bps


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
    improvement = truncated_normal_bps(model, rng.random(shape))
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


#: Domain tag hashed before the seed: this stream is never valid for anything else. v2:
#: the libm-free sampler below (v1 used erfc and an inverse CDF; its draws differ).
PHANTOM_STREAM_DOMAIN: Final = b"phantom-auction/phantoms/v2"
#: Fixed words per slot: presence, volume, fee. The improvements' words follow them.
_SLOT_WORDS: Final = 3
#: Attempts one slot may take before it falls back to ``min_bps``: every proposal accepts
#: at least 25 % of attempts (a uniform on a 5-sd interval from 0), so the fallback has
#: probability below 10^-124.
MAX_ATTEMPTS: Final = 1000
_TWO_POW_M53: Final = 2.0**-53
#: 64-bit words in one SHAKE-256 block (its rate, 136 bytes).
_BLOCK_WORDS: Final = 17
_NATIVE_WORDS: Final = array("Q").itemsize == 8
_WORD_SWAP: Final = sys.byteorder == "little"

# ln(x) without libm: the constants of docs/phantoms.md, section "ln". LN2_HI has 32
# significant bits, so k * LN2_HI is exact for every exponent k of a double.
_SQRT_HALF: Final = 0.7071067811865476
_LN2_HI: Final = 6.93147180369123816490e-01
_LN2_LO: Final = 1.90821492927058770002e-10
_Q3, _Q5, _Q7, _Q9, _Q11, _Q13, _Q15, _Q17, _Q19, _Q21, _Q23 = (2.0 / n for n in range(3, 24, 2))


def ln(x: float) -> float:
    """Natural log of a positive finite double with +, -, x, / only (no libm), exactly as
    docs/phantoms.md specifies it, so that every language gets the same bits.

    ``x = m * 2**k`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` (exact), ``f = m - 1``,
    ``s = f / (2 + f)``: ``ln m = 2 atanh s = 2s + s * R``, ``R = s^2 (2/3 + 2/5 s^2 +
    ... + 2/23 s^20)`` (Horner), combined as fdlibm's ``__ieee754_log`` does to keep the
    rounding small. Within 1 unit in the last place (tested against a 50-digit log).
    """
    m, k = math.frexp(x)
    if m < _SQRT_HALF:
        m, k = m * 2.0, k - 1
    out: float = _ln_reduced(m - 1.0, k)
    return out


def _ln_reduced(f: Any, k: Any) -> Any:
    """``ln((1 + f) * 2**k)`` for the reduced ``f = m - 1`` of :func:`ln`: the series and
    the combination, on floats or elementwise on numpy arrays (the same operations in
    the same order, so the same bits: the seed pool's ``ln_array`` uses it too)."""
    s = f / (2.0 + f)
    t = s * s
    q = _Q23 * t + _Q21
    q = q * t + _Q19
    q = q * t + _Q17
    q = q * t + _Q15
    q = q * t + _Q13
    q = q * t + _Q11
    q = q * t + _Q9
    q = q * t + _Q7
    q = q * t + _Q5
    q = q * t + _Q3
    r = t * q
    hfsq = 0.5 * f * f
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + k * _LN2_LO)) - f)


def _words(stream: bytes) -> Sequence[int]:
    """``stream`` as big-endian unsigned 64-bit words (array: one C call, no tuple)."""
    if not _NATIVE_WORDS:  # pragma: no cover - every mainstream platform has 8-byte "Q"
        return struct.unpack(f">{len(stream) // 8}Q", stream)
    words = array("Q", stream)
    if _WORD_SWAP:
        words.byteswap()
    return words


def _stream(seed: bytes, count: int) -> Sequence[int]:
    """The first ``count`` words of the seed's phantom stream."""
    return _words(hashlib.shake_256(PHANTOM_STREAM_DOMAIN + seed).digest(8 * count))


def phantom_uniforms(seed: bytes, count: int) -> list[float]:
    """The first ``count`` uniforms ``u_j`` in [0, 1) of the seed's phantom stream.

    ``stream = SHAKE-256(PHANTOM_STREAM_DOMAIN || seed)``; word ``w_j`` is bytes
    ``8j .. 8j+7`` read big-endian unsigned, and ``u_j = (w_j >> 11) * 2**-53`` (its top
    53 bits, exactly representable). Slot ``s`` uses ``u_3s`` (presence), ``u_3s+1``
    (volume), ``u_3s+2`` (fee); the improvements take ``u_3M``, ``u_3M+1``, ... in order.
    """
    return [(w >> 11) * _TWO_POW_M53 for w in _stream(_check_seed(seed), count)]


class _SeedSampler:
    """One model's constants for drawing a live auction's phantoms from its seed.

    The improvement is a standard normal ``z`` truncated to ``[a, b]`` (the bounds in sd
    units), drawn by rejection with one of four proposals chosen once per model (Robert
    1995, "Simulation of truncated normal variables"): a normal (polar method) or a
    uniform when ``0`` is inside ``[a, b]``, an exponential or a uniform in a tail (the
    lower tail mirrored to the upper). Each attempt takes two uniforms; only ``ln`` and
    ``sqrt`` are needed beyond arithmetic, and ``ln`` is :func:`ln`.
    """

    __slots__ = (
        "_alpha",
        "_fee_low",
        "_fee_ratio",
        "_fee_span",
        "_high",
        "_low",
        "_max_bps",
        "_mean",
        "_min_bps",
        "_presence",
        "_proposal",
        "_sd",
        "_sign",
        "_slots",
        "_spare",
        "_vol_low",
        "_vol_span",
        "pool",
    )

    def __init__(self, model: PhantomModel) -> None:
        #: Its fresh seeds, made by ``phantom_pool.pool_for`` on first use.
        self.pool: Any = None
        self._slots = model.max_phantom_bidders
        # Words hashed up front: the slots' fixed ones and about two attempts per slot
        # likely to hold a bid plus eight, rounded up to whole SHAKE-256 blocks (17
        # words, 136 bytes: the cost is per block). The default models run past them in
        # under 2 % of draws (then a stream twice as long is hashed: the same words).
        fixed = _SLOT_WORDS * model.max_phantom_bidders
        wanted = fixed + 4 * math.ceil(model.max_phantom_bidders * model.bid_probability) + 16
        self._spare = -(-wanted // _BLOCK_WORDS) * _BLOCK_WORDS - fixed
        # Present iff u < p, u = (w >> 11) * 2**-53; as integers (p * 2**53 is exact):
        # (w >> 11) < p * 2**53  <=>  (w >> 11) < ceil(p * 2**53)  <=>  w < ceil(...) << 11.
        self._presence = math.ceil(model.bid_probability * 2.0**53) << 11
        self._mean, self._sd = model.mean_bps, model.sd_bps
        self._min_bps, self._max_bps = model.min_bps, model.max_bps
        a = (model.min_bps - model.mean_bps) / model.sd_bps
        b = (model.max_bps - model.mean_bps) / model.sd_bps
        self._proposal, self._sign, self._low, self._high = _proposal(a, b)
        self._alpha = 0.5 * (self._low + math.sqrt(self._low * self._low + 4.0))
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
        n = self._slots
        if not n:
            return _NO_COLUMNS
        fixed = _SLOT_WORDS * n
        # One hash call for the words most draws need (see __init__); a longer stream
        # is asked for when a draw runs past them.
        words = _stream(seed, fixed + self._spare)
        presence = self._presence
        slots = [s for s, w in enumerate(words[0:fixed:_SLOT_WORDS]) if w < presence]
        improvements, words = self._improvements(seed, words, fixed, len(slots))
        vol_low, vol_span = self._vol_low, self._vol_span
        fee_ratio, fee_low, fee_span = self._fee_ratio, self._fee_low, self._fee_span
        prices, volumes, fees = [], [], []
        for slot, improvement in zip(slots, improvements, strict=True):
            j = _SLOT_WORDS * slot
            volume = amount * (vol_low + vol_span * ((words[j + 1] >> 11) * _TWO_POW_M53))
            prices.append(baseline_price * (1.0 + improvement / 10_000.0))
            volumes.append(volume)
            fees.append(
                volume * fee_ratio * (fee_low + fee_span * ((words[j + 2] >> 11) * _TWO_POW_M53))
            )
        return (tuple(slots), tuple(prices), tuple(volumes), tuple(fees))

    def _improvements(
        self, seed: bytes, words: Sequence[int], cursor: int, count: int
    ) -> tuple[list[float], Sequence[int]]:
        """``count`` truncated-normal improvements (bps) from the words at ``cursor`` on,
        and the words (lengthened when the draw ran past them). One loop per proposal:
        this is the live engine's hot path."""
        proposal, sign, low, high, alpha = (
            self._proposal,
            self._sign,
            self._low,
            self._high,
            self._alpha,
        )
        mean, sd, min_bps, max_bps = self._mean, self._sd, self._min_bps, self._max_bps
        if proposal == _POINT:  # the bound nearest the mean: no attempt, no uniform used
            return [min_bps if sign > 0.0 else max_bps] * count, words
        if proposal in (_UNIFORM_CENTRE, _UNIFORM_TAIL):
            return self._uniform_improvements(seed, words, cursor, count)
        span = high - low
        peak = low if proposal == _UNIFORM_TAIL else 0.0
        two53, log = _TWO_POW_M53, ln
        normal, exponential = proposal == _NORMAL, proposal == _EXPONENTIAL
        end = len(words)
        out: list[float] = []
        for _ in range(count):
            z = math.nan  # no candidate accepted (after MAX_ATTEMPTS): min_bps
            for _ in _ATTEMPTS:
                if cursor + 2 > end:
                    words = _stream(seed, 2 * end)
                    end = len(words)
                u1 = (words[cursor] >> 11) * two53
                v = 1.0 - (words[cursor + 1] >> 11) * two53  # in (0, 1]
                cursor += 2
                if normal:  # polar method, first coordinate
                    x = 2.0 * u1 - 1.0
                    y = 2.0 * v - 1.0
                    r = x * x + y * y
                    if r >= 1.0 or r == 0.0:
                        continue
                    z = x * math.sqrt((-2.0 * log(r)) / r)
                    if low <= z <= high:
                        break
                    continue
                if exponential:  # tail: low + Exp(alpha)
                    z = low - log(1.0 - u1) / alpha
                    if z > high:
                        continue
                    d = z - alpha
                    h = -0.5 * (d * d)
                else:  # uniform on [low, high]
                    z = low + span * u1
                    h = 0.5 * ((peak - z) * (peak + z))
                # Accept iff ln(v) <= h; (v - 1) / v <= ln(v) <= v - 1 decide most
                # attempts without the logarithm.
                w = v - 1.0
                if w <= h or (w <= h * v and log(v) <= h):
                    break
            else:
                z = math.nan
            bps = mean + sd * (sign * z)
            out.append(
                min_bps if bps != bps or bps < min_bps else max_bps if bps > max_bps else bps
            )
        return out, words

    def _uniform_improvements(
        self, seed: bytes, words: Sequence[int], cursor: int, count: int
    ) -> tuple[list[float], Sequence[int]]:
        """:meth:`_improvements` for the uniform proposals (the default model's), written
        out alone: the same operations, without the other proposals' branches."""
        low, span = self._low, self._high - self._low
        peak = low if self._proposal == _UNIFORM_TAIL else 0.0
        # sd * (sign * z) == (sd * sign) * z bit for bit: sign is +-1 and rounding to
        # nearest is symmetric.
        mean, scale = self._mean, self._sd * self._sign
        min_bps, max_bps = self._min_bps, self._max_bps
        two53, log = _TWO_POW_M53, ln
        end = len(words)
        out: list[float] = []
        append = out.append
        for _ in range(count):
            attempts = 0
            while True:
                if cursor + 2 > end:
                    words = _stream(seed, 2 * end)
                    end = len(words)
                z = low + span * ((words[cursor] >> 11) * two53)
                v = 1.0 - (words[cursor + 1] >> 11) * two53
                cursor += 2
                h = 0.5 * ((peak - z) * (peak + z))
                w = v - 1.0
                if w <= h or (w <= h * v and log(v) <= h):
                    bps = mean + scale * z
                    append(min_bps if bps < min_bps else max_bps if bps > max_bps else bps)
                    break
                attempts += 1
                if attempts == MAX_ATTEMPTS:
                    append(min_bps)
                    break
        return out, words


# Proposals of the truncated-normal sampler (docs/phantoms.md, "improvement").
_POINT: Final = 0
_NORMAL: Final = 1
_UNIFORM_CENTRE: Final = 2
_UNIFORM_TAIL: Final = 3
_EXPONENTIAL: Final = 4
#: Widest ``[a, b]`` around 0 (sd units) drawn from a uniform proposal; wider ones use
#: the normal (acceptance >= 0.25 either way).
_UNIFORM_WIDTH: Final = 5.0
_ATTEMPTS: Final = range(MAX_ATTEMPTS)


def _proposal(a: float, b: float) -> tuple[int, float, float, float]:
    """``(proposal, sign, low, high)`` for a standard normal truncated to ``[a, b]``:
    the draw is ``sign * z`` with ``z`` in ``[low, high]``."""
    if a < 0.0 < b:
        return (_NORMAL if b - a >= _UNIFORM_WIDTH else _UNIFORM_CENTRE), 1.0, a, b
    sign, low, high = (1.0, a, b) if a >= 0.0 else (-1.0, -b, -a)
    alpha = 0.5 * (low + math.sqrt(low * low + 4.0))
    if a == b or not alpha < math.inf:
        # All the mass at the bound nearest the mean, ``low``: an interval of one point,
        # or one so many sds away that ``low * low`` overflows (the theory audit: there
        # every exponential attempt was rejected, and the slot fell back to min_bps, the
        # far bound when the mean is above the interval).
        return _POINT, sign, low, low
    return (_UNIFORM_TAIL if alpha * (high - low) < 1.0 else _EXPONENTIAL), sign, low, high


#: A draw as columns: slots, improved prices, volumes, priority fees (equal lengths).
PhantomColumns: TypeAlias = tuple[
    tuple[int, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]
]
_NO_COLUMNS: Final[PhantomColumns] = ((), (), (), ())


def bids_of(columns: PhantomColumns) -> tuple[PhantomBid, ...]:
    """The :class:`PhantomBid` records of a draw given as columns."""
    return tuple(map(PhantomBid, *columns))


class PhantomBids(Sequence[PhantomBid]):
    """A draw's :class:`PhantomBid` records in slot order: an immutable sequence, equal
    to the tuple of the same records, built from the columns on first access (most
    results are never asked for them, and ~6 frozen records cost more than clearing)."""

    __slots__ = ("_bids", "_columns")

    def __init__(self, columns: PhantomColumns) -> None:
        self._columns = columns
        self._bids: tuple[PhantomBid, ...] | None = None

    @property
    def columns(self) -> PhantomColumns:
        """``(slots, prices, volumes, fees)``: the draw itself, without records."""
        return self._columns

    def _built(self) -> tuple[PhantomBid, ...]:
        bids = self._bids
        if bids is None:
            bids = self._bids = bids_of(self._columns)
        return bids

    @overload
    def __getitem__(self, index: int) -> PhantomBid: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[PhantomBid, ...]: ...

    def __getitem__(self, index: int | slice) -> PhantomBid | tuple[PhantomBid, ...]:
        return self._built()[index]

    def __len__(self) -> int:
        return len(self._columns[0])

    def __iter__(self) -> Iterator[PhantomBid]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PhantomBids | tuple | list):
            return self._built() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._built())

    def __repr__(self) -> str:
        return f"PhantomBids({list(self._built())!r})"

    def __reduce__(self) -> tuple[type[PhantomBids], tuple[PhantomColumns]]:
        return (PhantomBids, (self._columns,))


_SAMPLERS: dict[PhantomModel, _SeedSampler] = {}


def _sampler(model: PhantomModel) -> _SeedSampler:
    sampler = _SAMPLERS.get(model)
    if sampler is None:
        if len(_SAMPLERS) >= 64:
            _SAMPLERS.clear()
        sampler = _SAMPLERS[model] = _SeedSampler(model)
    return sampler


def draw_phantom_columns(
    model: PhantomModel, seed: bytes, baseline_price: float, baseline_amount: float
) -> PhantomColumns:
    """:func:`draw_phantom_bids` as ``(slots, prices, volumes, fees)``, without records:
    what a live auction draws when it opens (the same numbers, bit for bit)."""
    return _sampler(model).draw_columns(_check_seed(seed), baseline_price, baseline_amount)


def draw_phantom_bids(
    model: PhantomModel, seed: bytes, baseline_price: float, baseline_amount: float
) -> tuple[PhantomBid, ...]:
    """The phantom bids of one live auction, from its 32-byte seed alone, in slot order.

    For each slot ``s`` of ``model.max_phantom_bidders``, with the uniforms of
    :func:`phantom_uniforms`: present iff ``u_3s < bid_probability``; improvement (bps) a
    normal(``mean_bps``, ``sd_bps``) truncated to ``[min_bps, max_bps]``, drawn by
    rejection from the words after the slots' fixed ones; price ``= baseline * (1 +
    improvement / 10_000)``; volume ``= amount * (lo + (hi - lo) * u_3s+1)`` over
    ``volume_fraction``; fee ``= volume * priority_fee_max_ratio * (lo + (hi - lo) *
    u_3s+2)`` over ``fee_fraction``. ``docs/phantoms.md`` spells it out.
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
