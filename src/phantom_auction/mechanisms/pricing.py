"""What winners pay under each mechanism, written once, on bids sorted by value.

The rules are stated in ``docs/mechanisms.md``; this module is their only code.
:func:`~.clearing.clear`, :func:`~.clearing.clear_lists` and
:func:`~.batch.clear_batch` sort and allocate, then call :func:`pay` (arrays) or
:func:`pay_list` (Python floats).

Array forms take a sorted book laid out (rank, auction): ``(n, c)`` arrays, ``c``
auctions side by side (``c = 1`` for :func:`~.clearing.clear`, a chunk of rows for
:func:`~.batch.clear_batch`). Ranks past an auction's ``n_eligible`` eligible bids hold
its reserve as value, quantity 0 and allocation 0. The list forms are their twins on
one auction's eligible bids as Python floats (a live auction's few dozen bids, where
numpy's per-call overhead would cost more than the clearing): the same operations in
the same order, so the same bits.

VCG's tail area ``U(s)`` is evaluated as ``W[j] + u[j] * (s - g[j])`` (:func:`_area`),
``j`` the number of tail knots ``g`` below ``s``, found by binary search for one
auction and by a walk over the knots vectorised across auctions for many.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable
from itertools import accumulate
from operator import mul
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["Work", "pay", "pay_list", "runner_up_price", "vcg_step_payments_list"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
Num = TypeVar("Num", float, FloatArray)


def _area(
    w_before: Num, value: Num, knot_before: Num, s: Num, out: FloatArray | None = None
) -> Num:
    """The area under a step demand curve over its first ``s`` units, for ``s`` in the
    segment of ``value`` that starts at ``knot_before`` units after ``w_before``;
    ``out``: an array for the result (arrays only)."""
    span: Num = s - knot_before if out is None else np.subtract(s, knot_before, out=out)  # type: ignore[assignment]
    span *= value  # in place on arrays
    span += w_before
    return span


# -- arrays: (rank, auction) --


class Work(NamedTuple):
    """Work arrays for :func:`pay` on chunks of up to ``rows`` auctions of ``n`` bids,
    reused chunk after chunk (chunk-sized temporaries allocated afresh cost page faults)."""

    flags: NDArray[np.bool_]
    units: FloatArray
    counts: IntArray
    segments: FloatArray  # (3, n + 1, rows): VCG's tail segments, walked
    picked: FloatArray  # (3, n * rows): each query's segment

    @classmethod
    def new(cls, n: int, rows: int) -> Work:
        return cls(
            np.empty((n, rows), dtype=bool),
            np.empty((n, rows)),
            np.empty((n, rows), np.intp),
            np.empty((3, n + 1, rows)),
            np.empty((3, n * rows)),
        )


def _pick(array: FloatArray, rank: IntArray, auctions: IntArray) -> FloatArray:
    """``array[rank[i], i]`` for each auction ``i`` of a (rank, auction) array."""
    if array.flags.c_contiguous:  # a flat take is several times faster than fancy indexing
        picked: FloatArray = np.take(array.reshape(-1), rank * array.shape[1] + auctions)
        return picked
    return array[rank, auctions]


def _work(work: Work | None, n: int, c: int) -> Work:
    """``work`` cut to ``(n, c)`` (its segments whole), or fresh arrays of that shape."""
    if work is None:
        return Work.new(n, c)
    flags, units, counts = work.flags[:n, :c], work.units[:n, :c], work.counts[:n, :c]
    return Work(flags, units, counts, work.segments, work.picked)


def pay(
    name: str,
    multi_unit: bool,
    vs: FloatArray,
    qs: FloatArray,
    xs: FloatArray,
    n_eligible: IntArray,
    reserve: FloatArray,
    out: FloatArray,
    work: Work | None = None,
) -> None:
    """Payments (value x units) of sorted ``(n, c)`` bids into ``out`` (zeroed by the
    caller). ``xs`` is the allocation in value order; second price keeps only rank 0's
    (``min(q, supply)``, which it already is) and zeroes the others' in place. ``work``:
    reusable arrays of at least ``(n, c)`` (None: allocated here)."""
    n, c = vs.shape
    if name == "discriminatory":
        np.multiply(xs, vs, out=out)
    elif name == "vickrey":
        xs[1:] = 0.0
        out[0] = xs[0] * runner_up_price(vs[1] if n > 1 else reserve, reserve)
    elif name == "uniform" or not multi_unit:
        flags = None if work is None else work.flags[:n, :c]
        price = highest_rejected(vs, qs, xs, n_eligible, reserve, flags)
        np.multiply(xs, price, out=out)
    else:
        _vcg(vs, qs, xs, n_eligible, reserve, out, work)


def runner_up_price(runner_up: FloatArray, reserve: FloatArray) -> FloatArray:
    """Second price per unit: the best losing value, at least the reserve. With one unit
    for sale and unit bids it is also uniform's and VCG's price."""
    price: FloatArray = np.maximum(runner_up, reserve)
    return price


def filled_in_full(
    qs: FloatArray, xs: FloatArray, n_eligible: IntArray, flags: NDArray[np.bool_] | None
) -> IntArray:
    """How many eligible bids of each auction are filled in full (a prefix of the ranks):
    the rank of the highest rejected unit's bid. ``flags``: an (n, c) work array or None."""
    n = qs.shape[0]
    full: IntArray = np.equal(xs, qs, out=flags).sum(axis=0, dtype=np.intp)
    full -= n - n_eligible  # ineligible ranks hold q = x = 0: "filled"
    return full


