"""clear_batch agrees with clear() row by row: ties, masks, reserves, every rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from phantom_auction import MECHANISMS, BatchClearing, InvalidBidParameters, clear, clear_batch
from phantom_auction.mechanisms.batch import CHUNK_ROWS

Arrays = Any  # numpy arrays or anything clear_batch broadcasts


def _row_by_row(
    values: np.ndarray,
    quantities: Arrays,
    mask: np.ndarray | None,
    supply: Arrays,
    reserve: Arrays,
    mechanism: str,
    multi_unit: bool,
) -> tuple[str | None, np.ndarray, np.ndarray]:
    """The object path on each row's present bids, scattered back to (A, N)."""
    rows, n = values.shape
    q = np.broadcast_to(quantities, values.shape)
    present = np.ones(values.shape, bool) if mask is None else mask
    s = np.broadcast_to(supply, (rows,))
    r = np.broadcast_to(reserve, (rows,))
    x = np.zeros((rows, n))
    p = np.zeros((rows, n))
    name = None
    for i in range(rows):
        cols = np.flatnonzero(present[i])
        c = clear(
            values[i, cols],
            q[i, cols],
            supply=s[i],
            reserve=r[i],
            mechanism=mechanism,
            multi_unit=multi_unit,
        )
        x[i, cols], p[i, cols], name = c.allocation, c.payment, c.mechanism
    return name, x, p


def _assert_agrees(
    values: np.ndarray,
    quantities: Arrays,
    mask: np.ndarray | None,
    *,
    supply: Arrays,
    reserve: Arrays,
    mechanism: str,
    multi_unit: bool,
    **kw: Any,
) -> None:
    got = clear_batch(
        values,
        quantities,
        mask,
        supply=supply,
        reserve=reserve,
        mechanism=mechanism,
        multi_unit=multi_unit,
        **kw,
    )
    assert isinstance(got, BatchClearing)
    name, x, p = _row_by_row(values, quantities, mask, supply, reserve, mechanism, multi_unit)
    if name is not None:
        assert got.mechanism == name
    # Allocations come from the same running sums in the same order, and payments from
    # the same pricing (mechanisms/pricing.py) in the same order: equal exactly.
    np.testing.assert_array_equal(got.allocation, x)
    np.testing.assert_array_equal(got.payment, p)


