"""Clear one auction on (value per unit, quantity) bids: :func:`clear` (arrays or
lists), :func:`clear_lists` (Python floats, for a live auction's few dozen bids) and
:func:`clear_ranked` (the same, on bids the caller has already sorted).

Both validate, sort (value order, ties to the earlier bid) and allocate, then price
with :mod:`.pricing`; the rules (VCG, second price, uniform, pay-as-bid, unit and step
demand) are stated in ``docs/mechanisms.md``. Values are per unit (price or bps),
quantities and allocations in token units, payments in value x token units.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidBidParameters
from ..mechanism_names import MECHANISMS, canonical_mechanism
from .pricing import pay as pay_sorted
from .pricing import pay_list, vcg_step_payments_list

__all__ = [
    "MECHANISMS",
    "SMALL_CLEARING",
    "Clearing",
    "ValueOrder",
    "canonical_mechanism",
    "check_steps",
    "clear",
    "clear_lists",
    "clear_ranked",
    "clear_ranked_winners",
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
    order: NDArray[np.intp] = (-values).argsort(kind="stable")  # the method: no wrapper
    return order


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
    order (anything else, a scalar or a 2-D array, raises: :func:`~.batch.clear_batch`
    clears many auctions, one per row); the result's ``allocation`` and ``payment``
    (total, not per unit) follow the same order. ``owners`` (one label per entry; None:
    each entry its own bidder) makes an owner's entries the steps of one demand curve.
    Raises :class:`InvalidBidParameters` naming the first bad input. Lists or tuples of
    up to :data:`SMALL_CLEARING` numbers, and step demand under VCG, are cleared by
    :func:`clear_lists` (same result, bit for bit).
    """
    small = _small_floats(values, quantities)
    if small is None:
        v, q = _bid_arrays(values, quantities)
        if owners is not None:
            small = (v.tolist(), q.tolist())
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
    # Volume ahead of each bid as the sum of the bids before it, not cum - q: a tiny
    # quantity absorbed into a large one (0.5 + 1e-42 == 0.5) must not fill again.
    ahead = np.concatenate(([0.0], np.cumsum(qs)[:-1]))
    filled = np.clip(supply - ahead, 0.0, qs)
    paid = np.zeros((vs.size, 1))
    eligible = np.array([vs.size])
    pay_sorted(name, multi_unit, vs[:, None], qs[:, None], filled[:, None], eligible,
               np.array([reserve]), paid)  # fmt: skip
    x[order] = filled
    pay[order] = paid[:, 0]
    return Clearing(name, x, pay)


