"""Hand-computed outcomes of each rule, the object API and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from phantom_auction import (
    MECHANISMS,
    InvalidBidParameters,
    VCGAllocation,
    VCGAuction,
    VCGBid,
    VCGResult,
    canonical_mechanism,
    clear,
    individual_rationality_check,
    run_vcg_auction,
)

# Supply 10, reserve 2. Value order: A (4 units), B (5), C (3, gets the last 1); D is
# below the reserve. Tail after the 10 allocated units: C's other 2 units at 6, then the
# seller at 2. VCG: A displaces 2*6 + 2*2 = 16, B 2*6 + 3*2 = 18, C (marginal) first
# displaces its own rest, then 1 unit of the seller: 2.
VALUES = [10.0, 8.0, 6.0, 1.0]
QUANTITIES = [4.0, 5.0, 3.0, 5.0]


@pytest.mark.parametrize(
    ("mechanism", "allocation", "payment"),
    [
        ("vcg", [4, 5, 1, 0], [16, 18, 2, 0]),
        ("discriminatory", [4, 5, 1, 0], [40, 40, 6, 0]),
        # C's 2 unfilled units are the highest rejected ones: every unit at 6.
        ("uniform", [4, 5, 1, 0], [24, 30, 6, 0]),
        # One winner takes min(q, S) at the runner-up's value per unit.
        ("vickrey", [4, 0, 0, 0], [32, 0, 0, 0]),
    ],
)
def test_multi_unit_hand_computed(mechanism: str, allocation: list, payment: list) -> None:
    c = clear(VALUES, QUANTITIES, supply=10.0, reserve=2.0, mechanism=mechanism)
    np.testing.assert_allclose(c.allocation, allocation)
    np.testing.assert_allclose(c.payment, payment, atol=1e-12)
    assert c.mechanism == mechanism


def test_uniform_price_is_the_highest_rejected_unit() -> None:
    # Supply 6: A 4, B 2 of 5; B's 3 unfilled units (at 8) are the highest rejected.
    c = clear(VALUES, QUANTITIES, supply=6.0, reserve=2.0, mechanism="uniform")
    np.testing.assert_allclose(c.allocation, [4, 2, 0, 0])
    np.testing.assert_allclose(c.payment, [32, 16, 0, 0])


@pytest.mark.parametrize("as_lists", [True, False])
def test_uniform_textbook_cases(as_lists: bool) -> None:
    def arrays(*xs: list[float]) -> list:
        return list(xs) if as_lists else [np.array(x) for x in xs]

    # (10 @ 50), (10 @ 40), supply 15: the marginal bid's 5 unfilled units price at 40.
    v, q = arrays([50.0, 40.0], [10.0, 10.0])
    c = clear(v, q, supply=15.0, reserve=0.0, mechanism="uniform")
    np.testing.assert_array_equal(c.allocation, [10.0, 5.0])
    np.testing.assert_array_equal(c.payment, [400.0, 200.0])  # 40 a unit, 600 in all
    vcg = clear(v, q, supply=15.0, reserve=0.0, mechanism="vcg")
    assert vcg.payment.sum() == 200.0  # uniform revenue is no longer below VCG's
    # (4 @ 5), (2 @ 9), supply 5: the 9s fill, 3 of the 5s; a rejected 5 sets the price.
    v, q = arrays([5.0, 9.0], [4.0, 2.0])
    c = clear(v, q, supply=5.0, reserve=0.0, mechanism="uniform")
    np.testing.assert_array_equal(c.allocation, [3.0, 2.0])
    np.testing.assert_array_equal(c.payment, [15.0, 10.0])
    # Demand at or below supply: no rejected unit, the reserve.
    c = clear(v, q, supply=6.0, reserve=1.0, mechanism="uniform")
    np.testing.assert_array_equal(c.payment, [4.0, 2.0])


def test_second_price_reserve_binds() -> None:
    # The runner-up is below the reserve: the winner pays the reserve per unit.
    c = clear([10.0, 8.0], [3.0, 5.0], supply=4.0, reserve=9.0, mechanism="second_price")
    np.testing.assert_allclose(c.allocation, [3, 0])
    np.testing.assert_allclose(c.payment, [27, 0])


@pytest.mark.parametrize(
    ("mechanism", "payment"),
    [
        ("vcg", [6, 6, 0, 0]),
        ("vickrey", [6, 6, 0, 0]),  # unit demand: the same rule, reported as vcg
        ("uniform", [6, 6, 0, 0]),
        ("discriminatory", [9, 7, 0, 0]),
    ],
)
def test_unit_demand_hand_computed(mechanism: str, payment: list) -> None:
    # floor(2.7) = 2 units; quantities are ignored beyond "wants a unit".
    c = clear(
        [9.0, 7.0, 6.0, 4.0],
        [1.0, 3.0, 0.5, 1.0],
        supply=2.7,
        reserve=5.0,
        mechanism=mechanism,
        multi_unit=False,
    )
    np.testing.assert_allclose(c.allocation, [1, 1, 0, 0])
    np.testing.assert_allclose(c.payment, payment)
    assert c.mechanism == ("vcg" if mechanism == "vickrey" else mechanism)


def test_unit_demand_reserve_binds() -> None:
    c = clear([9.0, 4.0], [1.0, 1.0], supply=2, reserve=5.0, multi_unit=False)
    np.testing.assert_allclose(c.allocation, [1, 0])
    np.testing.assert_allclose(c.payment, [5, 0])


def test_ties_go_to_the_earlier_bid() -> None:
    auction = VCGAuction(2.0, 1.0, bids=[VCGBid(f"b{i}", 5.0) for i in range(3)])
    result = run_vcg_auction(auction)
    assert [a.quantity for a in result.allocations] == [1.0, 1.0, 0.0]
    assert [a.payment for a in result.allocations] == [5.0, 5.0, 0.0]
    auction.bids.reverse()
    result = run_vcg_auction(auction)
    assert [(a.bidder_id, a.quantity) for a in result.allocations] == [
        ("b2", 1.0),
        ("b1", 1.0),
        ("b0", 0.0),
    ]


def test_bid_exactly_at_reserve_is_eligible() -> None:
    c = clear([5.0, 3.0], [2.0, 2.0], supply=4.0, reserve=5.0)
    np.testing.assert_allclose(c.allocation, [2, 0])
    np.testing.assert_allclose(c.payment, [10, 0])


def test_zero_supply_and_no_bids() -> None:
    assert clear([5.0], [1.0], supply=0.0).allocation.tolist() == [0.0]
    empty = clear([], [], supply=3.0)
    assert empty.allocation.size == 0 and empty.payment.size == 0


def test_result_fields_and_definitions() -> None:
    auction = VCGAuction(10.0, 2.0, enable_multi_unit=True)
    for i, (v, q) in enumerate(zip(VALUES, QUANTITIES, strict=True)):
        auction.bids.append(VCGBid(f"b{i}", v, q, is_phantom=i >= 2))
    result = run_vcg_auction(auction)
    assert isinstance(result, VCGResult)
    assert result.mechanism == "vcg"
    assert result.allocations == (
        VCGAllocation("b0", 4.0, 16.0, 24.0),
        VCGAllocation("b1", 5.0, 18.0, 22.0),
        VCGAllocation("b2", 1.0, 2.0, 4.0),
        VCGAllocation("b3", 0.0, 0.0, 0.0),
    )
    assert result.social_welfare == 86.0
    assert result.total_revenue == 36.0
    assert result.efficiency == 1.0
    assert result.phantom_participation_rate == 0.5
    assert individual_rationality_check(result)


def test_second_price_efficiency_below_one() -> None:
    # One winner gets 3 of 4 units: welfare 30 of a first-best 3*10 + 1*8 = 38.
    auction = VCGAuction(4.0, enable_multi_unit=True)
    auction.bids += [VCGBid("a", 10.0, 3.0), VCGBid("b", 8.0, 5.0)]
    result = run_vcg_auction(auction, "vickrey")
    assert result.social_welfare == 30.0
    assert result.efficiency == pytest.approx(30.0 / 38.0)
    assert run_vcg_auction(auction, "pay_as_bid").efficiency == 1.0


def test_efficiency_is_one_when_first_best_is_zero() -> None:
    auction = VCGAuction(4.0, 5.0, enable_multi_unit=True, bids=[VCGBid("a", 1.0, 2.0)])
    assert run_vcg_auction(auction, "vickrey").efficiency == 1.0
    empty = run_vcg_auction(VCGAuction(4.0))
    assert empty.allocations == ()
    assert (empty.efficiency, empty.phantom_participation_rate) == (1.0, 0.0)


def test_every_mechanism_and_alias_runs_on_the_objects() -> None:
    auction = VCGAuction(3.0, 1.0, bids=[VCGBid("a", 4.0), VCGBid("b", 2.0)])
    for name in (*MECHANISMS, "second_price", "second_score", "first_price", "Pay-As-Bid"):
        assert individual_rationality_check(run_vcg_auction(auction, name))
    assert canonical_mechanism("Pay-As-Bid") == "discriminatory"


def test_bid_is_frozen_and_slotted_with_its_own_metadata() -> None:
    meta = {"source": "test"}
    bid = VCGBid("a", 1.0, metadata=meta)
    assert (bid.quantity, bid.is_phantom, bid.metadata) == (1.0, False, meta)
    assert bid.metadata is not meta
    assert VCGBid("b", 2.0).metadata == {}
    assert not hasattr(bid, "__dict__")
    with pytest.raises(AttributeError):
        bid.valuation = 2.0  # type: ignore[misc]


def test_individual_rationality_check_flags_negative_utility() -> None:
    ok = VCGResult((VCGAllocation("a", 1.0, 5.0, -1e-12),), 5.0, 5.0, 1.0, 0.0)
    bad = VCGResult((VCGAllocation("a", 1.0, 5.0, -0.01),), 4.99, 5.0, 1.0, 0.0)
    assert individual_rationality_check(ok)
    assert not individual_rationality_check(bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0])
@pytest.mark.parametrize("field", ["valuation", "quantity"])
def test_bad_bid_values_name_field_and_value(field: str, bad: float) -> None:
    kwargs = {"valuation": 1.0, "quantity": 1.0, field: bad}
    with pytest.raises(InvalidBidParameters) as err:
        VCGBid("a", **kwargs)
    assert err.value.field == field
    assert str(bad) in str(err.value)
    values, quantities = [1.0, 1.0], [1.0, 1.0]
    (values if field == "valuation" else quantities)[1] = bad
    with pytest.raises(InvalidBidParameters, match=rf"{field}\[1\]=.*{bad}"):
        clear(values, quantities, supply=1.0)


@pytest.mark.parametrize("field", ["supply", "reserve_price"])
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_supply_or_reserve(field: str, bad: float) -> None:
    kwargs = {"supply": 1.0, "reserve_price": 0.0, field: bad}
    with pytest.raises(InvalidBidParameters) as err:
        VCGAuction(**kwargs)
    assert (err.value.field, str(err.value.value)) == (field, str(bad))
    reserve = kwargs["reserve_price"]
    with pytest.raises(InvalidBidParameters, match=field):
        clear([1.0], [1.0], supply=kwargs["supply"], reserve=reserve)


def test_a_repeated_bidder_id_is_a_step_and_steps_may_not_increase() -> None:
    # Repeated ids used to be refused; they are now steps of one demand curve, which
    # must not increase in value (the error names the bidder).
    auction = VCGAuction(1.0, bids=[VCGBid("a", 1.0), VCGBid("b", 2.0), VCGBid("a", 3.0)])
    with pytest.raises(InvalidBidParameters, match="steps must not increase") as err:
        run_vcg_auction(auction)
    assert (err.value.field, err.value.value) == ("owners[2]", "a")
    auction.bids[2] = VCGBid("a", 0.5)
    result = run_vcg_auction(auction)
    assert [a.bidder_id for a in result.allocations] == ["a", "b", "a"]


def test_unknown_mechanism_and_shape_mismatch() -> None:
    with pytest.raises(InvalidBidParameters, match="mechanism='dutch'"):
        clear([1.0], [1.0], supply=1.0, mechanism="dutch")
    with pytest.raises(InvalidBidParameters, match="quantities"):
        clear([1.0, 2.0], [1.0], supply=1.0)
