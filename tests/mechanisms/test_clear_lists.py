"""clear() on a few bids runs on Python floats (clear_lists): the same result, bit for
bit, as the numpy path, for every rule, unit or multi-unit demand, ties and reserves;
the same errors for bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import InvalidBidParameters, clear_batch
from phantom_auction.mechanisms.clearing import SMALL_CLEARING, clear, clear_lists, clear_ranked

MECHANISMS = ["vcg", "vickrey", "uniform", "discriminatory", "second_price", "pay_as_bid"]
# Few distinct values and quantities, so that ties, exact fills and zeros are common.
VALUES = st.sampled_from([0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 100.0]) | st.floats(0, 200)
QUANTITIES = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]) | st.floats(0, 50)


def _same(values: list[float], quantities: list[float], **kwargs: object) -> None:
    by_lists = clear(values, quantities, **kwargs)  # type: ignore[arg-type]
    by_arrays = clear(np.array(values, dtype=float), np.array(quantities, dtype=float), **kwargs)  # type: ignore[arg-type]
    assert by_lists.mechanism == by_arrays.mechanism
    assert by_lists.allocation.dtype == by_arrays.allocation.dtype == np.float64
    assert by_lists.allocation.tolist() == by_arrays.allocation.tolist()
    assert by_lists.payment.tolist() == by_arrays.payment.tolist()
    name, x, paid = clear_lists(values, quantities, **kwargs)  # type: ignore[arg-type]
    assert (name, x, paid) == (
        by_arrays.mechanism,
        by_arrays.allocation.tolist(),
        by_arrays.payment.tolist(),
    )
    if kwargs.get("multi_unit", True):
        # Presorted (a live auction's settlement): the same bits without the second sort.
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
        ranked_kwargs = {k: v for k, v in kwargs.items() if k != "multi_unit"}
        assert clear_ranked(
            [float(v) for v in values], [float(q) for q in quantities], order, **ranked_kwargs
        ) == (name, x, paid)  # type: ignore[arg-type]
    # The array twin (mechanisms/pricing.py) prices one auction (a column) and a batch
    # (a walk across auctions) to the same bits as the list form.
    row, units = np.array(values, dtype=float), np.array(quantities, dtype=float)
    one = clear_batch(row[None], units[None], **kwargs)  # type: ignore[arg-type]
    two = clear_batch(np.stack([row, row]), np.stack([units, units]), **kwargs)  # type: ignore[arg-type]
    for batch in (one, two):
        for i in range(batch.payment.shape[0]):
            assert batch.allocation[i].tolist() == x
            assert batch.payment[i].tolist() == paid


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(VALUES, QUANTITIES), max_size=30),
    st.floats(0, 100) | st.sampled_from([0.0, 1.0, 3.0, 10.0]),
    st.floats(0, 150) | st.sampled_from([0.0, 2.0, 5.0]),
    st.sampled_from(MECHANISMS),
    st.booleans(),
)
def test_lists_clear_to_the_same_bits_as_arrays(
    bids: list[tuple[float, float]], supply: float, reserve: float, mechanism: str, multi: bool
) -> None:
    values, quantities = [b[0] for b in bids], [b[1] for b in bids]
    _same(values, quantities, supply=supply, reserve=reserve, mechanism=mechanism, multi_unit=multi)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_live_auctions_bids(mechanism: str) -> None:
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 26, SMALL_CLEARING):
        values = rng.uniform(99.9, 100.5, n).tolist()
        quantities = rng.uniform(100, 1000, n).tolist()
        _same(values, quantities, supply=1000.0, reserve=100.0, mechanism=mechanism)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_simulated_auctions_bids(mechanism: str) -> None:
    # A few hundred bids of which the supply fills a few (the list path reads only as
    # far as its prices do): the bits of the array path, which walks every bid.
    rng = np.random.default_rng(6)
    for n in (200, 2 * SMALL_CLEARING + 1):
        values = rng.uniform(0.0, 50.0, n).tolist()
        for quantities in ([1000.0] * n, rng.uniform(1.0, 600.0, n).tolist()):
            for supply in (1000.0, 2500.0, sum(quantities)):
                for reserve in (0.0, 25.0):
                    _same(values, quantities, supply=supply, reserve=reserve, mechanism=mechanism)


def test_long_lists_and_other_inputs_take_the_array_path() -> None:
    values = np.random.default_rng(5).uniform(0, 10, SMALL_CLEARING + 1).tolist()
    quantities = [1.0] * len(values)
    _same(values, quantities, supply=20.0, reserve=1.0, mechanism="vcg")
    # Nested lists are not flattened into one auction: see test_only_1d_bids_clear.
    with pytest.raises(InvalidBidParameters, match="clear_batch"):
        clear([[3.0, 1.0]], [[1.0, 1.0]], supply=1.0)
    # Integers, numpy scalars and tuples are numbers like any other.
    mixed = clear((3, np.float64(1.0)), [1, 1], supply=1.0, mechanism="vickrey")
    assert mixed.allocation.tolist() == [1.0, 0.0] and mixed.payment.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("values", "quantities", "field", "shape"),
    [
        # Several auctions: flattened, they used to clear as one auction of 4 bids.
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]], "values", (2, 2)),
        ([[3.0, 1.0]], [[1.0, 1.0]], "values", (1, 2)),
        (5.0, 1.0, "values", ()),
        ([[1.0, 2.0], [3.0, 4.0]], [1.0, 1.0, 1.0, 1.0], "values", (2, 2)),
        # One auction, but quantities of another shape (they used to be flattened).
        ([1.0, 2.0, 3.0, 4.0], [[1.0, 1.0], [1.0, 1.0]], "quantities", (2, 2)),
        ([1.0, 2.0], 1.0, "quantities", ()),
        ([1.0, 2.0], [1.0, 1.0, 1.0], "quantities", (3,)),
    ],
)
def test_only_1d_bids_clear(
    values: object, quantities: object, field: str, shape: tuple[int, ...]
) -> None:
    arrays = (np.asarray(values, dtype=np.float64), np.asarray(quantities, dtype=np.float64))
    for owners in (None, ["a"] * arrays[0].size):
        for args in ((values, quantities), arrays):
            with pytest.raises(InvalidBidParameters) as info:
                clear(*args, supply=1.0, owners=owners)  # type: ignore[arg-type]
            assert (info.value.field, info.value.value) == (field, shape)
            needle = "clear_batch" if field == "values" else "shape of values"
            assert needle in str(info.value)


@pytest.mark.parametrize(
    ("values", "quantities", "field", "bad"),
    [
        ([1.0, math.nan, -1.0], [1.0, 1.0, 1.0], "valuation[1]", math.nan),
        ([1.0, 2.0, -1.0], [1.0, math.inf, 1.0], "valuation[2]", -1.0),
        ([1.0, 2.0], [1.0, -0.5], "quantity[1]", -0.5),
        ([math.inf, 2.0], [1.0, 1.0], "valuation[0]", math.inf),
        ([1e308, 1e308], [1.0, -math.inf], "quantity[1]", -math.inf),
    ],
)
def test_the_same_errors(
    values: list[float], quantities: list[float], field: str, bad: float
) -> None:
    for args in ((values, quantities), (np.array(values), np.array(quantities))):
        with pytest.raises(InvalidBidParameters) as info:
            clear(*args, supply=1.0)
        assert info.value.field == field
        value = info.value.value
        assert isinstance(value, float)
        assert value == bad or (math.isnan(bad) and math.isnan(value))


def test_huge_finite_values_are_fine() -> None:
    # Their sum overflows; each is still a valid bid.
    _same([1e308, 1e308, 5.0], [1.0, 2.0, 3.0], supply=4.0, reserve=1.0, mechanism="uniform")


def test_bad_shapes_supply_and_names() -> None:
    with pytest.raises(InvalidBidParameters, match="quantities"):
        clear([1.0, 2.0], [1.0], supply=1.0)
    with pytest.raises(InvalidBidParameters, match="quantities"):
        clear_lists([1.0, 2.0], [1.0], supply=1.0)
    with pytest.raises(InvalidBidParameters, match="supply"):
        clear([1.0], [1.0], supply=-1.0)
    with pytest.raises(InvalidBidParameters, match="reserve"):
        clear_lists([1.0], [1.0], supply=1.0, reserve=math.nan)
    with pytest.raises(InvalidBidParameters, match="mechanism"):
        clear([1.0], [1.0], supply=1.0, mechanism="dutch")
    empty = clear([], [], supply=3.0)
    assert empty.allocation.shape == (0,) and empty.allocation.dtype == np.float64


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_quantity_absorbed_in_the_running_sum_does_not_fill_again(mechanism: str) -> None:
    # 0.5 + 2q == 0.5 in binary64: with "cum - q" the third bid saw the whole supply left.
    q = 2.5654788757191944e-42
    values, quantities = [0.0, 0.0, 0.0], [q, q, 0.5]
    _same(values, quantities, supply=q, reserve=0.0, mechanism=mechanism, multi_unit=True)
    allocation = clear_batch(np.array([values]), np.array([quantities]), supply=q).allocation
    assert allocation.tolist() == [[q, 0.0, 0.0]]


def test_presorted_clearing_refuses_what_clear_lists_refuses() -> None:
    with pytest.raises(InvalidBidParameters, match=r"valuation\[1\]"):
        clear_ranked([1.0, math.nan], [1.0, 1.0], [0, 1], supply=1.0)
    with pytest.raises(InvalidBidParameters, match=r"quantity\[0\]"):
        clear_ranked([1.0, 2.0], [-1.0, 1.0], [1, 0], supply=1.0)
    with pytest.raises(InvalidBidParameters, match="quantities"):
        clear_ranked([1.0, 2.0], [1.0], [1, 0], supply=1.0)
    with pytest.raises(InvalidBidParameters, match="supply"):
        clear_ranked([1.0], [1.0], [0], supply=math.inf)
