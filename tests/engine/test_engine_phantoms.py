"""Verifiable phantoms: committed at open, revealed in the result, recomputable by anyone;
verify_phantoms fails when a phantom bid or the seed is altered."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pytest
from engine_support import SEED, T0, clear_bids, config, ms, offer, open_auction
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import AuctionResult, finalize_auction, reveal_bid, submit_bid, verify_phantoms
from phantom_auction.engine import (
    PhantomBid,
    PhantomModel,
    draw_phantom_arrays,
    draw_phantom_bids,
    phantom_generator,
)

CFG = config(max_phantom_bidders=20, bid_probability=0.5)


def _result(seed: bytes = SEED) -> AuctionResult:
    auction = open_auction(CFG, seed=seed)
    return clear_bids(auction, [offer(auction, "alice", 100.45, 800.0)])


def test_result_reveals_the_committed_seed() -> None:
    auction = open_auction(CFG)
    assert auction.announcement.phantom_commitment == hashlib.sha256(SEED).digest()
    result = clear_bids(auction, [offer(auction, "alice", 100.45, 800.0)])
    assert result.phantom_seed == SEED
    assert result.phantom_commitment == auction.announcement.phantom_commitment
    assert len(result.phantom_bids) > 0
    assert verify_phantoms(result)
    assert verify_phantoms(result, model=PhantomModel.from_config(CFG))


def test_phantoms_follow_the_documented_derivation() -> None:
    # docs/commitment.md: default_rng(int.from_bytes(seed, "big")) into draw_phantom_arrays.
    model = PhantomModel.from_config(CFG)
    rng = np.random.default_rng(int.from_bytes(SEED, "big"))
    arrays = draw_phantom_arrays(model, rng, 1, 100.0, 1000.0)
    slots = np.flatnonzero(arrays.present[0]).tolist()
    expected = [
        (s, arrays.price[0, s], arrays.volume[0, s], arrays.priority_fee[0, s]) for s in slots
    ]
    bids = draw_phantom_bids(model, SEED, 100.0, 1000.0)
    assert [(b.slot, b.improved_price, b.volume, b.priority_fee) for b in bids] == expected
    assert [b.bidder_id for b in bids] == [f"phantom-{s}" for s in slots]
    assert (
        phantom_generator(SEED).random()
        == np.random.default_rng(int.from_bytes(SEED, "big")).random()
    )


def test_other_seed_gives_other_phantoms() -> None:
    model = PhantomModel.from_config(CFG)
    assert draw_phantom_bids(model, SEED, 100.0, 1000.0) != draw_phantom_bids(
        model, bytes(32), 100.0, 1000.0
    )


def test_altered_seed_fails() -> None:
    result = _result()
    assert not verify_phantoms(replace(result, phantom_seed=bytes(32)))
    assert not verify_phantoms(replace(result, phantom_seed=b"short"))


def test_altered_seed_with_matching_commitment_fails() -> None:
    # Swapping seed and commitment together still cannot explain the phantom bids.
    result = _result()
    other = bytes(31) + b"\x07"
    forged = replace(result, phantom_seed=other, phantom_commitment=hashlib.sha256(other).digest())
    assert not verify_phantoms(forged)


def test_altered_commitment_fails() -> None:
    result = _result()
    assert not verify_phantoms(replace(result, phantom_commitment=bytes(32)))


@pytest.mark.parametrize("field", ["improved_price", "volume", "priority_fee"])
def test_altered_phantom_bid_fails(field: str) -> None:
    result = _result()
    first = result.phantom_bids[0]
    changed = replace(first, **{field: getattr(first, field) * 1.0001})
    assert not verify_phantoms(replace(result, phantom_bids=(changed, *result.phantom_bids[1:])))


def test_added_or_removed_phantom_fails() -> None:
    result = _result()
    extra = PhantomBid(99, 100.49, 900.0, 0.0)
    assert not verify_phantoms(replace(result, phantom_bids=(*result.phantom_bids, extra)))
    assert not verify_phantoms(replace(result, phantom_bids=result.phantom_bids[1:]))


def test_altered_phantom_in_ranking_fails() -> None:
    result = _result()
    ranking = list(result.ranking)
    i = next(k for k, r in enumerate(ranking) if r.is_phantom)
    ranking[i] = replace(ranking[i], improved_price=ranking[i].improved_price + 0.01)
    assert not verify_phantoms(replace(result, ranking=tuple(ranking)))
    # Dropping a phantom from the published ranking is caught too.
    assert not verify_phantoms(replace(result, ranking=tuple(ranking[:i] + ranking[i + 1 :])))


def test_other_model_fails() -> None:
    result = _result()
    assert not verify_phantoms(result, model=PhantomModel.from_config(config()))


def test_verify_holds_for_baseline_results() -> None:
    auction = open_auction(config(min_participants=50))
    result = finalize_auction(auction, now=T0 + ms(100))
    assert result.outcome == "insufficient_participants"
    assert verify_phantoms(result)


@settings(max_examples=40)
@given(st.binary(min_size=32, max_size=32))
def test_phantoms_would_pass_as_real_bids(seed: bytes) -> None:
    # Indistinguishable: each phantom bid, sent as a real bid, passes every reveal check.
    phantoms = open_auction(config(bid_probability=1.0), seed=seed).phantom_bids
    probe = open_auction(config(max_phantom_bidders=0), auction_id="probe")
    bids = [
        offer(probe, f"p{i}", p.improved_price, p.volume, p.priority_fee)
        for i, p in enumerate(phantoms)
    ]
    for bid in bids:
        assert submit_bid(probe, bid.sealed(), now=T0)
    for bid in bids:
        assert reveal_bid(probe, bid, now=T0 + ms(85)), probe.last_event
    assert len(probe.reveals) == len(phantoms) == 20
