"""Clear many auctions at once on (auctions, bidders) arrays: the simulator's hot path.

:func:`clear_batch` applies the rules of :func:`~.clearing.clear` to every row of an
``(A, N)`` array and agrees with it row by row, bit for bit (``tests/mechanisms`` pins
this). Columns are submission order: in a tie the lower column wins. Rows are cleared
in chunks of :data:`CHUNK_ROWS`, each sorted by an integer key, laid out (rank,
auction), allocated and priced by :func:`~.pricing.pay`; supply 1 with unit bids takes
a top-2 path instead. How, step by step: ``docs/mechanisms.md``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidBidParameters
from .clearing import FloatArray, canonical_mechanism, check_steps, clear_lists
from .pricing import Work, runner_up_price
from .pricing import pay as pay_sorted

__all__ = ["CHUNK_ROWS", "BatchClearing", "clear_batch"]

CHUNK_ROWS: Final = 8192
"""Rows per chunk: small enough for a chunk's arrays to stay in cache."""

_INT = np.int64
_ABS: Final = _INT(0x7FFF_FFFF_FFFF_FFFF)
_SIGN: Final = _INT(-(2**63))


@dataclass(frozen=True, slots=True)
class BatchClearing:
    """Outcome of :func:`clear_batch`: ``allocation`` (units) and total ``payment``, (A, N);
    ``owners`` the (A, N) owner of each entry when given (step demand)."""

    mechanism: str
    allocation: FloatArray
    payment: FloatArray
    owners: NDArray[np.int64] | None = None

    def payment_by_owner(self) -> FloatArray:
        """(A, K) total payment of each owner ``0 .. K-1`` in each auction (without
        owners, each column its own owner: the payments themselves)."""
        if self.owners is None:
            return self.payment.copy()
        rows = self.payment.shape[0]
        k = int(self.owners.max(initial=-1)) + 1
        index = self.owners + np.arange(rows)[:, None] * k
        totals = np.bincount(
            index.reshape(-1), weights=self.payment.reshape(-1), minlength=rows * k
        )
        return np.asarray(totals, dtype=np.float64).reshape(rows, k)