def highest_rejected(
    vs: FloatArray,
    qs: FloatArray,
    xs: FloatArray,
    n_eligible: IntArray,
    reserve: FloatArray,
    flags: NDArray[np.bool_] | None = None,
) -> Any:
    """Uniform price per unit: the value of the highest rejected unit, that of the first
    bid not filled in full (its unfilled units are rejected at its value); the reserve
    when every eligible unit is filled. Also unit-demand VCG's price. (c,) prices, or a
    Python float for one auction."""
    full = filled_in_full(qs, xs, n_eligible, flags)
    return _first_unfilled(vs, qs, xs, full, n_eligible, reserve)[0]


def _vcg(
    vs: FloatArray,
    qs: FloatArray,
    xs: FloatArray,
    n_eligible: IntArray,
    reserve: FloatArray,
    out: FloatArray,
    work: Work | None,
) -> None:
    """Multi-unit VCG: each winner pays the welfare it displaces.

    With ``f`` the first bid not filled in full, ``rest`` its unfilled units and ``U``
    the area under the demand after ``f`` (the bids after it, then the seller at the
    reserve), a fully filled winner pays ``v_f min(q_i, rest) + U(max(q_i - rest, 0))``
    and the marginal winner ``f`` pays ``U(x_f)``: never a difference of cumulative
    welfare, which would lose the tail when the head is many orders larger.
    """
    n, c = vs.shape
    width = int(xs.any(axis=1).sum())  # winners are a prefix of the ranks
    if width == 0:
        return
    if work is not None:
        work = _work(work, n, c)
    full = filled_in_full(qs, xs, n_eligible, None if work is None else work.flags)
    value_f, x_f, rest = _first_unfilled(vs, qs, xs, full, n_eligible, reserve)
    won = xs[:width]  # a full winner's units, its whole bid (0 for losers)
    head = np.minimum(won, rest, out=out[:width])
    head *= value_f
    units = np.subtract(won, rest, out=None if work is None else work.units[:width])
    np.maximum(units, 0.0, out=units)
    # The marginal winner (x_f > 0) displaces only the tail, over x_f units.
    if c == 1:
        if x_f > 0.0:
            units[full[0]] = x_f
            head[full[0]] = 0.0
        area = _tail_area_one(vs[:, 0], qs[:, 0], int(full[0]) + 1, int(n_eligible[0]),
                              float(reserve[0]), units)  # fmt: skip
    else:
        auctions = np.arange(c)
        marginal = x_f > 0.0
        at_f = np.minimum(full, width - 1)
        units[at_f, auctions] = np.where(marginal, x_f, units[at_f, auctions])
        head[at_f, auctions] = np.where(marginal, 0.0, head[at_f, auctions])
        work = _work(work, n, c)
        area = _tail_area_walk(vs, qs, full + 1, n_eligible, reserve, units, work)
    head += area


def _first_unfilled(
    vs: FloatArray,
    qs: FloatArray,
    xs: FloatArray,
    full: IntArray,
    n_eligible: IntArray,
    reserve: FloatArray,
) -> tuple[Any, Any, Any]:
    """Value, allocation and unfilled rest of each auction's first bid not filled in
    full (rank ``full``): the reserve, 0 and 0 past its eligible bids. (c,) arrays, or
    Python floats for one auction (numpy's per-call overhead is most of one auction's time)."""
    n, c = vs.shape
    if c == 1:
        f = int(full[0])
        if f < int(n_eligible[0]):
            won = float(xs[f, 0])
            return float(vs[f, 0]), won, float(qs[f, 0]) - won
        return float(reserve[0]), 0.0, 0.0
    auctions = np.arange(c)
    in_tail = full < n_eligible
    at = np.minimum(full, n - 1)
    x_f = np.where(in_tail, _pick(xs, at, auctions), 0.0)
    value_f = np.where(in_tail, _pick(vs, at, auctions), reserve)
    return value_f, x_f, np.where(in_tail, _pick(qs, at, auctions) - x_f, 0.0)


