"""The rule book: how a phantom auction judges, scores and prices bids, written once.

The live engine (:class:`~phantom_auction.engine.auction.Auction`), the simulator's
object path (which drives a real ``Auction`` on a synthetic clock) and its vectorised
fast path (:mod:`phantom_auction.simulation.kernels`) all call this module, so that a
strategy backtested in the simulator meets the same rules live. Each rule has a scalar
form (Python floats, for one live auction) and an array twin (numpy, for many
simulated ones); the arithmetic is written once where one expression serves both
(``improvement_bps``, ``score``, ``price_of``), and side by side where it cannot.

What lives here:

- :class:`AuctionRules`: the resolved rules (mechanism, bounds, limits, weights,
  windows, phantom policy), read once from an :class:`~phantom_auction.config.AuctionConfig`;
- the tolerances :data:`IMPROVEMENT_TOLERANCE_BPS` and :data:`LIMIT_TOLERANCE`;
- the window edges: times are whole microseconds from the open (:func:`to_us`), and a
  window is half-open, ``[open, deadline)``: a message at exactly the deadline is out;
- the reveal verdict, :func:`reveal_verdict` (``None`` or a :class:`RejectReason`) and
  its twin :func:`reveal_verdicts` (an accepted mask and reason codes,
  :data:`REASON_CODES`), and :func:`reveal_accepted`, the mask alone in fewer passes;
- scoring, ``score = price_weight * improvement_bps + fee_weight * fee_bps``
  (:func:`score`); bids are cleared on their scores against the reserve
  (:func:`reserve_score`: the least accepted improvement, at least the baseline's score
  0) by :func:`~phantom_auction.mechanisms.clearing.clear_lists` or
  :func:`~phantom_auction.mechanisms.batch.clear_batch`, which price with
  :mod:`~phantom_auction.mechanisms.pricing` (each mechanism's price, written once);
- fill pricing, :func:`fill_improvement` and its twin :func:`fill_improvements`: what a
  real winner pays per unit, in bps over the baseline, from its clearing payment:
  the score it pays per unit less its own fee term, divided by ``price_weight``, never
  below the baseline (0 bps) or the phantom floor, never above its own improvement.
  ``discriminatory`` winners pay their own improvement.

Phantom policies (:data:`PHANTOM_POLICIES`, config ``phantom_auction.phantom_policy``):

- ``reserve``: phantoms rank with the real bids; volume ranked to a phantom goes to the
  CFMM at the baseline (the seed's behaviour);
- ``floor``: phantoms never take volume; the best phantom's score is a floor on every
  real fill's score (:func:`phantom_floor`), capped at the winner's own bid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BPS",
    "IMPROVEMENT_TOLERANCE_BPS",
    "LIMIT_TOLERANCE",
    "PHANTOM_POLICIES",
    "REASON_CODES",
    "AuctionRules",
    "RejectReason",
    "RevealLimits",
    "fee_bps",
    "fill_improvement",
    "fill_improvements",
    "improvement_bps",
    "in_window",
    "phantom_floor",
    "price_of",
    "reserve_score",
    "reveal_accepted",
    "reveal_all_accepted",
    "reveal_check",
    "reveal_verdict",
    "reveal_verdicts",
    "score",
    "to_us",
]

FloatArray = NDArray[np.float64]
#: A float for one bid, an array for many: the scoring expressions serve both.
Num = TypeVar("Num", float, FloatArray)

#: Basis points in one: an improvement of ``x`` bps is a price ``baseline * (1 + x / BPS)``.
BPS: Final = 10_000.0
#: Slack on the improvement bounds (bps) so that a bidder computing
#: ``baseline * (1 + bps / 10_000)`` is not refused for the last bit of rounding.
IMPROVEMENT_TOLERANCE_BPS: Final = 1e-9
#: Relative slack on the volume and fee ceilings, for the same reason.
LIMIT_TOLERANCE: Final = 1e-12

PHANTOM_POLICIES: Final = ("reserve", "floor")


class RejectReason(StrEnum):
    """Why a commit or reveal was refused (the service answers it as a 4xx with this code)."""

    # commit
    LATE = "late"  # outside the collection window (at or after its deadline)
    REPLAYED_NONCE = "replayed_nonce"  # nonce not above the bidder's last accepted one
    DUPLICATE_COMMIT = "duplicate_commit"  # one commitment per bidder per auction
    TOKEN_PAIR_MISMATCH = "token_pair_mismatch"  # commit or reveal names another pair
    WITHDRAWN = "withdrawn"  # accepted, then withdrawn: its driver could not record it
    # reveal
    OUTSIDE_REVEAL_WINDOW = "outside_reveal_window"
    NOT_COMMITTED = "not_committed"
    DUPLICATE_REVEAL = "duplicate_reveal"
    COMMITMENT_MISMATCH = "commitment_mismatch"  # fields or nonce do not hash to the commitment
    IMPROVEMENT_OUT_OF_BOUNDS = "improvement_out_of_bounds"
    VOLUME_OUT_OF_BOUNDS = "volume_out_of_bounds"
    FEE_OUT_OF_BOUNDS = "fee_out_of_bounds"


#: The reason of each code of :func:`reveal_verdicts` (0: accepted).
REASON_CODES: Final[tuple[RejectReason | None, ...]] = (
    None,
    RejectReason.LATE,
    RejectReason.IMPROVEMENT_OUT_OF_BOUNDS,
    RejectReason.VOLUME_OUT_OF_BOUNDS,
    RejectReason.FEE_OUT_OF_BOUNDS,
)


@dataclass(frozen=True, slots=True)
class AuctionRules:
    """The rules of an auction, resolved once: what a bid may be and how it clears.

    Improvements in bps over the baseline; ``volume_multiplier`` caps a bid's volume at
    ``amount * volume_multiplier``; ``fee_ratio`` caps its priority fee at ``volume *
    fee_ratio`` (token units); ``duration_ms`` and ``reveal_delay_ms`` are the whole
    auction and its reveal window; ``min_window_ms`` the shortest auction worth opening.
    """

    mechanism: str
    min_bps: float
    max_bps: float
    volume_multiplier: float
    fee_ratio: float
    price_weight: float = 1.0
    fee_weight: float = 0.0
    min_participants: int = 2
    duration_ms: float = 100.0
    reveal_delay_ms: float = 20.0
    min_window_ms: float = 1.0
    phantom_policy: str = "reserve"

    @classmethod
    def from_config(cls, config: Any) -> AuctionRules:
        """The rules of an :class:`~phantom_auction.config.AuctionConfig` (typed loosely:
        the mechanisms layer imports nothing of the config's)."""
        pa, mech = config.phantom_auction, config.auction_mechanics
        return cls(
            mechanism=pa.mechanism,
            min_bps=float(pa.min_improvement_bps),
            max_bps=float(pa.max_improvement_bps),
            volume_multiplier=mech.max_bid_value_multiplier,
            fee_ratio=mech.priority_fee_max_ratio,
            price_weight=mech.price_weight,
            fee_weight=mech.fee_weight,
            min_participants=pa.min_participants,
            duration_ms=float(pa.duration_ms),
            reveal_delay_ms=float(pa.reveal_delay_ms),
            min_window_ms=mech.min_window_ms,
            phantom_policy=pa.phantom_policy,
        )

    def windows_ms(self, available_ms: float, reserve_ms: float = 0.0) -> tuple[float, float]:
        """``(collection, whole)`` window lengths (ms) of an auction with ``available_ms``
        to its deadline, ``reserve_ms`` of which are kept free (at most a quarter): both
        windows shrink in proportion when the deadline is closer than ``duration_ms``."""
        run_ms = min(self.duration_ms, available_ms - min(reserve_ms, available_ms / 4))
        reveal_ms = run_ms * self.reveal_delay_ms / self.duration_ms
        return run_ms - reveal_ms, run_ms

    def limits(self, amount: float) -> RevealLimits:
        """The reveal limits of an auction selling ``amount`` token A units. The
        improvement's tolerance never reaches below the baseline (0 bps): a price worse
        than the AMM's is never taken, and no accepted bid scores below 0 (the least
        value clearing takes)."""
        return RevealLimits(
            max(0.0, self.min_bps - IMPROVEMENT_TOLERANCE_BPS),
            self.max_bps + IMPROVEMENT_TOLERANCE_BPS,
            amount * self.volume_multiplier * (1.0 + LIMIT_TOLERANCE),
            self.fee_ratio * (1.0 + LIMIT_TOLERANCE),
        )


# -- time: whole microseconds from the open, windows half-open --


def to_us(ms: float) -> int:
    """``ms`` milliseconds as whole microseconds (round half to even), the engine's clock
    resolution. Raises ValueError on NaN and OverflowError on infinity."""
    return round(ms * 1000.0)


def in_window(arrival_ms: float | FloatArray, deadline_us: int) -> bool | NDArray[np.bool_]:
    """Whether a message ``arrival_ms`` after the open is inside ``[open, deadline)``;
    the array twin takes an array of times (NaN is outside)."""
    if isinstance(arrival_ms, np.ndarray):
        with np.errstate(invalid="ignore"):
            us = np.rint(arrival_ms * 1000.0)  # half to even, as round() in to_us
            inside: NDArray[np.bool_] = (us >= 0.0) & (us < deadline_us)
        return inside
    if not math.isfinite(arrival_ms):
        return False
    return 0 <= to_us(arrival_ms) < deadline_us


# -- scoring (one expression for floats and arrays) --


def improvement_bps(price: Num, baseline: float) -> Num:
    """A price's improvement over ``baseline``, bps."""
    return (price - baseline) / baseline * BPS


def price_of(improvement: Num, baseline: float) -> Num:
    """The price ``improvement`` bps over ``baseline`` (B per A)."""
    return baseline * (1.0 + improvement / BPS)


def fee_bps(priority_fee: Num, amount: float) -> Num:
    """A priority fee (token units) in bps of the order ``amount``."""
    return priority_fee / amount * BPS


def score(rules: AuctionRules, improvement: Num, fee_in_bps: Num) -> Num:
    """``price_weight * improvement_bps + fee_weight * fee_bps`` (SPEC "Auction engine")."""
    return rules.price_weight * improvement + rules.fee_weight * fee_in_bps


def reserve_score(rules: AuctionRules, tolerance: float = IMPROVEMENT_TOLERANCE_BPS) -> float:
    """The reserve as a score: the least accepted improvement (``min_bps``, less
    ``tolerance``) with no fee, never below the baseline (score 0). Bids are cleared
    against it with the tolerance a bid at the reserve may carry (so every accepted bid
    can clear), and a fill pays at least it without (:func:`fill_improvement`): under
    second price, VCG and uniform a winner with no rival above the reserve pays the
    reserve, as in auction theory (Myerson's revenue with truthful bidders), not the
    baseline."""
    return max(0.0, rules.price_weight * (rules.min_bps - tolerance))


# -- the reveal verdict --


class RevealLimits(NamedTuple):
    """An auction's reveal limits with their tolerances applied: improvement bounds
    (bps), the volume ceiling (token A) and the fee ceiling per unit of volume."""

    low_bps: float
    high_bps: float
    max_volume: float
    fee_per_volume: float


def reveal_verdict(
    limits: RevealLimits, improvement: float, volume: float, priority_fee: float
) -> RejectReason | None:
    """``None`` if a revealed bid is within the limits, else the first check it fails
    (improvement, volume, fee; SPEC order). NaN fails every check."""
    if not (limits.low_bps <= improvement <= limits.high_bps and improvement < math.inf):
        return RejectReason.IMPROVEMENT_OUT_OF_BOUNDS
    if not 0.0 < volume <= limits.max_volume:
        return RejectReason.VOLUME_OUT_OF_BOUNDS
    if not 0.0 <= priority_fee <= volume * limits.fee_per_volume:
        return RejectReason.FEE_OUT_OF_BOUNDS
    return None


def reveal_check(
    limits: RevealLimits, baseline: float, price: float, volume: float, priority_fee: float
) -> RejectReason | None:
    """:func:`reveal_verdict` of a bid at ``price`` (B per A) over ``baseline``:
    ``reveal_verdict(limits, improvement_bps(price, baseline), volume, priority_fee)``,
    the improvement written out (the engine runs this on every reveal, and a call costs
    more than that arithmetic)."""
    improvement = (price - baseline) / baseline * BPS  # improvement_bps, written out
    return reveal_verdict(limits, improvement, volume, priority_fee)


def reveal_verdicts(
    limits: RevealLimits,
    improvement: FloatArray,
    volume: FloatArray,
    priority_fee: FloatArray,
    arrival_ms: FloatArray | None = None,
    deadline_us: int = 0,
) -> tuple[NDArray[np.bool_], NDArray[np.int8]]:
    """:func:`reveal_verdict` for arrays (after :func:`in_window` when ``arrival_ms`` is
    given): ``(accepted, codes)``, codes indexing :data:`REASON_CODES`."""
    with np.errstate(invalid="ignore"):
        bad_imp = ~(
            (improvement >= limits.low_bps)
            & (improvement <= limits.high_bps)
            & (improvement < np.inf)
        )
        bad_vol = ~((volume > 0.0) & (volume <= limits.max_volume))
        bad_fee = ~((priority_fee >= 0.0) & (priority_fee <= volume * limits.fee_per_volume))
    codes = np.where(bad_fee, np.int8(4), np.int8(0))
    codes = np.where(bad_vol, np.int8(3), codes)
    codes = np.where(bad_imp, np.int8(2), codes)
    if arrival_ms is not None:
        codes = np.where(in_window(arrival_ms, deadline_us), codes, np.int8(1))
    codes = codes.astype(np.int8, copy=False)
    return codes == 0, codes


def _one_value(a: FloatArray) -> float | None:
    """The value of an array that is one number broadcast (all strides 0), else None."""
    if a.size and all(stride == 0 for stride in a.strides):
        return float(a.reshape(-1)[0]) if a.ndim else float(a)
    return None


def reveal_accepted(
    limits: RevealLimits,
    improvement: FloatArray,
    volume: FloatArray,
    priority_fee: FloatArray,
    arrival_ms: FloatArray | None = None,
    deadline_us: int = 0,
) -> NDArray[np.bool_]:
    """The accepted mask of :func:`reveal_verdicts` alone, in fewer passes (the
    simulator's hot path): the same tests, without reason codes, and a volume or fee
    that is one number broadcast over the bids (``np.broadcast_to``) judged once."""
    with np.errstate(invalid="ignore"):
        ok = np.greater_equal(improvement, limits.low_bps)
        ok &= improvement <= limits.high_bps
        if not limits.high_bps < np.inf:
            ok &= improvement < np.inf
        one_volume, one_fee = _one_value(volume), _one_value(priority_fee)
        if one_volume is None:
            ok &= (volume > 0.0) & (volume <= limits.max_volume)
        elif not 0.0 < one_volume <= limits.max_volume:
            ok[...] = False
        if one_volume is not None and one_fee is not None:
            if not 0.0 <= one_fee <= one_volume * limits.fee_per_volume:
                ok[...] = False
        else:
            ok &= (priority_fee >= 0.0) & (priority_fee <= volume * limits.fee_per_volume)
        if arrival_ms is not None:
            ok &= np.asarray(in_window(arrival_ms, deadline_us), dtype=bool)
    return ok


def reveal_all_accepted(
    limits: RevealLimits, improvement: FloatArray, volume: FloatArray, priority_fee: FloatArray
) -> bool:
    """``reveal_accepted(limits, improvement, volume, priority_fee).all()`` for 1-D arrays
    of at least one bid, in reductions (a batch of bids in clear, which the engine takes
    whole or runs one by one): each bound holds for every bid when it holds for the
    extreme, and NaN, which fails every test, is the extreme wherever it is. (No
    ``errstate``, a third of the cost: reductions and comparisons do not warn on NaN,
    and the product is only formed of volumes already found finite and positive.)"""
    highest = improvement.max()
    return bool(
        improvement.min() >= limits.low_bps
        and highest <= limits.high_bps
        and highest < np.inf
        and volume.min() > 0.0
        and volume.max() <= limits.max_volume
        and priority_fee.min() >= 0.0
        and (priority_fee <= volume * limits.fee_per_volume).all()
    )


# -- fill pricing --


def phantom_floor(rules: AuctionRules, phantom_scores: list[float]) -> float:
    """The score floor under every real fill: the best phantom score under ``floor``,
    else 0 (the baseline)."""
    if rules.phantom_policy != "floor" or not phantom_scores:
        return 0.0
    best = max(phantom_scores)
    return best if best > 0.0 else 0.0


def fill_improvement(
    rules: AuctionRules,
    payment: float,
    units: float,
    own_improvement: float,
    own_fee_bps: float,
    floor_score: float = 0.0,
) -> float:
    """What a real winner of ``units`` pays, bps over the baseline, given its clearing
    ``payment`` (score x units): the score it pays per unit (at least ``floor_score``
    and the reserve, :func:`reserve_score`) less its own fee term, per unit of
    ``price_weight``; within ``[0, own improvement]``. ``discriminatory`` winners pay
    their own improvement."""
    top = own_improvement if own_improvement > 0.0 else 0.0
    if rules.mechanism == "discriminatory":
        return top
    paid_score = payment / units
    reserve = reserve_score(rules, 0.0)
    if paid_score < floor_score or paid_score < reserve:
        paid_score = floor_score if floor_score > reserve else reserve
    paid = (paid_score - rules.fee_weight * own_fee_bps) / rules.price_weight
    return top if paid > top else paid if paid > 0.0 else 0.0


def fill_improvements(
    rules: AuctionRules,
    payment: FloatArray,
    units: FloatArray,
    own_improvement: FloatArray,
    own_fee_bps: FloatArray | float,
    floor_score: FloatArray | float = 0.0,
) -> FloatArray:
    """:func:`fill_improvement` for arrays; 0 where ``units`` is 0."""
    top = np.maximum(own_improvement, 0.0)
    if rules.mechanism == "discriminatory":
        paid = top
    else:
        # In place and unmasked: an entry without units (0/0 or x/0) is set to 0 below.
        no_fee = isinstance(own_fee_bps, float) and own_fee_bps == 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            paid = np.divide(payment, units)
            np.maximum(paid, floor_score, out=paid)
            reserve = reserve_score(rules, 0.0)
            if reserve > 0.0:
                np.maximum(paid, reserve, out=paid)
            if not (no_fee and rules.fee_weight == 0.0 and rules.price_weight == 1.0):
                paid -= rules.fee_weight * own_fee_bps  # (x - 0 * 0.0) / 1 is x: skipped
                paid /= rules.price_weight
            np.maximum(paid, 0.0, out=paid)
            np.minimum(paid, top, out=paid)
    out: FloatArray = np.where(units > 0.0, paid, 0.0)
    return out
