"""The theory audit: uniform price and VCG against definitions, at any magnitude.

- Uniform price, from SPEC: expand every bid into its units, sell the ``supply`` best
  (value, then submission order), and charge every sold unit the value of the best
  rejected one (the reserve if none is rejected; bids below the reserve are not in).
- VCG against :func:`brute_force_vcg` (payments are externalities).
- Both scaled by 1e-300, 1e-310 (subnormal) and 1e300: allocations do not move and
  payments scale; :func:`clear` and :func:`clear_batch` agree bit for bit; ties, zero
  quantities and zero supply included.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from phantom_auction.mechanisms import clear
from phantom_auction.mechanisms.batch import clear_batch

from .mechanism_oracles import brute_force_vcg

SCALES = (1.0, 1e-300, 1e-310, 1e300)


@st.composite
def small_auctions(draw: st.DrawFn) -> dict:
    """Integer values 0-7 (ties likely), quantities 0-3 (zero included), supply 0-6."""
    n = draw(st.integers(1, 5))
    return {
        "values": draw(st.lists(st.integers(0, 7), min_size=n, max_size=n)),
        "quantities": draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
        "supply": draw(st.integers(0, 6)),
        "reserve": draw(st.integers(0, 3)),
    }


def _uniform_by_units(
    values: list[int], quantities: list[int], supply: int, reserve: int
) -> tuple[list[int], list[int]]:
    units = sorted(
        (-v, i) for i, (v, q) in enumerate(zip(values, quantities, strict=True)) for _ in range(q)
        if v >= reserve
    )  # fmt: skip
    allocation = [0] * len(values)
    for _, i in units[:supply]:
        allocation[i] += 1
    price = max(reserve, -units[supply][0]) if len(units) > supply else reserve
    return allocation, [x * price for x in allocation]


def _same_as_batch(mechanism: str, v: np.ndarray, q: np.ndarray, supply: int, r: float) -> None:
    one = clear(v, q, supply=supply, reserve=r, mechanism=mechanism)
    many = clear_batch(v[None, :], q[None, :], supply=supply, reserve=r, mechanism=mechanism)
    np.testing.assert_array_equal(many.allocation[0], one.allocation)
    np.testing.assert_array_equal(many.payment[0], one.payment)


@given(small_auctions())
def test_uniform_price_is_the_best_rejected_unit_at_any_magnitude(case: dict) -> None:
    allocation, payment = _uniform_by_units(**case)
    q = np.array(case["quantities"], dtype=np.float64)
    for scale in SCALES:
        v = np.array(case["values"], dtype=np.float64) * scale
        r = case["reserve"] * scale
        got = clear(v, q, supply=case["supply"], reserve=r, mechanism="uniform")
        np.testing.assert_array_equal(got.allocation, allocation)
        np.testing.assert_allclose(got.payment / scale, payment, rtol=1e-9, atol=0.0)
        _same_as_batch("uniform", v, q, case["supply"], r)


@given(small_auctions())
def test_vcg_payments_are_externalities_at_any_magnitude(case: dict) -> None:
    values, reserve = case["values"], case["reserve"]
    q = np.array(case["quantities"], dtype=np.float64)
    # The oracle needs one welfare optimum: distinct values, none at the reserve.
    unique = len(set(values)) == len(values) and reserve not in values
    expected = brute_force_vcg(values, case["quantities"], case["supply"], reserve)
    for scale in SCALES:
        v = np.array(values, dtype=np.float64) * scale
        got = clear(v, q, supply=case["supply"], reserve=reserve * scale, mechanism="vcg")
        if unique:
            np.testing.assert_array_equal(got.allocation, expected.allocation)
            np.testing.assert_allclose(got.payment / scale, expected.payment, rtol=1e-9, atol=0.0)
        # Individual rationality and payment <= bid, whatever the ties.
        assert np.all(got.payment <= v * got.allocation * (1 + 1e-12))
        assert np.all(got.payment >= 0.0)
        _same_as_batch("vcg", v, q, case["supply"], reserve * scale)


magnitudes = st.builds(lambda m, e: m * 10.0**e, st.floats(1.0, 9.99), st.integers(-300, 140))


@given(
    st.lists(st.one_of(st.just(0.0), magnitudes), min_size=1, max_size=6),
    st.lists(st.one_of(st.just(0.0), st.floats(1e-10, 1e10)), min_size=6, max_size=6),
    st.one_of(st.just(0.0), st.floats(1e-10, 1e10)),
    st.one_of(st.just(0.0), magnitudes, st.integers(0, 5)),
    st.sampled_from(["vcg", "vickrey", "uniform", "discriminatory"]),
    st.booleans(),
)
def test_invariants_when_values_span_440_orders_of_magnitude(
    values: list[float],
    quantities: list[float],
    supply: float,
    reserve: float,
    mechanism: str,
    multi_unit: bool,
) -> None:
    """Values 0 or 1e-300 to 1e140 in one auction (payments stay below 1e160): no fill
    beyond a bid or the supply; every winner pays between the reserve and its bid (an
    index into the values as reserve makes ties with it); the batch gives the same bits."""
    v = np.array(values)
    q = np.array(quantities[: v.size])
    if isinstance(reserve, int):
        reserve = float(np.sort(v)[reserve % v.size])
    got = clear(v, q, supply=supply, reserve=reserve, mechanism=mechanism, multi_unit=multi_unit)
    x, paid = got.allocation, got.payment
    wanted = q if multi_unit else (q > 0).astype(np.float64)
    units = supply if multi_unit else float(np.floor(supply))
    assert np.all(x >= 0.0) and np.all(x <= wanted) and x.sum() <= units * (1 + 1e-12)
    assert np.all(np.isfinite(paid))
    assert np.all(paid <= v * x * (1 + 1e-9))
    assert np.all(paid >= reserve * x * (1 - 1e-9))
    assert np.all(x[v < reserve] == 0.0)
    many = clear_batch(
        v[None, :], q[None, :], supply=supply, reserve=reserve, mechanism=mechanism,
        multi_unit=multi_unit,
    )  # fmt: skip
    np.testing.assert_array_equal(many.allocation[0], x)
    np.testing.assert_array_equal(many.payment[0], paid)