def _tail_area_one(
    vs: FloatArray, qs: FloatArray, start: int, stop: int, reserve: float, units: FloatArray
) -> FloatArray:
    """``U(units)`` for one auction whose tail is ranks ``start .. stop - 1``."""
    tail_v, tail_q = vs[start:stop], qs[start:stop]
    knots = np.zeros(tail_q.size + 1)
    np.cumsum(tail_q, out=knots[1:])
    welfare = np.zeros_like(knots)
    np.cumsum(tail_v * tail_q, out=welfare[1:])
    values = np.append(tail_v, reserve)  # past the bids, the seller at the reserve
    j = np.searchsorted(knots[1:], units)  # knots below each query
    area: FloatArray = _area(welfare[j], values[j], knots[j], units)
    return area


def _tail_area_walk(
    vs: FloatArray,
    qs: FloatArray,
    start: IntArray,
    stop: IntArray,
    reserve: FloatArray,
    units: FloatArray,
    work: Work,
) -> FloatArray:
    """``U(units)`` for many auctions (columns), each with its tail from rank ``start``:
    walk the knots one rank at a time across all auctions, counting the knots below
    each query, until every query is covered (usually a few knots, at most ``n``)."""
    n, c = vs.shape
    width = units.shape[0]
    stride = work.segments.shape[2]
    auctions = np.arange(c)
    largest = units.max(axis=0)
    # Segment k of every auction: (area before it, its value, units before it).
    w_before, value_at, knot_before = work.segments
    w_before[0, :c] = knot_before[0, :c] = 0.0
    below = work.counts[:width]  # knots below each query
    below.fill(0)
    past = work.flags[:width]
    rank, k = start, 0
    while True:
        more = rank < stop
        at = np.minimum(rank, n - 1)
        value = np.where(more, _pick(vs, at, auctions), reserve)  # past the bids, the seller
        value_at[k, :c] = value
        knot = knot_before[k, :c]
        if not (more & (largest > knot)).any():
            break
        quantity = np.where(more, _pick(qs, at, auctions), 0.0)
        np.add(w_before[k, :c], value * quantity, out=w_before[k + 1, :c])
        np.add(knot, quantity, out=knot_before[k + 1, :c])
        np.add(below, np.greater(units, knot_before[k + 1, :c], out=past), out=below)
        rank, k = rank + 1, k + 1
    flat = below  # each query's segment, as a flat index into the segments' rows
    flat *= stride
    flat += auctions
    picked = work.picked[:, : width * c].reshape(3, width, c)
    for segment, into in zip(work.segments, picked, strict=True):
        np.take(segment.reshape(-1), flat, out=into, mode="clip")
    area: FloatArray = _area(picked[0], picked[1], picked[2], units, out=picked[2])
    return area


# -- lists: one auction's eligible bids, Python floats --


def pay_list(
    name: str,
    multi_unit: bool,
    vs: list[float],
    qs: list[float],
    filled: list[float],
    reserve: float,
) -> list[float]:
    """:func:`pay` for one auction's eligible bids in value order (``filled`` their
    allocation; second price zeroes all but rank 0's in place)."""
    if name == "discriminatory":
        return list(map(mul, filled, vs))
    if name == "vickrey":
        filled[1:] = [0.0] * (len(filled) - 1)
        runner_up = vs[1] if len(vs) > 1 else reserve
        price = runner_up if runner_up > reserve else reserve  # runner_up_price
        return [filled[0] * price, *filled[1:]]
    if name == "uniform" or not multi_unit:
        price = highest_rejected_list(vs, qs, filled, reserve)
        return [units * price for units in filled]
    return _vcg_list(vs, qs, filled, reserve)


def highest_rejected_list(
    vs: list[float], qs: list[float], filled: list[float], reserve: float
) -> float:
    """:func:`highest_rejected` for one auction."""
    f = sum(map(float.__eq__, filled, qs))  # bids filled in full (a prefix)
    return vs[f] if f < len(vs) else reserve


def _vcg_list(vs: list[float], qs: list[float], filled: list[float], reserve: float) -> list[float]:
    """:func:`_vcg` for one auction (see there)."""
    m = len(vs)
    f = sum(map(float.__eq__, filled, qs))
    if f < m:
        value_f, x_f = vs[f], filled[f]
        rest = qs[f] - x_f
    else:
        value_f, x_f, rest = reserve, 0.0, 0.0
    tail_q = qs[f + 1 :]
    knots = [0.0, *accumulate(tail_q)]
    welfare = [0.0, *accumulate(map(mul, vs[f + 1 :], tail_q))]
    values = [*vs[f + 1 :], reserve]
    payments = [0.0] * m
    for i in range(m):
        won = filled[i]
        if won <= 0.0:
            break  # winners are a prefix
        if i == f:  # the marginal winner
            head, units = 0.0, x_f
        else:  # filled in full
            head = (won if won < rest else rest) * value_f
            units = won - rest if won > rest else 0.0
        j = bisect_left(knots, units, 1) - 1
        payments[i] = head + _area(welfare[j], values[j], knots[j], units)
    return payments


def vcg_step_payments_list(
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
