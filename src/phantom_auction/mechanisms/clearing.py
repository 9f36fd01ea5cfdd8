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
- ``uniform``: every unit at the highest rejected unit's value, else ``r``: the value
  of the first bid (in value order) not filled in full, since a partly filled bid's
  unfilled units are rejected at its value (the textbook market-clearing price; never
  below a partly filled winner's own value, and demand above supply never clears at
  ``r``).
- ``discriminatory`` (pay-as-bid, first price): each winner pays its own value.

Unit demand treats every bid with a positive quantity as a bid for exactly one unit.

Step demand: ``owners`` names the bidder of each entry; an owner's entries are the
steps of its demand curve (value per unit, quantity), which must not increase in value
in submission order. Allocation and payment stay per entry. Uniform and pay-as-bid are
per unit, so steps change nothing there; VCG treats an owner's steps as one bidder (its
payment is the welfare the others lose to all of its units, split over its steps in
rank order, each step paying for the next slice of the others' unmet demand); second
price has one winner and refuses step demand. :meth:`Clearing.payment_by_owner` sums
each owner's payments.
Values are per unit (price or bps), quantities and allocations in token units, payments
in value x token units.

A live auction clears a few dozen bids, where numpy's per-call overhead costs more than
the clearing itself: :func:`clear_lists` does the same operations in the same order on
Python floats (so the same bits, ``numpy.interp`` included), and :func:`clear` uses it
for list or tuple inputs of up to :data:`SMALL_CLEARING` bids.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import mul
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidBidParameters
from ..mechanism_names import MECHANISMS, canonical_mechanism

__all__ = [
    "MECHANISMS",
    "SMALL_CLEARING",
    "Clearing",
    "canonical_mechanism",
    "check_steps",
    "clear",
    "clear_lists",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Clearing:
    """Outcome of one clearing: per-bid ``allocation`` (units) and total ``payment``;
    ``owners`` the bidder of each entry when given (step demand)."""

    mechanism: str
    allocation: FloatArray
    payment: FloatArray
    owners: tuple[Hashable, ...] | None = None

    def payment_by_owner(self) -> dict[Hashable, float]:
        """Each owner's total payment (each entry its own owner, by index, without owners)."""
        labels: Sequence[Hashable] = (
            range(self.payment.size) if self.owners is None else self.owners
        )
        totals: dict[Hashable, float] = {}
        for owner, paid in zip(labels, self.payment.tolist(), strict=True):
            totals[owner] = totals.get(owner, 0.0) + paid
        return totals


def owner_labels(
    owners: Iterable[Hashable] | ArrayLike | None, n: int
) -> tuple[Hashable, ...] | None:
    """``owners`` as a tuple of ``n`` labels (numpy scalars as Python ones), or None."""
    if owners is None:
        return None
    labels = tuple(owners.tolist() if isinstance(owners, np.ndarray) else owners)  # type: ignore[arg-type]
    if len(labels) != n:
        raise InvalidBidParameters("owners", len(labels), f"must give one owner per bid ({n})")
    return labels


def check_steps(
    values: Sequence[float], quantities: Sequence[float], owners: Sequence[Hashable]
) -> bool:
    """Raise :class:`InvalidBidParameters` naming the owner if one's steps (entries with
    a positive quantity, in submission order) increase in value; True if any owner has
    more than one step."""
    last: dict[Hashable, float] = {}
    stepped = False
    for i, (owner, value, units) in enumerate(zip(owners, values, quantities, strict=True)):
        if not units > 0.0:
            continue
        before = last.get(owner)
        if before is not None:
            stepped = True
            if value > before:
                raise InvalidBidParameters(
                    f"owners[{i}]",
                    owner,
                    f"steps must not increase in value: {value} after {before}",
                )
        last[owner] = value
    return stepped


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
    owners: Iterable[Hashable] | ArrayLike | None = None,
) -> Clearing:
    """Clear one auction; O(n log n). See the module docstring for each rule.

    ``values`` (per unit) and ``quantities`` are 1-D, one entry per bid in submission
    order; the result's ``allocation`` and ``payment`` (total, not per unit) follow
    the same order. ``owners`` (one label per entry; None: each entry its own bidder)
    makes an owner's entries the steps of one demand curve. Raises
    :class:`InvalidBidParameters` naming the first bad input. Lists or tuples of up to
    :data:`SMALL_CLEARING` numbers, and step demand under VCG, are cleared by
    :func:`clear_lists` (same result, bit for bit).
    """
    small = _small_floats(values, quantities)
    if owners is not None and small is None:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        small = (v.tolist(), np.asarray(quantities, dtype=np.float64).reshape(-1).tolist())
    if small is not None:
        labels = owner_labels(owners, len(small[0]))
        small_name, allocation, payment = clear_lists(
            small[0], small[1], supply=supply, reserve=reserve, mechanism=mechanism,
            multi_unit=multi_unit, owners=labels,
        )  # fmt: skip
        return Clearing(
            small_name,
            np.array(allocation, dtype=np.float64),
            np.array(payment, dtype=np.float64),
            labels,
        )
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
        # The highest rejected unit: that of the first bid not filled in full.
        f = int(np.count_nonzero(filled == qs))
        price = max(reserve, float(vs[f])) if f < vs.size else reserve
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


