"""Clearing rules for one auction on (value per unit, quantity) bids.

Every rule allocates in value order among bids at or above the reserve ``r`` with a
positive quantity (ties: lower index, i.e. earlier submission, first) and differs only
in what winners pay:

- ``vcg``: payment = the welfare the winner displaces (others' best welfare without it,
  seller included at ``r`` per kept unit, minus others' welfare with it). For divisible
  supply this is the area under the others' demand curve over the units the winner
  takes (Vickrey 1961; Clarke 1971; Groves 1973), so every unit pays at least ``r``.
  Unit demand (``multi_unit=False``): ``k = floor(supply)`` winners, each paying
  ``max(r, (k+1)-th best value)``.
- ``vickrey`` (second price): one winner takes ``min(q, supply)`` and pays per unit
  ``max(r, best other value)``. Unit demand: identical to ``vcg`` (and reported so).
- ``uniform``: every unit at ``max(r, best rejected value)``, a rejected bid being one
  that receives nothing.
- ``discriminatory`` (pay-as-bid, first price): each winner pays its own value.

Unit demand treats every bid with a positive quantity as a bid for exactly one unit.
Values are per unit (price or bps), quantities and allocations in token units, payments
in value x token units.
"""

from __future__ import annotations

import math
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
    if name in MECHANISMS:  # the common case, kept off the string handling below
        return name
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


def check_scalar(field: str, value: float) -> None:
    """Raise :class:`InvalidBidParameters` unless ``value`` is finite and >= 0."""
    if not (math.isfinite(value) and value >= 0):
        raise InvalidBidParameters(field, value, "must be finite and >= 0")


def check_bids(values: FloatArray, quantities: FloatArray, supply: float, reserve: float) -> None:
    """Raise :class:`InvalidBidParameters` on NaN, infinite or negative inputs."""
    for field, array in (("valuation", values), ("quantity", quantities)):
        # min/max see NaN (comparisons with it are False), -inf and inf in two reductions.
        if array.size and not (array.min() >= 0 and array.max() < math.inf):
            bad = ~np.isfinite(array) | (array < 0)
            i = int(np.flatnonzero(bad)[0])
            raise InvalidBidParameters(f"{field}[{i}]", float(array[i]), "must be finite and >= 0")
    check_scalar("supply", supply)
    check_scalar("reserve_price", reserve)


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
    """Clear one auction; O(n log n). See the module docstring for each rule.

    ``values`` (per unit) and ``quantities`` are 1-D, one entry per bid in submission
    order; the result's ``allocation`` and ``payment`` (total, not per unit) follow
    the same order. Raises :class:`InvalidBidParameters` naming the first bad input.
    """
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
        q = (q > 0).astype(np.float64)
        supply = float(math.floor(supply))
        if name == "vickrey":
            name = "vcg"
    x = np.zeros_like(v)
    pay = np.zeros_like(v)
    order = value_order(v)
    order = order[(v[order] >= reserve) & (q[order] > 0)]
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
    # Winners are a prefix of the value order (every eligible bid has q > 0).
    k = int(np.count_nonzero(filled))
    if name == "discriminatory":
        pay[order] = filled * vs
    elif name == "uniform" or not multi_unit:
        # The best rejected bid is the (k+1)-th best eligible one.
        price = max(reserve, float(vs[k])) if k < vs.size else reserve
        pay[order] = filled * price
    else:
        pay[order[:k]] = _vcg_payments(vs, qs, filled[:k], reserve)
    return Clearing(name, x, pay)


def _vcg_payments(vs: FloatArray, qs: FloatArray, won: FloatArray, reserve: float) -> FloatArray:
    """VCG payments of the ``k = len(won)`` winners of bids sorted by value.

    A winner's payment is the welfare it displaces: the area under the rest of the
    demand curve (bids at or above the reserve, then the seller at ``reserve``) over
    the units it takes, i.e. ``W(E_i + x_i) - W(E_i)`` with ``E_i = A - x_i + q_i``.
    Computed from the tail after the ``A`` allocated units only, never as a difference
    of cumulative welfare (which loses the tail when the head is many orders larger):
    with ``f`` the first bid not fully filled, ``rest`` its unfilled units and ``U``
    the area over the bids after ``f``, a fully filled winner pays
    ``v_f min(q_i, rest) + U(max(q_i - rest, 0))`` and a marginal winner ``f`` pays
    ``U(x_f)``.
    """
    k = won.size
    full = k if won[-1] == qs[k - 1] else k - 1
    if full < vs.size:
        first_value, rest = float(vs[full]), float(qs[full] - (won[full] if full < k else 0.0))
    else:
        first_value, rest = reserve, 0.0
    after_q = qs[full + 1 :]
    # Knots of U: the bids after f, then one more far enough right that the seller's
    # segment (slope ``reserve``) covers every query (each at most a winner's q).
    beyond = float(qs[:k].max())
    knots_x = np.empty(after_q.size + 2)
    knots_x[0] = 0.0
    np.cumsum(after_q, out=knots_x[1:-1])
    knots_x[-1] = knots_x[-2] + beyond
    knots_w = np.empty_like(knots_x)
    knots_w[0] = 0.0
    np.cumsum(vs[full + 1 :] * after_q, out=knots_w[1:-1])
    knots_w[-1] = knots_w[-2] + reserve * beyond
    queries = np.maximum(qs[:k] - rest, 0.0)
    if full < k:
        queries[full] = won[full]
    payments: FloatArray = np.interp(queries, knots_x, knots_w)
    payments[:full] += first_value * np.minimum(qs[:full], rest)
    return payments
