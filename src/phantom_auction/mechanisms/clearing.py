"""Clearing rules for one auction on (value per unit, quantity) bids.

Every rule allocates in value order among bids at or above the reserve ``r`` (ties:
lower index, i.e. earlier submission, first) and differs only in what winners pay:

- ``vcg``: payment = the welfare the winner displaces (others' best welfare without it,
  seller included at ``r`` per kept unit, minus others' welfare with it). For divisible
  supply this is the area under the others' demand curve over the units the winner
  takes (Vickrey 1961; Clarke 1971; Groves 1973), so every unit pays at least ``r``.
  Unit demand (``multi_unit=False``): ``k = floor(supply)`` winners, each paying
  ``max(r, (k+1)-th best value)``.
- ``vickrey`` (second price): one winner takes ``min(q, supply)`` and pays per unit
  ``max(r, best other value)``. Unit demand: identical to ``vcg``.
- ``uniform``: every unit at ``max(r, best rejected value)``, a rejected bid being one
  that receives nothing.
- ``discriminatory`` (pay-as-bid, first price): each winner pays its own value.

Values are per unit (price or bps), quantities and allocations in token units, payments
in value x token units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidBidParameters

__all__ = ["MECHANISMS", "Clearing", "canonical_mechanism", "clear"]

FloatArray = NDArray[np.float64]

MECHANISMS: Final = ("vcg", "vickrey", "uniform", "discriminatory")
_ALIASES: Final = {
    "second_price": "vickrey",
    "second_score": "vickrey",
    "first_price": "discriminatory",
    "pay_as_bid": "discriminatory",
}


def canonical_mechanism(name: str) -> str:
    """The canonical name of ``name`` (``first_price`` -> ``discriminatory``, ...)."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in MECHANISMS:
        raise InvalidBidParameters(
            "mechanism", name, f"unknown; choose one of {[*MECHANISMS, *_ALIASES]}"
        )
    return key


@dataclass(frozen=True, slots=True)
class Clearing:
    """Outcome of one clearing: per-bid ``allocation`` (units) and total ``payment``."""

    mechanism: str
    allocation: FloatArray
    payment: FloatArray


def check_bids(values: FloatArray, quantities: FloatArray, supply: float, reserve: float) -> None:
    """Raise :class:`InvalidBidParameters` on NaN, infinite or negative inputs."""
    for field, array in (("valuation", values), ("quantity", quantities)):
        bad = ~np.isfinite(array) | (array < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidBidParameters(f"{field}[{i}]", float(array[i]), "must be finite and >= 0")
    if not (np.isfinite(supply) and supply >= 0):
        raise InvalidBidParameters("supply", supply, "must be finite and >= 0")
    if not (np.isfinite(reserve) and reserve >= 0):
        raise InvalidBidParameters("reserve_price", reserve, "must be finite and >= 0")


def value_order(values: FloatArray) -> NDArray[np.intp]:
    """Indices by value, highest first; ties keep input (submission) order."""
    return np.argsort(-values, kind="stable")


def clear(
    values: ArrayLike | Sequence[float],
    quantities: ArrayLike | Sequence[float],
    *,
    supply: float,
    reserve: float = 0.0,
    mechanism: str = "vcg",
    multi_unit: bool = True,
) -> Clearing:
    """Clear one auction; O(n log n). See the module docstring for each rule."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    q = np.asarray(quantities, dtype=np.float64).reshape(-1)
    if v.shape != q.shape:
        raise InvalidBidParameters(
            "quantities", q.shape, f"must have the shape of valuations {v.shape}"
        )
    supply, reserve = float(supply), float(reserve)
    check_bids(v, q, supply, reserve)
    name = canonical_mechanism(mechanism)
    if not multi_unit:
        # Unit demand: one unit each, k = floor(supply) units for sale.
        q = np.minimum(q, 1.0)
        q[q > 0] = 1.0
        supply = float(np.floor(supply))
        if name == "vickrey":
            name = "vcg"
    order = value_order(v)
    order = order[(v[order] >= reserve) & (q[order] > 0)]
    x = np.zeros_like(v)
    pay = np.zeros_like(v)
    if order.size == 0 or supply <= 0:
        return Clearing(name, x, pay)
    vs, qs = v[order], q[order]
    if name == "vickrey":
        x[order[0]] = min(qs[0], supply)
        second = vs[1] if vs.size > 1 else reserve
        pay[order[0]] = x[order[0]] * max(reserve, second)
        return Clearing(name, x, pay)
    cum = np.cumsum(qs)
    filled = np.clip(supply - (cum - qs), 0.0, qs)
    x[order] = filled
    won = filled > 0
    if name == "discriminatory":
        pay[order] = filled * vs
    elif name == "uniform":
        rejected = vs[~won]
        price = max(reserve, float(rejected[0])) if rejected.size else reserve
        pay[order] = filled * price
    elif not multi_unit:
        k = int(won.sum())
        price = max(reserve, float(vs[k])) if k < vs.size else reserve
        pay[order] = filled * price
    else:
        pay[order] = _vcg_payments(vs, qs, cum, filled, supply, reserve)
    return Clearing(name, x, pay)


def _vcg_payments(
    vs: FloatArray,
    qs: FloatArray,
    cum: FloatArray,
    filled: FloatArray,
    supply: float,
    reserve: float,
) -> FloatArray:
    """VCG payments of bids sorted by value: p_i = W(E_i + x_i) - W(E_i).

    W is the welfare under the whole demand curve (bids at or above reserve, then the
    seller at ``reserve``); removing bid i shifts the curve after it left by q_i, so the
    x_i units it takes would have gone to the next units past E_i = A - x_i + q_i,
    where A is the total allocated.
    """
    allocated = min(supply, float(cum[-1]))
    knots_x = np.concatenate(([0.0], cum))
    knots_w = np.concatenate(([0.0], np.cumsum(vs * qs)))
    start = allocated - filled + qs
    return _area(start + filled, knots_x, knots_w, reserve) - _area(
        start, knots_x, knots_w, reserve
    )


def _area(t: FloatArray, knots_x: FloatArray, knots_w: FloatArray, reserve: float) -> FloatArray:
    """W(t): welfare of the first t units of the demand curve, seller at ``reserve`` after it."""
    end = knots_x[-1]
    inside: FloatArray = np.interp(np.minimum(t, end), knots_x, knots_w)
    beyond: FloatArray = reserve * np.maximum(t - end, 0.0)
    return inside + beyond
