"""Step demand: several (value per unit, quantity) steps per bidder, non-increasing.

VCG is checked against a brute-force oracle written from the definition (every integer
allocation of units to bidders, each bidder's value the sum of its best units; a
bidder pays the welfare the others lose to it), and everything against hand-computed
cases and hypothesis properties, through ``clear``, ``clear_batch`` and the objects.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import (
    InvalidBidParameters,
    VCGAuction,
    VCGBid,
    clear,
    clear_batch,
    run_vcg_auction,
    verify_truthfulness,
)


def _owner_value(steps: list[tuple[int, int]], units: int) -> float:
    """A bidder's value for ``units`` units: its best units, step by step."""
    total, left = 0.0, units
    for value, quantity in steps:
        take = min(left, quantity)
        total += value * take
        left -= take
    return total


def brute_force_steps(
    ladders: list[list[tuple[int, int]]], supply: int, reserve: float
) -> tuple[list[int], list[float]]:
    """Units and VCG payment of each bidder, by enumeration."""

    def best(skip: int | None) -> tuple[float, tuple[int, ...]]:
        caps = [0 if i == skip else sum(q for _, q in lad) for i, lad in enumerate(ladders)]
        top, arg = -math.inf, ()
        for units in itertools.product(*(range(c + 1) for c in caps)):
            if sum(units) > supply:
                continue
            welfare = sum(_owner_value(lad, u) for lad, u in zip(ladders, units, strict=True))
            welfare += reserve * (supply - sum(units))
            if welfare > top + 1e-12:
                top, arg = welfare, units
        return top, arg

    total, units = best(None)
    payments = []
    for i, ladder in enumerate(ladders):
        without, _ = best(i)
        payments.append(without - (total - _owner_value(ladder, units[i])))
    return list(units), payments


def _flatten(ladders: list[list[tuple[int, int]]]) -> tuple[list[float], list[float], list[int]]:
    values, quantities, owners = [], [], []
    for owner, ladder in enumerate(ladders):
        for value, quantity in ladder:
            values.append(float(value))
            quantities.append(float(quantity))
            owners.append(owner)
    return values, quantities, owners


@st.composite
def ladders(draw: st.DrawFn) -> tuple[list[list[tuple[int, int]]], int, float]:
    """1-3 bidders with 1-3 steps; values distinct across bidders and from the reserve
    (a unique optimum), submission order interleaved."""
    n = draw(st.integers(1, 3))
    pool = draw(st.permutations(list(range(1, 13))))
    ladders_, used = [], 0
    for _ in range(n):
        k = draw(st.integers(1, 3))
        values = sorted(pool[used : used + k], reverse=True)
        used += k
        ladders_.append([(2 * v, draw(st.integers(1, 3))) for v in values])
    supply = draw(st.integers(1, 8))
    reserve = draw(st.sampled_from([0.0, 3.0, 7.0]))  # odd: never equal to a value
    return ladders_, supply, reserve


@settings(max_examples=150, deadline=None)
@given(ladders(), st.randoms(use_true_random=False))
def test_vcg_with_steps_matches_brute_force(case, rnd) -> None:  # type: ignore[no-untyped-def]
    ladders_, supply, reserve = case
    values, quantities, owners = _flatten(ladders_)
    # Interleave the bidders' entries; each keeps its own steps in order.
    order = sorted(range(len(values)), key=lambda i: (rnd.random(), 0))
    order = sorted(order, key=lambda i: (owners[i], 0)) if rnd.random() < 0.3 else order
    order = _keep_step_order(order, owners)
    v = [values[i] for i in order]
    q = [quantities[i] for i in order]
    o = [owners[i] for i in order]
    units, payments = brute_force_steps(ladders_, supply, reserve)
    for as_arrays in (False, True):
        args = (np.array(v), np.array(q)) if as_arrays else (v, q)
        c = clear(*args, supply=supply, reserve=reserve, mechanism="vcg", owners=o)
        by_owner = c.payment_by_owner()
        for owner in range(len(ladders_)):
            got = float(c.allocation[np.array(o) == owner].sum())
            assert got == units[owner]
            assert by_owner.get(owner, 0.0) == pytest.approx(payments[owner], abs=1e-9)
    # The batch: the same row, padded with absent entries, next to an unrelated row.
    width = len(v) + 2
    vals = np.full((2, width), np.nan)
    qty = np.zeros((2, width))
    who = np.zeros((2, width), dtype=np.int64)
    mask = np.zeros((2, width), dtype=bool)
    vals[0, : len(v)], qty[0, : len(v)], who[0, : len(v)], mask[0, : len(v)] = v, q, o, True
    vals[1, :2], qty[1, :2], who[1, :2], mask[1, :2] = [50.0, 40.0], [1.0, 1.0], [0, 1], True
    b = clear_batch(vals, qty, mask, supply=[supply, 1.0], reserve=reserve, owners=who)
    totals = b.payment_by_owner()
    for owner in range(len(ladders_)):
        assert totals[0, owner] == pytest.approx(payments[owner], abs=1e-9)
    assert b.allocation[1].tolist()[:2] == [1.0, 0.0]


def _keep_step_order(order: list[int], owners: list[int]) -> list[int]:
    """``order`` with each owner's entries put back in their original (step) order."""
    slots: dict[int, list[int]] = {}
    for i in order:
        slots.setdefault(owners[i], []).append(i)
    for entries in slots.values():
        entries.sort()
    taken = {owner: iter(entries) for owner, entries in slots.items()}
    return [next(taken[owners[i]]) for i in order]


