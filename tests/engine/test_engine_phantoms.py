"""Verifiable phantoms: committed at open, revealed in the result, recomputable by anyone;
verify_phantoms fails when a phantom bid or the seed is altered."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist, StatisticsError
from typing import Any

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
    phantom_uniforms,
)

CFG = config(max_phantom_bidders=20, bid_probability=0.5)
DOC = Path(__file__).resolve().parents[2] / "docs" / "commitment.md"


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


def _phantom_vectors() -> list[dict[str, Any]]:
    """The 'Phantom vector' sections of docs/commitment.md."""
    text = DOC.read_text("utf-8")
    sections = re.split(r"\nPhantom vector [A-Z] ", text)[1:]
    return [
        json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))  # type: ignore[union-attr]
        for section in sections
    ]


def _model(fields: dict[str, Any]) -> PhantomModel:
    return PhantomModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _independent_phantoms(
    seed: bytes, model: PhantomModel, baseline: float, amount: float
) -> list[list[float]]:
    """docs/commitment.md's derivation, written again from the text: struct words,
    NormalDist for both Phi (cdf) and its inverse."""
    slots = model.max_phantom_bidders
    stream = hashlib.shake_256(b"phantom-auction/phantoms/v1" + seed).digest(32 * slots)
    words = struct.unpack(f">{4 * slots}Q", stream)
    u = [(w >> 11) / 2.0**53 for w in words]
    normal = NormalDist(model.mean_bps, model.sd_bps)
    low = 0.5 * math.erfc(-((model.min_bps - model.mean_bps) / model.sd_bps) / math.sqrt(2))
    high = 0.5 * math.erfc(-((model.max_bps - model.mean_bps) / model.sd_bps) / math.sqrt(2))
    out: list[list[float]] = []
    for s in range(slots):
        present, imp_u, vol_u, fee_u = u[4 * s : 4 * s + 4]
        if present >= model.bid_probability:
            continue
        q = low + (high - low) * imp_u
        bps = min(max(normal.inv_cdf(q), model.min_bps), model.max_bps)
        (v_lo, v_hi), (f_lo, f_hi) = model.volume_fraction, model.fee_fraction
        volume = amount * (v_lo + (v_hi - v_lo) * vol_u)
        fee = volume * model.priority_fee_max_ratio * (f_lo + (f_hi - f_lo) * fee_u)
        out.append([s, baseline * (1 + bps / 10_000), volume, fee])
    return out


def test_doc_has_phantom_vectors() -> None:
    assert len(_phantom_vectors()) >= 2


@pytest.mark.parametrize("index", [0, 1])
def test_phantoms_match_the_doc_vectors(index: int) -> None:
    vector = _phantom_vectors()[index]
    seed, model = bytes.fromhex(vector["seed"]), _model(vector["model"])
    bids = draw_phantom_bids(model, seed, vector["baseline_price"], vector["amount"])
    drawn = [[b.slot, b.improved_price, b.volume, b.priority_fee] for b in bids]
    assert drawn == vector["bids"]
    assert (
        _independent_phantoms(seed, model, vector["baseline_price"], vector["amount"])
        == (vector["bids"])
    )
    assert [b.bidder_id for b in bids] == [f"phantom-{s}" for s, *_ in vector["bids"]]


def test_doc_reference_implementation_matches() -> None:
    # Run the doc's own stdlib reference code against the engine, on many seeds.
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    (code,) = [block for block in blocks if "def phantom_bids(" in block]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    model = PhantomModel.from_config(CFG)
    fields = {f: getattr(model, f) for f in model.__slots__}
    for i in range(50):
        seed = hashlib.sha256(bytes([i])).digest()
        drawn = draw_phantom_bids(model, seed, 3000.0, 2.5)
        expected = namespace["phantom_bids"](seed, fields, 3000.0, 2.5)
        assert [[b.slot, b.improved_price, b.volume, b.priority_fee] for b in drawn] == expected


def test_phantom_uniforms_are_the_streams_words() -> None:
    vector = _phantom_vectors()[0]
    u = phantom_uniforms(bytes.fromhex(vector["seed"]), 4)
    assert u == [0.2109063970181595, 0.7200592659846494, 0.5408539242575735, 0.6407688240827277]
    assert all(0.0 <= x < 1.0 for x in phantom_uniforms(SEED, 400))


@settings(max_examples=60)
@given(
    st.binary(min_size=32, max_size=32),
    st.floats(0.0, 1.0),
    st.floats(-100.0, 100.0),
    st.floats(0.1, 60.0),
    st.floats(0.0, 80.0),
    st.floats(0.0, 80.0),
)
def test_seed_draw_matches_an_independent_implementation(
    seed: bytes, p: float, mean: float, sd: float, lo: float, width: float
) -> None:
    # Any model, including truncations far in a tail (q near 0 or 1).
    model = PhantomModel(
        max_phantom_bidders=8, bid_probability=p, mean_bps=mean, sd_bps=sd, min_bps=lo,
        max_bps=lo + width,
    )  # fmt: skip
    try:
        expected = _independent_phantoms(seed, model, 100.0, 1000.0)
    except StatisticsError:
        return  # q hit 0 or 1 exactly: the engine clips (checked below), NormalDist raises
    bids = draw_phantom_bids(model, seed, 100.0, 1000.0)
    assert [[b.slot, b.improved_price, b.volume, b.priority_fee] for b in bids] == expected


def test_degenerate_truncation_gives_the_documented_bounds() -> None:
    # Phi(a) = Phi(b) round to 1 (q >= 1: max_bps) or underflow to 0 (q <= 0: min_bps);
    # no inverse CDF of 0 or 1 is taken.
    bounds = {"bid_probability": 1.0, "sd_bps": 0.1, "min_bps": 40.0, "max_bps": 50.0}
    upper = draw_phantom_bids(PhantomModel(mean_bps=0.0, **bounds), SEED, 100.0, 1000.0)
    assert [b.improved_price for b in upper] == [100.0 * (1 + 50.0 / 10_000)] * 20
    lower = draw_phantom_bids(PhantomModel(mean_bps=900.0, **bounds), SEED, 100.0, 1000.0)
    assert [b.improved_price for b in lower] == [100.0 * (1 + 40.0 / 10_000)] * 20


def test_presence_follows_the_probability() -> None:
    model = PhantomModel(max_phantom_bidders=20, bid_probability=0.3)
    counts = [
        len(draw_phantom_bids(model, hashlib.sha256(bytes([i, 1])).digest(), 100.0, 1000.0))
        for i in range(200)
    ]
    mean = sum(counts) / len(counts)
    assert 5.4 < mean < 6.6  # 20 x 0.3 = 6, sd of the mean ~0.15
    never = PhantomModel(bid_probability=0.0)
    assert draw_phantom_bids(never, SEED, 100.0, 1000.0) == ()
    assert len(draw_phantom_bids(PhantomModel(bid_probability=1.0), SEED, 100.0, 1000.0)) == 20
    assert draw_phantom_bids(PhantomModel(max_phantom_bidders=0), SEED, 100.0, 1000.0) == ()


def test_seed_draw_has_the_models_distribution() -> None:
    # Same truncated normal as the simulator's numpy sampler (draw_phantom_arrays).
    model = PhantomModel(bid_probability=1.0)
    seeds = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(1500)]
    live = np.array(
        [
            (b.improved_price / 100.0 - 1) * 10_000
            for s in seeds
            for b in draw_phantom_bids(model, s, 100.0, 1000.0)
        ]
    )
    arrays = draw_phantom_arrays(model, np.random.default_rng(5), 1500, 100.0, 1000.0)
    sim = arrays.improvement_bps.ravel()
    assert live.min() >= 10.0 and live.max() <= 50.0
    assert abs(live.mean() - sim.mean()) < 0.3
    assert abs(live.std() - sim.std()) < 0.3
    # Kolmogorov-Smirnov distance between the two samples (30,000 each).
    grid = np.linspace(10, 50, 401)
    cdf_live = np.searchsorted(np.sort(live), grid, side="right") / live.size
    cdf_sim = np.searchsorted(np.sort(sim), grid, side="right") / sim.size
    assert np.abs(cdf_live - cdf_sim).max() < 0.02


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