# -- the same rules on Python floats, for a few bids --

#: Up to this many bids (given as a list or tuple), :func:`clear` runs :func:`clear_lists`.
SMALL_CLEARING: Final = 64


def _small_floats(
    values: ArrayLike | Sequence[float], quantities: ArrayLike | Sequence[float]
) -> tuple[list[float], list[float]] | None:
    """``values`` and ``quantities`` as lists of floats if both are short flat lists or
    tuples of the same length; None sends everything else down the array path."""
    if not (isinstance(values, list | tuple) and isinstance(quantities, list | tuple)):
        return None
    if len(values) > SMALL_CLEARING or len(values) != len(quantities):
        return None
    try:
        return [float(x) for x in values], [float(x) for x in quantities]
    except (TypeError, ValueError):  # nested, or not numbers: numpy decides
        return None


def _check_floats(field: str, values: list[float]) -> None:
    """:func:`check_bids` for one list: the first NaN, infinite or negative entry raises."""
    if not values:
        return
    total = sum(values)
    if total - total == 0.0 and min(values) >= 0.0:  # no NaN or infinity, none negative
        return
    for i, x in enumerate(values):
        if not (x >= 0.0 and x < math.inf):
            raise InvalidBidParameters(f"{field}[{i}]", x, "must be finite and >= 0")


def _interp(x: float, xs: list[float], ws: list[float]) -> float:
    """``numpy.interp(x, xs, ws)`` for increasing ``xs`` of length >= 2, computed as
    numpy computes it (same operations, same order: the same bits)."""
    j = bisect_right(xs, x) - 1
    if j < 0:
        return ws[0]
    if j >= len(xs) - 1:
        return ws[-1]
    x_j = xs[j]
    if x_j == x:
        return ws[j]
    slope = (ws[j + 1] - ws[j]) / (xs[j + 1] - x_j)
    out = slope * (x - x_j) + ws[j]
    if out != out:  # NaN one way: numpy tries the other
        out = slope * (x - xs[j + 1]) + ws[j + 1]
        if out != out and ws[j] == ws[j + 1]:
            out = ws[j]
    return out


def _vcg_lists(vs: list[float], qs: list[float], won: list[float], reserve: float) -> list[float]:
    """:func:`_vcg_payments` on lists (see there for the method)."""
    k = len(won)
    full = k if won[-1] == qs[k - 1] else k - 1
    if full < len(vs):
        first_value, rest = vs[full], qs[full] - (won[full] if full < k else 0.0)
    else:
        first_value, rest = reserve, 0.0
    beyond = max(qs[:k])
    after_q = qs[full + 1 :]
    knots_x = [0.0, *accumulate(after_q)]
    knots_w = [0.0, *accumulate(map(mul, vs[full + 1 :], after_q))]
    knots_x.append(knots_x[-1] + beyond)
    knots_w.append(knots_w[-1] + reserve * beyond)
    payments = []
    for i in range(k):
        if i == full:
            payments.append(_interp(won[full], knots_x, knots_w))
        else:
            query = qs[i] - rest
            paid = _interp(query if query > 0.0 else 0.0, knots_x, knots_w)
            payments.append(paid + first_value * (qs[i] if qs[i] < rest else rest))
    return payments