def _like_values(name: str, array: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise InvalidBidParameters(
            name, array.shape, f"must broadcast to the values' shape {shape}"
        ) from None


def _per_auction(name: str, value: ArrayLike, rows: int) -> FloatArray:
    array = np.asarray(value, dtype=np.float64)
    try:
        out = np.broadcast_to(array, (rows,))
    except ValueError:
        raise InvalidBidParameters(name, array.shape, f"must be a scalar or ({rows},)") from None
    bad = ~(np.isfinite(out) & (out >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidBidParameters(f"{name}[{i}]", float(out[i]), "must be finite and >= 0")
    return out


def clear_batch(
    values: ArrayLike,
    quantities: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    supply: ArrayLike,
    reserve: ArrayLike = 0.0,
    mechanism: str = "vcg",
    multi_unit: bool = True,
    threads: int = 1,
    owners: ArrayLike | None = None,
) -> BatchClearing:
    """Clear every row of ``values`` as :func:`~.clearing.clear` would.

    ``values``: (A, N) value per unit; ``quantities``: (A, N) or broadcastable; ``mask``:
    (A, N) bool, True where a bid is present (None: all present; absent entries are
    ignored, whatever they hold); ``supply`` and ``reserve``: scalars or (A,).
    ``threads``: worker threads for the chunks. 1 by default: on idle cores 2 threads
    cut the time by about 40%, but on busy ones (other processes, or the simulator's
    own worker processes) the GIL hand-offs make them slower than one. Returns (A, N)
    allocations and total payments. Raises :class:`InvalidBidParameters` naming the
    first present entry (``valuation[row, col]``) that is NaN, infinite or negative.

    ``owners``: (A, N) or (N,) non-negative integers, the bidder of each entry (None:
    each entry its own bidder); an owner's present entries are the steps of one demand
    curve (see :func:`~.clearing.clear`). Rows where an owner holds several steps are
    checked and, under VCG, cleared by :func:`~.clearing.clear_lists` one at a time.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise InvalidBidParameters("values", v.shape, "must be 2-D (auctions, bidders)")
    rows, cols = v.shape
    q = _like_values("quantities", np.asarray(quantities, dtype=np.float64), v.shape)
    present = None if mask is None else _like_values("mask", np.asarray(mask, bool), v.shape)
    s = _per_auction("supply", supply, rows)
    r = _per_auction("reserve_price", reserve, rows)
    name = canonical_mechanism(mechanism)
    if not multi_unit and name == "vickrey":
        name = "vcg"
    who = None
    if owners is not None:
        who = np.broadcast_to(_owner_array(owners, v.shape), v.shape)
        if name == "vickrey" and _stepped_rows(who, q, present).size:
            raise InvalidBidParameters(
                "mechanism",
                mechanism,
                "has one winner: step demand needs vcg, uniform or pay-as-bid",
            )
    # Every entry of a chunk is written by its final scatter.
    allocation = np.empty(v.shape)
    payment = np.empty(v.shape)
    if rows == 0 or cols == 0:
        return BatchClearing(name, allocation, payment, None if who is None else who.copy())
    if who is None and _single_item(q, s, multi_unit):
        # Zeroed by the allocator; each chunk writes only its winners.
        allocation = np.zeros(v.shape)
        payment = np.zeros(v.shape)
        for lo in range(0, rows, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, rows)
            _clear_single_item(
                v[lo:hi],
                q[lo:hi],
                None if present is None else present[lo:hi],
                r[lo:hi],
                name,
                allocation[lo:hi],
                payment[lo:hi],
                lo,
            )
        return BatchClearing(name, allocation, payment)
    starts = range(0, rows, CHUNK_ROWS)
    workers = max(1, min(len(starts), threads))
    chunk = min(rows, CHUNK_ROWS)
    # One scratch space per worker, reused chunk after chunk: allocating chunk-sized
    # temporaries afresh makes malloc map and unmap pages all the time (most of the
    # run time, in the kernel, before this).
    spare: SimpleQueue[_Scratch] = SimpleQueue()
    for _ in range(workers):
        spare.put(_Scratch(chunk, cols))

    def run(lo: int) -> None:
        hi = min(lo + CHUNK_ROWS, rows)
        scratch = spare.get()
        try:
            _clear_rows(
                scratch,
                v[lo:hi],
                q[lo:hi],
                None if present is None else present[lo:hi],
                s[lo:hi],
                r[lo:hi],
                name,
                multi_unit,
                allocation[lo:hi],
                payment[lo:hi],
                lo,
            )
        finally:
            spare.put(scratch)

    if workers == 1:
        for lo in starts:
            run(lo)
    else:
        with ThreadPoolExecutor(workers) as pool:
            # Consumed in order: the first bad chunk's error is the one raised.
            for _ in pool.map(run, starts):
                pass
    if who is None:
        return BatchClearing(name, allocation, payment)
    for row in _stepped_rows(who, q, present).tolist():
        cols_in = np.flatnonzero(present[row]) if present is not None else np.arange(cols)
        vals, qty = v[row, cols_in].tolist(), q[row, cols_in].tolist()
        labels = who[row, cols_in].tolist()
        check_steps(vals, qty, labels)
        if name == "vcg":
            _, x, paid = clear_lists(
                vals, qty, supply=float(s[row]), reserve=float(r[row]), mechanism=name,
                multi_unit=multi_unit, owners=labels,
            )  # fmt: skip
            payment[row, cols_in] = paid
            allocation[row, cols_in] = x
    return BatchClearing(name, allocation, payment, np.array(who, dtype=np.int64))


def _single_item(q: FloatArray, supply: FloatArray, multi_unit: bool) -> bool:
    """Whether every auction sells one unit to bids for one unit (or none): then each
    rule needs only the best and second-best eligible values."""
    units = supply if multi_unit else np.floor(supply)
    if not bool(np.all(units == 1.0)):
        return False
    if not multi_unit:
        return True  # every bid with a positive quantity is for one unit
    if q.size and all(stride == 0 for stride in q.strides):  # one broadcast quantity
        scalar = float(q.reshape(-1)[0])
        return scalar == 1.0 or scalar == 0.0
    return bool(np.all((q == 1.0) | (q == 0.0)))


def _clear_single_item(
    v: FloatArray,
    q: FloatArray,
    present: NDArray[np.bool_] | None,
    reserve: FloatArray,
    name: str,
    x_out: FloatArray,
    pay_out: FloatArray,
    row0: int,
) -> None:
    """One unit per auction, unit bids: top-2 selection per row, O(N) (a chunk of rows).

    The best eligible bid (the lowest column on ties) wins the unit and pays its own
    value (``discriminatory``) or ``max(reserve, second-best eligible value)`` (the
    others: second price, VCG and uniform, whose highest rejected unit is the second).
    """
    c, n = v.shape
    offsets = np.arange(0, c * n, n)  # flat index of each row's first column
    one_quantity = all(stride == 0 for stride in q.strides)  # a broadcast scalar
    if one_quantity and not 0.0 <= q.flat[0] < np.inf:  # (checked once: NaN fails too)
        raise InvalidBidParameters("quantity", float(q.flat[0]), "must be finite and >= 0")
    if present is None and not reserve.any() and one_quantity and q.flat[0] > 0.0:
        # Every bid eligible (the common research call): validation rides on the
        # selection, whose row maxima see NaN and +inf; only the minimum is extra.
        if not v.min(initial=0.0) >= 0.0:
            _check("valuation", v, present, row0)
        key = np.ascontiguousarray(v).reshape(-1)  # a view when already contiguous
        at = v.argmax(axis=1) + offsets
        top = key[at]
        if not np.isfinite(top).all():
            _check("valuation", v, present, row0)
        won: NDArray[np.bool_] | None = None
        if name != "discriminatory":
            key = key.copy()
    else:
        _check("valuation", v, present, row0)
        if not one_quantity:
            _check("quantity", q, present, row0)
        eligible = (v >= reserve[:, None]) & (q > 0.0)
        if present is not None:
            eligible &= present
        key = np.where(eligible, v, -np.inf).reshape(-1)
        at = key.reshape(c, n).argmax(axis=1) + offsets
        top = key[at]
        won = top > -np.inf
    if name == "discriminatory":
        price = top  # pay as bid
    else:
        key[at] = -np.inf
        price = runner_up_price(key.reshape(c, n).max(axis=1), reserve)
    if won is None:
        x_out.reshape(-1)[at] = 1.0
        pay_out.reshape(-1)[at] = price
    else:
        x_out.reshape(-1)[at] = won
        pay_out.reshape(-1)[at] = np.where(won, price, 0.0)


def _owner_array(owners: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.int64]:
    array = np.asarray(owners)
    if array.dtype.kind not in "iu" or (array.size and int(array.min()) < 0):
        raise InvalidBidParameters("owners", array.dtype, "must be non-negative integers")
    try:
        np.broadcast_to(array, shape)
    except ValueError:
        raise InvalidBidParameters(
            "owners", array.shape, f"must be (N,) or the values' shape {shape}"
        ) from None
    return array.astype(np.int64, copy=False)


def _stepped_rows(
    owners: NDArray[np.int64], quantities: FloatArray, present: NDArray[np.bool_] | None
) -> NDArray[np.intp]:
    """Rows where some owner has two or more present entries with a positive quantity."""
    live = quantities > 0.0
    if present is not None:
        live = live & present
    # Absent entries get distinct negative labels, so they never repeat.
    labels = np.where(live, owners, -1 - np.arange(owners.shape[1]))
    labels = np.sort(labels, axis=1)
    return np.flatnonzero((labels[:, 1:] == labels[:, :-1]).any(axis=1))


class _Scratch:
    """Work arrays for chunks of up to ``rows`` auctions of ``n`` bidders."""

    def __init__(self, rows: int, n: int) -> None:
        # Laid out (auction, bidder), as the input.
        self.by_auction = np.empty((rows, n))
        self.unit = np.empty((rows, n))
        self.key = np.empty((rows, n), dtype=_INT)
        self.bits = np.empty((rows, n), dtype=_INT)
        self.eligible = np.empty((rows, n), dtype=bool)
        self.flag = np.empty((rows, n), dtype=bool)
        # Laid out (bidder rank, auction), after the sort.
        self.flat = np.empty((n, rows), dtype=_INT)
        self.keep = np.empty((n, rows), dtype=_INT)
        self.eligible_t = np.empty((n, rows), dtype=bool)
        self.flag_t = np.empty((n, rows), dtype=bool)
        self.vs = np.empty((n, rows))
        self.qs = np.empty((n, rows))
        self.cum = np.empty((n, rows))
        self.xs = np.empty((n, rows))
        self.pay = np.empty((n, rows))
        self.pricing = Work.new(n, rows)


def _check(field: str, array: FloatArray, present: NDArray[np.bool_] | None, row0: int) -> None:
    """Raise on the first present entry that is NaN, infinite or negative."""
    where = True if present is None else present
    # NaN fails both comparisons; min/max see -inf and inf.
    if array.min(where=where, initial=0.0) >= 0 and array.max(where=where, initial=0.0) < np.inf:
        return
    bad = ~(np.isfinite(array) & (array >= 0)) & where
    i, j = np.argwhere(bad)[0]
    raise InvalidBidParameters(
        f"{field}[{row0 + int(i)}, {int(j)}]", float(array[i, j]), "must be finite and >= 0"
    )


def _flat(array: FloatArray, buffer: FloatArray) -> FloatArray:
    """``array`` as a flat C-order view, copied into ``buffer`` if it is not contiguous."""
    if not array.flags.c_contiguous:
        buffer = buffer[: array.shape[0]]
        np.copyto(buffer, array)
        array = buffer
    return array.reshape(-1)


def _clear_rows(
    scratch: _Scratch,
    v: FloatArray,
    q: FloatArray,
    present: NDArray[np.bool_] | None,
    supply: FloatArray,
    reserve: FloatArray,
    name: str,
    multi_unit: bool,
    x_out: FloatArray,
    pay_out: FloatArray,
    row0: int,
) -> None:
    """Clear one chunk of rows into ``x_out`` and ``pay_out`` (C-contiguous result views).

    After the sort everything is laid out (bidder rank, auction): elementwise work is
    the same either way, but reductions and running sums over bidders then run across
    contiguous auction vectors, which numpy does many times faster than along short
    rows. Masked selections are done with bit operations (``bits & all_ones_or_zero``):
    ``np.where``/``copyto(where=)`` are several times slower on random masks, and
    multiplying by a mask would turn an absent entry's NaN into NaN again.
    """
    _check("valuation", v, present, row0)
    _check("quantity", q, present, row0)
    c, n = v.shape
    auctions = np.arange(c)
    if not multi_unit:
        unit = scratch.unit[:c]
        np.copyto(unit, np.greater(q, 0.0, out=scratch.flag[:c]))
        q = unit
        supply = np.floor(supply)
    eligible = np.greater_equal(v, reserve[:, None], out=scratch.eligible[:c])
    eligible &= np.greater(q, 0.0, out=scratch.flag[:c])
    if present is not None:
        eligible &= present

    # 1. Stable sort by value, highest first, eligible bids first. Key: the bits of
    # |v| (ordered like v for v >= 0), sign bit set for ineligible bids, inverted so
    # that eligible keys are negative and descending in v; the column in the low bits.
    low_bits = max(1, (n - 1).bit_length())
    col_mask = _INT((1 << low_bits) - 1)
    key = np.bitwise_and(v.view(_INT), _ABS, out=scratch.key[:c])  # also -0.0 -> +0.0
    ineligible = np.logical_not(eligible, out=scratch.flag[:c])
    key |= np.multiply(ineligible, _SIGN, out=scratch.bits[:c])
    np.invert(key, out=key)
    key &= ~col_mask
    key |= np.arange(n, dtype=_INT)
    key.sort(axis=1)
    flat = scratch.flat[:, :c]
    np.copyto(flat, key.T)
    eligible_t = np.less(flat, 0, out=scratch.eligible_t[:, :c])
    # Flat index of the bid at rank k of auction i, laid out (k, i).
    flat &= col_mask
    flat += auctions * n
    v_flat = _flat(v, scratch.by_auction)
    vs = np.take(v_flat, flat, out=scratch.vs[:, :c], mode="clip")
    swapped = np.greater(vs[1:], vs[:-1], out=scratch.flag_t[1:, :c])
    swapped &= eligible_t[1:]
    bad = np.flatnonzero(swapped.any(axis=0))
    if bad.size:
        # Values equal in all but the key's dropped low bits: re-sort those rows exactly.
        exact = np.where(eligible[bad], -v[bad], np.inf).argsort(axis=1, kind="stable")
        flat[:, bad] = (exact + bad[:, None] * n).T
        vs[:, bad] = v_flat.take(flat[:, bad])
    qs = np.take(_flat(q, scratch.by_auction), flat, out=scratch.qs[:, :c], mode="clip")
    # Ineligible bids get quantity 0 and the reserve as value: they add nothing below.
    keep = np.multiply(eligible_t, _INT(-1), out=scratch.keep[:, :c])
    qs.view(_INT)[...] &= keep
    vs.view(_INT)[...] &= keep
    np.maximum(vs, reserve, out=vs)

    # 2. Allocation in value order: x = clip(S - ahead, 0, q), ahead = the volume of the
    # bids before (cum shifted by one rank, not cum - q: see clearing.clear).
    cum = scratch.cum[:, :c]
    if c < n:  # few auctions of many bids: one call, not one per rank (same sums)
        np.cumsum(qs, axis=0, out=cum)
    else:
        cum[0] = qs[0]
        for k in range(1, n):
            np.add(cum[k - 1], qs[k], out=cum[k])
    xs = scratch.xs[:, :c]
    xs[0] = supply
    np.subtract(supply, cum[:-1], out=xs[1:])
    # np.clip's bits (max then min) in two SIMD passes: clip with an array bound runs
    # element by element, ~10x slower.
    np.maximum(xs, 0.0, out=xs)
    np.minimum(xs, qs, out=xs)

    # 3. Payments.
    pay = scratch.pay[:, :c]
    pay.fill(0.0)
    n_eligible = eligible_t.sum(axis=0, dtype=np.intp)
    pay_sorted(name, multi_unit, vs, qs, xs, n_eligible, reserve, pay, scratch.pricing)
    x_out.reshape(-1)[flat] = xs
    pay_out.reshape(-1)[flat] = pay