def _random_case(
    rng: np.random.Generator, rows: int, n: int, ties: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if ties:
        values = rng.integers(0, 6, (rows, n)).astype(float)
        quantities = rng.integers(0, 4, (rows, n)).astype(float)
        supply = rng.integers(0, 3 * n + 1, rows).astype(float)
        reserve = rng.integers(0, 4, rows).astype(float)
    else:
        values = rng.uniform(0.0, 100.0, (rows, n))
        quantities = rng.uniform(0.0, 10.0, (rows, n))
        supply = rng.uniform(0.0, 5.0 * n, rows)
        reserve = rng.uniform(0.0, 60.0, rows)
    mask = rng.random((rows, n)) < 0.8
    # Absent entries may hold anything, NaN included.
    values[~mask & (rng.random((rows, n)) < 0.3)] = np.nan
    return values, quantities, mask, supply, reserve


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("multi_unit", [True, False])
@pytest.mark.parametrize("ties", [True, False])
def test_batch_agrees_with_clear(mechanism: str, multi_unit: bool, ties: bool) -> None:
    rng = np.random.default_rng(hash((mechanism, multi_unit, ties)) % 2**32)
    for n in (1, 2, 3, 5, 8, 20):
        values, quantities, mask, supply, reserve = _random_case(rng, 300, n, ties)
        _assert_agrees(
            values,
            quantities,
            mask,
            supply=supply,
            reserve=reserve,
            mechanism=mechanism,
            multi_unit=multi_unit,
        )


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_scalar_arguments_and_no_mask(mechanism: str) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(40, 60, (500, 7)).astype(float)
    for quantities in (1.0, rng.integers(1, 100, (500, 7)).astype(float)):
        _assert_agrees(
            values,
            quantities,
            None,
            supply=150.0,
            reserve=50.0,
            mechanism=mechanism,
            multi_unit=True,
        )


def test_values_equal_but_for_their_last_bits() -> None:
    # The packed sort key drops the low bits of each value: neighbours one ulp apart
    # come out in column order and must be put back in value order.
    one = 1.0
    up = math.nextafter(one, 2.0)
    values = np.array([[one, up, one, up], [up, one, up, one], [one, one, up, up]])
    quantities = np.ones_like(values)
    for mechanism in MECHANISMS:
        _assert_agrees(
            values, quantities, None, supply=2.0, reserve=0.0, mechanism=mechanism, multi_unit=True
        )
    got = clear_batch(values, quantities, supply=2.0, mechanism="discriminatory")
    np.testing.assert_array_equal(got.allocation, [[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 1, 1]])


def test_negative_zero_and_zero_values() -> None:
    values = np.array([[-0.0, 0.0, 1.0], [0.0, -0.0, 0.0]])
    for mechanism in MECHANISMS:
        _assert_agrees(
            values, 1.0, None, supply=2.0, reserve=0.0, mechanism=mechanism, multi_unit=True
        )


def test_many_bidders_and_a_partial_last_chunk() -> None:
    rng = np.random.default_rng(11)
    rows = CHUNK_ROWS + 37
    values, quantities, mask, supply, reserve = _random_case(rng, rows, 3, ties=True)
    single = clear_batch(values, quantities, mask, supply=supply, reserve=reserve, threads=1)
    double = clear_batch(values, quantities, mask, supply=supply, reserve=reserve, threads=2)
    np.testing.assert_array_equal(single.allocation, double.allocation)
    np.testing.assert_array_equal(single.payment, double.payment)
    tail = slice(rows - 200, rows)
    for mechanism in MECHANISMS:
        _assert_agrees(
            values[tail],
            quantities[tail],
            mask[tail],
            supply=supply[tail],
            reserve=reserve[tail],
            mechanism=mechanism,
            multi_unit=True,
        )
    # 70 bidders: 7 low bits of the key hold the column.
    wide = _random_case(rng, 60, 70, ties=False)
    _assert_agrees(*wide[:3], supply=wide[3], reserve=wide[4], mechanism="vcg", multi_unit=True)


def test_non_contiguous_inputs() -> None:
    rng = np.random.default_rng(5)
    values = rng.integers(0, 9, (12, 40)).astype(float)[:, ::2]
    quantities = rng.integers(1, 4, (20, 12)).astype(float).T
    mask = rng.random((20, 12)).T < 0.7
    for mechanism in MECHANISMS:
        _assert_agrees(
            values, quantities, mask, supply=7.0, reserve=2.0, mechanism=mechanism, multi_unit=True
        )


def test_empty_shapes() -> None:
    for shape in ((0, 4), (3, 0)):
        got = clear_batch(np.zeros(shape), 1.0, supply=1.0)
        assert got.allocation.shape == got.payment.shape == shape


def test_invalid_present_entries_name_row_and_column() -> None:
    values = np.ones((3, 4))
    values[2, 1] = -1.0
    with pytest.raises(InvalidBidParameters, match=r"valuation\[2, 1\]=-1\.0"):
        clear_batch(values, 1.0, supply=1.0)
    mask = np.ones((3, 4), bool)
    mask[2, 1] = False
    clear_batch(values, 1.0, mask, supply=1.0)  # absent: ignored
    quantities = np.ones((3, 4))
    quantities[0, 3] = math.inf
    with pytest.raises(InvalidBidParameters, match=r"quantity\[0, 3\]=inf"):
        clear_batch(np.ones((3, 4)), quantities, supply=1.0)
    with pytest.raises(InvalidBidParameters, match=r"supply\[1\]=nan"):
        clear_batch(np.ones((3, 4)), 1.0, supply=[1.0, math.nan, 1.0])
    with pytest.raises(InvalidBidParameters, match=r"reserve_price\[0\]=-2\.0"):
        clear_batch(np.ones((3, 4)), 1.0, supply=1.0, reserve=-2.0)
    with pytest.raises(InvalidBidParameters, match="values"):
        clear_batch(np.ones(4), 1.0, supply=1.0)
    with pytest.raises(InvalidBidParameters, match="broadcast"):
        clear_batch(np.ones((3, 4)), np.ones((2, 4)), supply=1.0)
    with pytest.raises(InvalidBidParameters, match="mechanism"):
        clear_batch(np.ones((3, 4)), 1.0, supply=1.0, mechanism="dutch")


def test_clear_refuses_many_auctions_and_clear_batch_takes_them() -> None:
    # clear() used to flatten (A, N) arrays into one auction of A * N bids.
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    quantities = np.ones_like(values)
    for args in ((values, quantities), (values.tolist(), quantities.tolist())):
        with pytest.raises(
            InvalidBidParameters, match=r"values=\(2, 2\): must be 1-D.*clear_batch"
        ):
            clear(*args, supply=1.0)
    batch = clear_batch(values, quantities, supply=1.0)
    for row in range(2):
        one = clear(values[row], quantities[row], supply=1.0)
        assert batch.allocation[row].tolist() == one.allocation.tolist() == [0.0, 1.0]
        assert batch.payment[row].tolist() == one.payment.tolist()


def test_payments_survive_values_many_orders_apart() -> None:
    # Supply 1.5: bid 0 takes 1 unit, bid 1 is marginal with 0.5. Bid 0 displaces bid
    # 1's other half and half a unit of bid 2: 0.5e10 + 0.5; bid 1 displaces 0.5 of
    # bid 2. A difference of cumulative welfare (~1e200) would round both to 0.
    values = [1e200, 1e10, 1.0]
    quantities = [1.0, 1.0, 5.0]
    expected = [0.5e10 + 0.5, 0.5, 0.0]
    np.testing.assert_allclose(clear(values, quantities, supply=1.5).payment, expected)
    batch = clear_batch([values], [quantities], supply=1.5)
    np.testing.assert_allclose(batch.payment[0], expected)
    rng = np.random.default_rng(8)
    wide = np.exp(rng.uniform(-600.0, 600.0, (200, 9)))
    _assert_agrees(
        wide,
        rng.uniform(0.0, 3.0, (200, 9)),
        rng.random((200, 9)) < 0.9,
        supply=rng.uniform(0.0, 20.0, 200),
        reserve=0.0,
        mechanism="vcg",
        multi_unit=True,
    )


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("multi_unit", [True, False])
def test_single_item_fast_path_agrees_with_clear(mechanism: str, multi_unit: bool) -> None:
    # Supply 1 and unit bids: clear_batch takes the top-2 path; it must still agree
    # with clear() row by row (ties, masks with NaN, reserves, zero quantities).
    rng = np.random.default_rng(17)
    for n in (1, 2, 3, 7, 20):
        rows = CHUNK_ROWS + 100 if n == 3 else 500  # two chunks once
        values = rng.integers(0, 8, (rows, n)).astype(float)
        mask = rng.random((rows, n)) < 0.85
        values[~mask & (rng.random((rows, n)) < 0.5)] = np.nan
        reserve = rng.integers(0, 4, rows).astype(float)
        quantities = (rng.random((rows, n)) < 0.9).astype(float)  # 1 or 0
        supply = 1.0 if multi_unit else rng.uniform(1.0, 1.99, rows)
        if not multi_unit:
            quantities *= rng.uniform(0.5, 3.0, (rows, n))  # unit demand: any positive
        _assert_agrees(
            values,
            quantities,
            mask,
            supply=supply,
            reserve=reserve,
            mechanism=mechanism,
            multi_unit=multi_unit,
        )
        # The plainest call: every bid present, one quantity, no reserve.
        _assert_agrees(
            np.abs(values[:, :n]) if not np.isnan(values).any() else rng.random((rows, n)),
            1.0,
            None,
            supply=1.0,
            reserve=0.0,
            mechanism=mechanism,
            multi_unit=True,
        )


def test_single_item_fast_path_names_bad_entries() -> None:
    values = np.ones((3, 4))
    values[2, 1] = -1.0
    with pytest.raises(InvalidBidParameters, match=r"valuation\[2, 1\]"):
        clear_batch(values, 1.0, supply=1.0, mechanism="vickrey")
    quantities = np.ones((3, 4))
    quantities[1, 3] = np.inf
    with pytest.raises(InvalidBidParameters, match=r"quantity\[1, 3\]"):
        clear_batch(np.ones((3, 4)), quantities, supply=1.0, multi_unit=False)


@pytest.mark.parametrize("quantity", [-1.0, math.nan, math.inf])
def test_a_bad_scalar_quantity_is_refused_under_unit_demand(quantity: float) -> None:
    """One quantity for every bid, one unit for sale (the single-item path): refused as
    an array of it is (the audit: NaN and -1 cleared with no winner, inf as a unit)."""
    values = np.array([[3.0, 5.0, 4.0]])
    with pytest.raises(InvalidBidParameters, match="quantity"):
        clear_batch(values, np.full((1, 3), quantity), supply=1.0, multi_unit=False)
    with pytest.raises(InvalidBidParameters, match="quantity"):
        clear_batch(values, quantity, supply=1.0, multi_unit=False)