def _vcg_steps(
    vs: list[float],
    qs: list[float],
    filled: list[float],
    owners: list[Hashable],
    reserve: float,
) -> list[float]:
    """VCG payments of entries sorted by value whose owners may hold several (steps).

    Removing an owner frees all its units, which go to the others' unmet demand (their
    unfilled units in value order, then the seller at ``reserve``): the owner pays that
    area. Its steps pay for consecutive slices of it in rank order.
    """
    unmet = [(value, units - won, owner)
             for value, units, won, owner in zip(vs, qs, filled, owners, strict=True)
             if units > won]  # fmt: skip
    payments = [0.0] * len(vs)
    done: set[Hashable] = set()
    for j, (owner, won) in enumerate(zip(owners, filled, strict=True)):
        if won <= 0.0 or owner in done:
            continue
        done.add(owner)
        others = [(value, units) for value, units, who in unmet if who != owner]
        at, left = 0, others[0][1] if others else 0.0
        for m in range(j, len(vs)):
            if owners[m] != owner or filled[m] <= 0.0:
                continue
            need, paid = filled[m], 0.0
            while need > 0.0 and at < len(others):
                take = need if need < left else left
                paid += others[at][0] * take
                need -= take
                left -= take
                if left <= 0.0:
                    at += 1
                    left = others[at][1] if at < len(others) else 0.0
            payments[m] = paid + reserve * need
    return payments


def clear_lists(
    values: Sequence[float],
    quantities: Sequence[float],
    *,
    supply: float,
    reserve: float = 0.0,
    mechanism: str = "vcg",
    multi_unit: bool = True,
    owners: Sequence[Hashable] | None = None,
) -> tuple[str, list[float], list[float]]:
    """:func:`clear` on Python floats: ``(mechanism, allocation, payment)`` as lists.

    The same validation, rules, operations and order as the array path, so the same
    result bit for bit; O(n log n) in plain Python, which beats numpy's per-call overhead
    for a few dozen bids (one live auction) and loses to it for thousands. ``owners``:
    see :func:`clear` (VCG with step demand costs O(n) more per owner).
    """
    v = [float(x) for x in values]
    q = [float(x) for x in quantities]
    if len(v) != len(q):
        raise InvalidBidParameters(
            "quantities", (len(q),), f"must have the shape of valuations {(len(v),)}"
        )
    supply, reserve = float(supply), float(reserve)
    _check_floats("valuation", v)
    _check_floats("quantity", q)
    check_scalar("supply", supply)
    check_scalar("reserve_price", reserve)
    name = canonical_mechanism(mechanism)
    n = len(v)
    if not multi_unit:
        q = [1.0 if x > 0 else 0.0 for x in q]
        supply = float(math.floor(supply))
        if name == "vickrey":
            name = "vcg"
    stepped = False
    if owners is not None:
        owners = owner_labels(owners, n)
        assert owners is not None
        stepped = check_steps(v, q, owners)
        if stepped and name == "vickrey":
            raise InvalidBidParameters(
                "mechanism",
                mechanism,
                "has one winner: step demand needs vcg, uniform or pay-as-bid",
            )
    x = [0.0] * n
    pay = [0.0] * n
    # Value order, ties by index (a stable sort, as value_order), eligible bids only.
    order = [
        i for i in sorted(range(n), key=v.__getitem__, reverse=True) if v[i] >= reserve and q[i] > 0
    ]
    if not order or supply <= 0:
        return name, x, pay
    if name == "vickrey":
        first = order[0]
        units = x[first] = min(q[first], supply)
        second = v[order[1]] if len(order) > 1 else reserve
        pay[first] = units * max(reserve, second)
        return name, x, pay
    vs = [v[i] for i in order]
    qs = [q[i] for i in order]
    filled = []
    for cum, units in zip(accumulate(qs), qs, strict=True):
        left = supply - (cum - units)  # np.clip(supply - (cumsum - q), 0, q)
        filled.append(0.0 if left < 0.0 else units if left > units else left)
    for i, units in zip(order, filled, strict=True):
        x[i] = units
    k = len(filled) - filled.count(0.0)
    if stepped and name == "vcg":
        assert owners is not None
        sorted_owners = [owners[i] for i in order]
        for i, paid in zip(order, _vcg_steps(vs, qs, filled, sorted_owners, reserve), strict=True):
            pay[i] = paid
    elif name == "discriminatory":
        for i, units, value in zip(order, filled, vs, strict=True):
            pay[i] = units * value
    elif name == "uniform" or not multi_unit:
        f = sum(map(float.__eq__, filled, qs))  # bids filled in full (a prefix)
        price = max(reserve, vs[f]) if f < len(vs) else reserve
        for i, units in zip(order, filled, strict=True):
            pay[i] = units * price
    else:
        for i, paid in zip(order, _vcg_lists(vs, qs, filled[:k], reserve), strict=False):
            pay[i] = paid
    return name, x, pay
