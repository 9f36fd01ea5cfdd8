"""VCG against independent oracles: brute force over integer allocations, and an LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from phantom_auction import VCGAuction, VCGBid, clear, run_vcg_auction

from .mechanism_oracles import Outcome, brute_force_vcg, lp_vcg


@st.composite
def integer_auctions(draw: st.DrawFn, max_bidders: int = 5, max_quantity: int = 3) -> dict:
    """Distinct positive integer values, reserve 0 or a half-integer: a unique optimum."""
    n = draw(st.integers(0, max_bidders))
    values = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n, unique=True))
    quantities = draw(st.lists(st.integers(1, max_quantity), min_size=n, max_size=n))
    supply = draw(st.integers(0, max_quantity * max_bidders))
    reserve = draw(st.sampled_from([0.0, *[k + 0.5 for k in range(0, 30, 3)]]))
    return {
        "values": [float(v) for v in values],
        "quantities": quantities,
        "supply": supply,
        "reserve": reserve,
    }


def _assert_same(got_x: list[float], got_p: list[float], expected: Outcome, welfare: float) -> None:
    np.testing.assert_allclose(got_x, expected.allocation, atol=1e-9)
    np.testing.assert_allclose(got_p, expected.payment, rtol=1e-9, atol=1e-9)
    assert welfare == pytest.approx(expected.welfare, rel=1e-12, abs=1e-9)


@given(integer_auctions())
def test_multi_unit_vcg_matches_brute_force(case: dict) -> None:
    expected = brute_force_vcg(case["values"], case["quantities"], case["supply"], case["reserve"])
    auction = VCGAuction(case["supply"], case["reserve"], enable_multi_unit=True)
    auction.bids.extend(
        VCGBid(f"b{i}", v, q)
        for i, (v, q) in enumerate(zip(case["values"], case["quantities"], strict=True))
    )
    result = run_vcg_auction(auction)
    got_x = [a.quantity for a in result.allocations]
    got_p = [a.payment for a in result.allocations]
    _assert_same(got_x, got_p, expected, result.social_welfare)


@given(integer_auctions(max_bidders=6), st.floats(0.0, 0.99))
def test_unit_demand_vcg_matches_brute_force(case: dict, fraction: float) -> None:
    # A fractional supply: unit demand sells floor(supply) units.
    supply = case["supply"] + fraction
    expected = brute_force_vcg(
        case["values"], case["quantities"], case["supply"], case["reserve"], unit_demand=True
    )
    auction = VCGAuction(supply, case["reserve"])
    auction.bids.extend(VCGBid(f"b{i}", v) for i, v in enumerate(case["values"]))
    result = run_vcg_auction(auction)
    got_x = [a.quantity for a in result.allocations]
    got_p = [a.payment for a in result.allocations]
    _assert_same(got_x, got_p, expected, result.social_welfare)


def test_brute_force_reserve_binds() -> None:
    # Two units, one bidder above the reserve wanting 2: it pays the reserve per unit,
    # the rival below the reserve displaces nothing.
    expected = brute_force_vcg([10.0, 3.0], [2, 2], 2, 5.0)
    assert expected.allocation == [2.0, 0.0]
    assert expected.payment == [pytest.approx(10.0), pytest.approx(0.0)]
    c = clear([10.0, 3.0], [2.0, 2.0], supply=2, reserve=5.0)
    np.testing.assert_allclose(c.payment, expected.payment)


@pytest.mark.parametrize("seed", range(40))
def test_divisible_vcg_matches_linear_program(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 26))
    values = rng.uniform(40.0, 70.0, n)
    quantities = rng.uniform(0.5, 20.0, n)
    supply = float(rng.uniform(0.0, 1.2) * quantities.sum())
    reserve = float(rng.choice([0.0, 50.0, 55.0]))
    expected = lp_vcg(values, quantities, supply, reserve)
    auction = VCGAuction(supply, reserve, enable_multi_unit=True)
    auction.bids.extend(
        VCGBid(f"b{i}", float(v), float(q))
        for i, (v, q) in enumerate(zip(values, quantities, strict=True))
    )
    result = run_vcg_auction(auction)
    got_x = np.array([a.quantity for a in result.allocations])
    got_p = np.array([a.payment for a in result.allocations])
    np.testing.assert_allclose(got_x, expected.allocation, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(got_p, expected.payment, rtol=1e-6, atol=1e-6)
    assert result.social_welfare == pytest.approx(expected.welfare, rel=1e-8)
    assert result.efficiency == 1.0