def _bid_arrays(
    values: ArrayLike | Sequence[float], quantities: ArrayLike | Sequence[float]
) -> tuple[FloatArray, FloatArray]:
    """``values`` and ``quantities`` as float arrays, refused unless 1-D and of one
    shape: flattened, a 2-D input cleared its rows as one auction."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise InvalidBidParameters(
            "values",
            v.shape,
            "must be 1-D, the bids of one auction; clear_batch clears many auctions, "
            "one per row of (auctions, bidders) arrays",
        )
    q = np.asarray(quantities, dtype=np.float64)
    if q.shape != v.shape:
        raise InvalidBidParameters(
            "quantities", q.shape, f"must have the shape of values {v.shape}, one per bid"
        )
    return v, q


# -- the same rules on Python floats, for a few bids --

#: Up to this many bids (a list, tuple or float64 array), :func:`clear` runs :func:`clear_lists`.
SMALL_CLEARING: Final = 64


def _small_floats(
    values: ArrayLike | Sequence[float], quantities: ArrayLike | Sequence[float]
) -> tuple[list[float], list[float]] | None:
    """``values`` and ``quantities`` as lists of floats if both are short flat lists or
    tuples, or 1-D float arrays, of the same length; None sends everything else down
    the array path (which refuses what is not 1-D)."""
    if isinstance(values, np.ndarray) and isinstance(quantities, np.ndarray):
        # Not 1-D: the array path refuses it (flattened, rows would clear as one auction).
        if values.ndim != 1 or values.size > SMALL_CLEARING or values.shape != quantities.shape:
            return None
        if values.dtype != np.float64 or quantities.dtype != np.float64:
            return None
        return values.tolist(), quantities.tolist()
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
    # Value order, ties by index (a stable sort, as value_order).
    order = sorted(range(n), key=v.__getitem__, reverse=True)
    name, x, pay, _ = _clear_in_order(
        name, multi_unit, v, q, order, supply, reserve, owners if stepped else None
    )
    return name, x, pay


class ValueOrder(Sequence[int]):
    """The indices of ``values`` from the highest value down, ties by index: the
    ``sorted(range(n), key=values.__getitem__, reverse=True)`` that :func:`clear_ranked`
    takes, as an immutable sequence equal to that list, sorted when first indexed.

    Iterated before that, it yields the first two from two maximum scans and sorts only
    if read further: a Vickrey clearing reads two (its winner and runner-up), and the
    sort of a live auction's bids costs more than its clearing. The scans give the
    sort's first two exactly when every value is finite (``max`` and ``index`` pick the
    first of equal values, as the stable sort keeps them), which a sum checks."""

    __slots__ = ("_order", "_values")

    def __init__(self, values: list[float]) -> None:
        self._values = values
        self._order: list[int] | None = None

    def _built(self) -> list[int]:
        order = self._order
        if order is None:
            values = self._values
            order = self._order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
        return order

    def __iter__(self) -> Iterator[int]:
        if self._order is not None:
            return iter(self._order)
        return self._head_first()

    def _head_first(self) -> Iterator[int]:
        values = self._values
        total = sum(values)
        if len(values) < 2 or total - total != 0.0:  # short, or not all finite: sort
            yield from self._built()
            return
        first = values.index(max(values))
        rest = values.copy()
        rest[first] = -math.inf  # below every finite value
        yield first
        yield rest.index(max(rest))
        yield from self._built()[2:]

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        return self._built()[index]

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self._built() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list: unhashable like it

    def __repr__(self) -> str:
        return f"ValueOrder({self._built()!r})"


def clear_ranked(
    values: list[float],
    quantities: list[float],
    order: Sequence[int],
    *,
    supply: float,
    reserve: float = 0.0,
    mechanism: str = "vcg",
) -> tuple[str, list[float], list[float]]:
    """:func:`clear_lists` for a caller that has already ranked its bids (multi-unit
    demand, one entry per bidder): ``values`` and ``quantities`` lists of floats, and
    ``order`` their indices from the highest value down, ties by index -- what
    ``sorted(range(n), key=values.__getitem__, reverse=True)`` gives; it is trusted, not
    checked. The same validation, rules and bits, without the copies and the second sort
    (a live auction ranks its bids anyway, for the published ranking)."""
    name, x, pay, _ = clear_ranked_winners(
        values, quantities, order, supply=supply, reserve=reserve, mechanism=mechanism
    )
    return name, x, pay


def clear_ranked_winners(
    values: list[float],
    quantities: list[float],
    order: Sequence[int],
    *,
    supply: float,
    reserve: float = 0.0,
    mechanism: str = "vcg",
    checked: bool = False,
) -> tuple[str, list[float], list[float], list[int]]:
    """:func:`clear_ranked` and the winners: the indices with an allocation, in
    ``order`` (a caller pricing its winners need not scan every bid for them).
    ``checked``: the caller has found every value and quantity finite and >= 0 (the
    engine's batch of bids, judged by the rule book), so they are not checked again."""
    if len(values) != len(quantities) or len(order) != len(values):
        raise InvalidBidParameters(
            "quantities", (len(quantities),), f"must have the shape of valuations {(len(values),)}"
        )
    supply, reserve = float(supply), float(reserve)
    if not checked:
        _check_floats("valuation", values)
        _check_floats("quantity", quantities)
    # check_scalar's test written out (0 <= x < inf is False for NaN too): one live
    # auction runs this once, and the calls cost more than the comparisons.
    if not (0.0 <= supply < math.inf):
        check_scalar("supply", supply)
    if not (0.0 <= reserve < math.inf):
        check_scalar("reserve_price", reserve)
    name = canonical_mechanism(mechanism)
    return _clear_in_order(name, True, values, quantities, order, supply, reserve, None)


def _clear_in_order(
    name: str,
    multi_unit: bool,
    v: list[float],
    q: list[float],
    ranked: Sequence[int],
    supply: float,
    reserve: float,
    step_owners: Sequence[Hashable] | None,
) -> tuple[str, list[float], list[float], list[int]]:
    """Allocate and price validated bids given their value order (``ranked``); owners
    only when some owner has several steps. Also the winners, in value order."""
    n = len(v)
    x = [0.0] * n
    pay = [0.0] * n
    if name == "vickrey":  # one winner and its runner-up: the others change nothing
        order = []
        for i in ranked:
            if v[i] >= reserve and q[i] > 0:
                order.append(i)
                if len(order) == 2:
                    break
    elif step_owners is None:
        return _clear_head(name, multi_unit, v, q, ranked, supply, reserve)
    else:
        order = [i for i in ranked if v[i] >= reserve and q[i] > 0]  # eligible bids only
    if not order or supply <= 0:
        return name, x, pay, []
    vs = list(map(v.__getitem__, order))
    qs = list(map(q.__getitem__, order))
    filled = []
    ahead = 0.0  # the volume of the bids before this one (see clear)
    for units in qs:
        left = supply - ahead  # np.clip(supply - ahead, 0, q)
        filled.append(0.0 if left < 0.0 else units if left > units else left)
        ahead += units
    if step_owners is not None and name == "vcg":
        paid = vcg_step_payments_list(vs, qs, filled, [step_owners[i] for i in order], reserve)
    else:
        paid = pay_list(name, multi_unit, vs, qs, filled, reserve)
    return _placed(name, x, pay, order, filled, paid)


def _clear_head(
    name: str,
    multi_unit: bool,
    v: list[float],
    q: list[float],
    ranked: Sequence[int],
    supply: float,
    reserve: float,
) -> tuple[str, list[float], list[float], list[int]]:
    """:func:`_clear_in_order` without step demand, reading the eligible bids only as far
    as the rule's prices do: a live auction of a few hundred bids fills a few.

    Filled in value order, the bids are a prefix filled in full, then at most one filled
    in part, then bids filled with 0.0 (once ``supply - ahead`` is below a bid's units,
    ``ahead`` plus those units rounds to at least the supply, and ``ahead`` only grows).
    Pay-as-bid and uniform read that prefix and the first bid not filled in full; VCG
    reads after it the tail's knots up to the first at or past the supply (no winner's
    displaced units exceed it; ``bisect`` then stops at the same knot as on the whole
    tail). What is left out would have been allocated 0.0 and priced by nobody: the
    result is the whole walk's, bit for bit."""
    n = len(v)
    x = [0.0] * n
    pay = [0.0] * n
    if not supply > 0.0:
        return name, x, pay, []
    order: list[int] = []
    vs: list[float] = []
    qs: list[float] = []
    filled: list[float] = []
    ahead = 0.0  # the volume of the bids before this one (see clear)
    covered = -1.0  # past the marginal bid: the tail's units so far (VCG's knots)
    for i in ranked:
        value, units = v[i], q[i]
        if not (value >= reserve and units > 0):
            continue  # eligible bids only
        if covered < 0.0:
            left = supply - ahead  # np.clip(supply - ahead, 0, q)
            won = 0.0 if left < 0.0 else units if left > units else left
            ahead += units
        elif covered < supply:
            covered += units  # accumulate()'s knots, added in the same order
            won = 0.0
        else:
            break
        order.append(i)
        vs.append(value)
        qs.append(units)
        filled.append(won)
        if won != units and covered < 0.0:  # the first bid not filled in full
            if name != "vcg" or not multi_unit:
                break
            covered = 0.0
    if not order:
        return name, x, pay, []
    paid = pay_list(name, multi_unit, vs, qs, filled, reserve)
    return _placed(name, x, pay, order, filled, paid)


def _placed(
    name: str,
    x: list[float],
    pay: list[float],
    order: list[int],
    filled: list[float],
    paid: list[float],
) -> tuple[str, list[float], list[float], list[int]]:
    """``order``'s units ``filled`` and payments ``paid`` written into the per-bid ``x``
    and ``pay`` (zeros), and the winners: the bids filled, a prefix of the value order."""
    winners = 0
    for i, units, amount in zip(order, filled, paid, strict=True):
        if units <= 0.0:
            break  # winners are a prefix of the value order; the rest stay 0
        x[i] = units
        pay[i] = amount
        winners += 1
    return name, x, pay, order[:winners]