@settings(max_examples=100, deadline=None)
@given(ladders(), st.sampled_from(["vcg", "uniform", "discriminatory"]))
def test_properties_with_steps(case, mechanism: str) -> None:  # type: ignore[no-untyped-def]
    ladders_, supply, reserve = case
    v, q, o = _flatten(ladders_)
    c = clear(v, q, supply=supply, reserve=reserve, mechanism=mechanism, owners=o)
    x, p = c.allocation, c.payment
    assert x.sum() <= supply + 1e-12
    # Payment never above the bid, entry by entry (so individually rational per bidder).
    assert np.all(p <= np.array(v) * x + 1e-9)
    assert np.all(p >= reserve * x - 1e-9)
    if mechanism == "vcg":
        pay_as_bid = clear(v, q, supply=supply, reserve=reserve, mechanism="discriminatory")
        assert p.sum() <= pay_as_bid.payment.sum() + 1e-9
        np.testing.assert_array_equal(x, pay_as_bid.allocation)  # the same allocation


def test_hand_computed_steps() -> None:
    # a: 10 @ 50 then 5 @ 30; b: 10 @ 40; supply 15. a takes 10, b 5.
    # Without a, b takes its 10: a displaces b's other 5 units (40) and 5 unsold (0): 200.
    # Without b, a's second step takes 5 at 30: b pays 150.
    c = clear([50.0, 40.0, 30.0], [10.0, 10.0, 5.0], supply=15.0, owners=["a", "b", "a"])
    np.testing.assert_array_equal(c.allocation, [10.0, 5.0, 0.0])
    assert c.payment_by_owner() == {"a": 200.0, "b": 150.0}
    # As separate bidders a's first step would also pay for displacing its own second.
    alone = clear([50.0, 40.0, 30.0], [10.0, 10.0, 5.0], supply=15.0)
    assert alone.payment.tolist() == [350.0, 150.0, 0.0]
    # Uniform and pay-as-bid are per unit: steps change nothing.
    for mechanism in ("uniform", "discriminatory"):
        stepped = clear([50.0, 40.0, 30.0], [10.0, 10.0, 5.0], supply=15.0, mechanism=mechanism,
                        owners=["a", "b", "a"])  # fmt: skip
        plain = clear([50.0, 40.0, 30.0], [10.0, 10.0, 5.0], supply=15.0, mechanism=mechanism)
        np.testing.assert_array_equal(stepped.payment, plain.payment)


def test_the_object_api_takes_repeated_ids_as_steps() -> None:
    auction = VCGAuction(
        15.0,
        enable_multi_unit=True,
        bids=[VCGBid("a", 50.0, 10.0), VCGBid("b", 40.0, 10.0), VCGBid("a", 30.0, 5.0)],
    )
    result = run_vcg_auction(auction)
    assert result.payment_by_bidder() == {"a": 200.0, "b": 150.0}
    assert verify_truthfulness(auction, "a", [50.0, 30.0])
    assert verify_truthfulness(auction, "b", 40.0)
    # Pay-as-bid rewards shading the top step down to just above b's 40.
    assert not verify_truthfulness(auction, "a", [50.0, 30.0], mechanism="discriminatory")
    with pytest.raises(InvalidBidParameters, match="one per step"):
        verify_truthfulness(auction, "a", [30.0, 50.0])


@settings(max_examples=40, deadline=None)
@given(ladders())
def test_vcg_is_truthful_for_stepped_bidders(case) -> None:  # type: ignore[no-untyped-def]
    ladders_, supply, reserve = case
    bids = [VCGBid(f"o{o}", v, q) for v, q, o in zip(*_flatten(ladders_), strict=True)]
    auction = VCGAuction(float(supply), reserve, enable_multi_unit=True, bids=bids)
    for owner, ladder in enumerate(ladders_):
        assert verify_truthfulness(auction, f"o{owner}", [float(v) for v, _ in ladder])


def test_increasing_steps_name_the_owner() -> None:
    with pytest.raises(InvalidBidParameters, match="steps must not increase") as err:
        clear([10.0, 20.0], [1.0, 1.0], supply=2.0, owners=["mm", "mm"])
    assert (err.value.field, err.value.value) == ("owners[1]", "mm")
    with pytest.raises(InvalidBidParameters, match="steps must not increase") as err:
        clear_batch(np.array([[10.0, 20.0]]), 1.0, supply=2.0, owners=[7, 7])
    assert err.value.value == 7
    # An absent (masked) step does not count.
    b = clear_batch(
        np.array([[10.0, 20.0]]), 1.0, np.array([[False, True]]), supply=2.0, owners=[7, 7]
    )
    assert b.payment_by_owner().tolist() == [[0.0] * 7 + [0.0]]
    with pytest.raises(InvalidBidParameters, match="one winner"):
        clear([20.0, 10.0], [1.0, 1.0], supply=2.0, mechanism="vickrey", owners=["a", "a"])
    with pytest.raises(InvalidBidParameters, match="one owner per bid"):
        clear([20.0, 10.0], [1.0, 1.0], supply=2.0, owners=["a"])
    with pytest.raises(InvalidBidParameters, match="non-negative integers"):
        clear_batch(np.array([[10.0]]), 1.0, supply=1.0, owners=[-1])
