"""Verifiable phantoms: committed at open, revealed in the result, recomputable by anyone
from docs/phantoms.md alone (its vectors, its reference code, an independent re-reading);
the draw is the truncated normal; verify_phantoms fails when a phantom bid or the seed is
altered."""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import replace
from decimal import Decimal, getcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import (
    AuctionResult,
    InvalidBidParameters,
    finalize_auction,
    reveal_bid,
    submit_bid,
    verify_phantoms,
)
from phantom_auction.engine import (
    PhantomBid,
    PhantomModel,
    draw_phantom_arrays,
    draw_phantom_bids,
    phantom_uniforms,
)
from phantom_auction.engine.phantoms import ln

from .engine_support import SEED, T0, clear_bids, config, ms, offer, open_auction

CFG = config(max_phantom_bidders=20, bid_probability=0.5)
DOC = Path(__file__).resolve().parents[2] / "docs" / "phantoms.md"


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
    """The 'Phantom vector' sections of docs/phantoms.md."""
    text = DOC.read_text("utf-8")
    sections = re.split(r"\nPhantom vector [A-Z] ", text)[1:]
    return [
        json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))  # type: ignore[union-attr]
        for section in sections
    ]


def _model(fields: dict[str, Any]) -> PhantomModel:
    return PhantomModel(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def _doc_reference() -> dict[str, Any]:
    """The doc's stdlib reference implementation, executed."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    (code,) = [block for block in blocks if "def phantom_bids(" in block]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace


def _fields(model: PhantomModel) -> dict[str, Any]:
    return {f: getattr(model, f) for f in model.__slots__}


class _Uniforms:
    """The stream's uniforms u_0, u_1, ... (struct words; the whole stream hashed again,
    longer, whenever it runs out)."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.words = seed, ()
        self.cursor = 0

    def __getitem__(self, j: int) -> float:
        while j >= len(self.words):
            count = 64 + 2 * len(self.words)
            data = hashlib.shake_256(b"phantom-auction/phantoms/v2" + self.seed).digest(8 * count)
            self.words = struct.unpack(f">{count}Q", data)
        return (self.words[j] >> 11) / 2.0**53


def _independent_ln(x: float) -> float:
    """docs/phantoms.md's ln, written again from the text (frexp through struct bits)."""
    bits = struct.unpack(">Q", struct.pack(">d", x))[0]
    exponent = (bits >> 52) & 0x7FF
    assert 0 < exponent < 0x7FF  # normal numbers are all the sampler ever passes
    k = exponent - 1022
    m = struct.unpack(">d", struct.pack(">Q", (bits & ((1 << 52) - 1)) | (1022 << 52)))[0]
    if m < 0.7071067811865476:
        m, k = m + m, k - 1
    f = m - 1.0
    s = f / (2.0 + f)
    t = s * s
    q = 2.0 / 23.0
    for n in range(21, 1, -2):
        q = q * t + 2.0 / n
    hfsq = 0.5 * f * f
    lo, hi = 1.90821492927058770002e-10, 6.93147180369123816490e-01
    return k * hi - ((hfsq - (s * (hfsq + t * q) + k * lo)) - f)


def _independent_phantoms(
    seed: bytes, model: PhantomModel, baseline: float, amount: float
) -> list[list[float]]:
    """docs/phantoms.md's derivation, written again from the text."""
    n = model.max_phantom_bidders
    u = _Uniforms(seed)
    mean, sd, lo_bps, hi_bps = model.mean_bps, model.sd_bps, model.min_bps, model.max_bps
    a, b = (lo_bps - mean) / sd, (hi_bps - mean) / sd
    sign, low, high = 1.0, a, b
    if a < 0.0 < b:
        kind = "normal" if b - a >= 5.0 else "uniform0"
    else:
        if a < 0.0:
            sign, low, high = -1.0, -b, -a
        alpha = 0.5 * (low + math.sqrt(low * low + 4.0))
        if a == b or math.isinf(alpha):
            kind = "point"
        else:
            kind = "uniform-low" if alpha * (high - low) < 1.0 else "exponential"
    alpha = 0.5 * (low + math.sqrt(low * low + 4.0))

    def accepts(v: float, h: float) -> bool:
        if v - 1.0 > h * v:
            return False
        return v - 1.0 <= h or _independent_ln(v) <= h

    def candidate(u1: float, u2: float) -> float | None:
        v = 1.0 - u2
        if kind == "normal":
            x, y = 2.0 * u1 - 1.0, 2.0 * v - 1.0
            r = x * x + y * y
            if not 0.0 < r < 1.0:
                return None
            z = x * math.sqrt((-2.0 * _independent_ln(r)) / r)
            return z if low <= z <= high else None
        if kind == "exponential":
            z = low - _independent_ln(1.0 - u1) / alpha
            return z if z <= high and accepts(v, -0.5 * ((z - alpha) * (z - alpha))) else None
        c = low if kind == "uniform-low" else 0.0
        z = low + (high - low) * u1
        return z if accepts(v, 0.5 * ((c - z) * (c + z))) else None

    cursor = 3 * n
    out: list[list[float]] = []
    for s in range(n):
        if u[3 * s] >= model.bid_probability:
            continue
        bps = lo_bps
        if kind == "point":  # the bound nearest the mean
            bps = lo_bps if sign > 0 else hi_bps
        else:
            for _attempt in range(1000):
                z = candidate(u[cursor], u[cursor + 1])
                cursor += 2
                if z is not None:
                    bps = min(max(mean + sd * (sign * z), lo_bps), hi_bps)
                    break
        (v_lo, v_hi), (f_lo, f_hi) = model.volume_fraction, model.fee_fraction
        volume = amount * (v_lo + (v_hi - v_lo) * u[3 * s + 1])
        fee = volume * model.priority_fee_max_ratio * (f_lo + (f_hi - f_lo) * u[3 * s + 2])
        out.append([s, baseline * (1 + bps / 10_000), volume, fee])
    return out


def _drawn(model: PhantomModel, seed: bytes, baseline: float, amount: float) -> list[list[Any]]:
    return [
        [b.slot, b.improved_price, b.volume, b.priority_fee]
        for b in draw_phantom_bids(model, seed, baseline, amount)
    ]


def test_doc_has_phantom_vectors() -> None:
    # One per proposal: uniform (peak 0), normal, exponential (mirrored), uniform (peak low).
    kinds = {
        _doc_reference()["proposal"](
            (m["min_bps"] - m["mean_bps"]) / m["sd_bps"],
            (m["max_bps"] - m["mean_bps"]) / m["sd_bps"],
        )[:2]
        for m in (v["model"] for v in _phantom_vectors())
    }
    assert kinds == {("uniform", 1.0), ("normal", 1.0), ("exponential", -1.0)}
    assert len(_phantom_vectors()) == 4


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_phantoms_match_the_doc_vectors(index: int) -> None:
    vector = _phantom_vectors()[index]
    seed, model = bytes.fromhex(vector["seed"]), _model(vector["model"])
    args = (vector["baseline_price"], vector["amount"])
    assert _drawn(model, seed, *args) == vector["bids"]
    assert _independent_phantoms(seed, model, *args) == vector["bids"]
    assert _doc_reference()["phantom_bids"](seed, vector["model"], *args) == vector["bids"]
    bids = draw_phantom_bids(model, seed, *args)
    assert [b.bidder_id for b in bids] == [f"phantom-{s}" for s, *_ in vector["bids"]]


def test_doc_walkthrough_of_vector_a() -> None:
    # The doc's step-by-step numbers are the stream's.
    text = DOC.read_text("utf-8")
    u = phantom_uniforms(bytes(range(32)), 64)
    for j in (0, 1, 2, 60, 61, 62, 63):
        assert repr(u[j]) in text
    stream = hashlib.shake_256(b"phantom-auction/phantoms/v2" + bytes(range(32))).digest(24)
    assert " ".join(stream[i : i + 8].hex() for i in range(0, 24, 8)) in text


def test_ln_matches_the_doc_vectors_and_is_within_one_ulp() -> None:
    text = DOC.read_text("utf-8")
    block = re.search(r"`ln` vectors.*?```json\n(.*?)\n```", text, re.S)
    assert block is not None
    reference = _doc_reference()["ln"]
    for x, expected in json.loads(block.group(1)):
        assert ln(x) == expected == reference(x) == _independent_ln(x)
    getcontext().prec = 50
    rng = np.random.default_rng(7)
    points = np.concatenate(
        [rng.random(2000), 1.0 - rng.random(500) * 1e-6, 2.0 ** -rng.integers(1, 60, 500)]
    )
    for x in map(float, points):
        if x == 1.0 or x == 0.0:
            continue
        exact = Decimal(x).ln()
        assert abs(Decimal(ln(x)) - exact) <= Decimal(math.ulp(float(exact))), x
        assert ln(x) == _independent_ln(x)


def test_doc_reference_implementation_matches() -> None:
    # The doc's own stdlib reference code against the engine, on many seeds.
    reference = _doc_reference()["phantom_bids"]
    model = PhantomModel.from_config(CFG)
    for i in range(200):
        seed = hashlib.sha256(bytes([i, 2])).digest()
        assert _drawn(model, seed, 3000.0, 2.5) == reference(seed, _fields(model), 3000.0, 2.5)


def test_phantom_uniforms_are_the_streams_words() -> None:
    u = phantom_uniforms(bytes(range(32)), 3)
    assert u == [0.10834803867318221, 0.9154376594352914, 0.052235126440541735]
    assert all(0.0 <= x < 1.0 for x in phantom_uniforms(SEED, 400))


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.floats(0.0, 1.0),
    st.floats(-1000.0, 1000.0),
    st.sampled_from([1e-300, 1e-160, 0.001, 0.1, 1.0, 10.0, 60.0, 500.0]),
    st.floats(0.0, 80.0),
    st.sampled_from([0.0, 1e-9, 0.01, 0.5, 3.0, 40.0, 900.0]),
)
def test_seed_draw_matches_independent_implementations(
    seed: bytes, p: float, mean: float, sd: float, lo: float, width: float
) -> None:
    # Any model, including truncations far in a tail and points.
    model = PhantomModel(
        max_phantom_bidders=8, bid_probability=p, mean_bps=mean, sd_bps=sd, min_bps=lo,
        max_bps=lo + width,
    )  # fmt: skip
    drawn = _drawn(model, seed, 100.0, 1000.0)
    assert drawn == _independent_phantoms(seed, model, 100.0, 1000.0)
    assert drawn == _doc_reference()["phantom_bids"](seed, _fields(model), 100.0, 1000.0)
    improvements = [(price / 100.0 - 1) * 10_000 for _, price, *_ in drawn]
    assert all(lo - 1e-6 <= x <= lo + width + 1e-6 for x in improvements)


def test_a_long_draw_lengthens_the_stream() -> None:
    # 200 slots at ~26 % acceptance need far more words than the first hash call gives.
    model = PhantomModel(
        max_phantom_bidders=200, bid_probability=1.0, mean_bps=25.0, sd_bps=10.0,
        min_bps=24.0, max_bps=72.0,
    )  # fmt: skip
    drawn = _drawn(model, SEED, 100.0, 1000.0)
    assert len(drawn) == 200
    assert drawn == _independent_phantoms(SEED, model, 100.0, 1000.0)


def test_far_tail_truncation_draws_near_the_near_bound() -> None:
    # 400 sd above the mean, the truncated normal is within ~1/400 sd of its lower
    # bound (an inverse CDF would round Phi to 1 and say max_bps); mirrored below.
    bounds = {"bid_probability": 1.0, "sd_bps": 0.1, "min_bps": 40.0, "max_bps": 50.0}
    upper = draw_phantom_bids(PhantomModel(mean_bps=0.0, **bounds), SEED, 100.0, 1000.0)
    improvements = [(b.improved_price / 100.0 - 1) * 10_000 for b in upper]
    assert len(improvements) == 20 and all(40.0 <= x < 40.01 for x in improvements)
    assert len(set(improvements)) == 20  # drawn, not clipped
    lower = draw_phantom_bids(PhantomModel(mean_bps=900.0, **bounds), SEED, 100.0, 1000.0)
    improvements = [(b.improved_price / 100.0 - 1) * 10_000 for b in lower]
    assert all(49.99 < x <= 50.0 for x in improvements) and len(set(improvements)) == 20


def test_a_point_interval_gives_that_point() -> None:
    model = PhantomModel(bid_probability=1.0, min_bps=30.0, max_bps=30.0)
    assert {b.improved_price for b in draw_phantom_bids(model, SEED, 100.0, 1000.0)} == {
        100.0 * (1 + 30.0 / 10_000)
    }


@pytest.mark.parametrize(
    ("mean", "sd", "lo", "hi"),
    [
        (25.0, 10.0, 10.0, 50.0),  # uniform, peak 0 (the default)
        (5.0, 20.0, 0.0, 300.0),  # normal
        (0.0, 10.0, 12.0, 80.0),  # exponential tail
        (60.0, 10.0, 0.0, 30.0),  # exponential, mirrored
        (25.0, 10.0, 40.0, 42.0),  # uniform, peak at the low bound
        (25.0, 10.0, 20.0, 22.0),  # uniform, mirrored
        (0.0, 0.1, 40.0, 50.0),  # 400 sd out
    ],
)
def test_seed_draw_is_the_truncated_normal(mean: float, sd: float, lo: float, hi: float) -> None:
    # Kolmogorov-Smirnov distance of 20,000 draws from scipy's truncated normal; the 0.1 %
    # critical value is 1.95 / sqrt(n). The seeds are fixed: this is deterministic.
    from scipy import stats

    model = PhantomModel(bid_probability=1.0, mean_bps=mean, sd_bps=sd, min_bps=lo, max_bps=hi)
    draws = np.array(
        [
            (b.improved_price / 100.0 - 1) * 10_000
            for i in range(1000)
            for b in draw_phantom_bids(
                model, hashlib.sha256(i.to_bytes(4, "big")).digest(), 100.0, 1.0
            )
        ]
    )
    target = stats.truncnorm((lo - mean) / sd, (hi - mean) / sd, loc=mean, scale=sd)
    distance = stats.kstest(draws, target.cdf).statistic
    assert distance < 1.95 / math.sqrt(draws.size), distance
    assert lo <= draws.min() and draws.max() <= hi


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


def test_results_carry_phantom_bids_built_on_demand() -> None:
    import pickle

    from phantom_auction.engine import PhantomBids, draw_phantom_columns
    from phantom_auction.engine.codec import to_jsonable

    result = _result()
    expected = draw_phantom_bids(result.phantom_model, SEED, result.baseline_price, result.amount)
    lazy = result.phantom_bids
    assert isinstance(lazy, PhantomBids)
    assert lazy._bids is None  # not built by finalize
    assert len(lazy) == len(expected) > 0 and lazy._bids is None  # the length from the columns
    assert lazy.columns == draw_phantom_columns(
        result.phantom_model, SEED, result.baseline_price, result.amount
    )
    assert lazy == expected and expected == lazy and lazy == list(expected)
    assert tuple(lazy) == expected and lazy[0] is lazy[0] and lazy[1:] == expected[1:]
    assert hash(lazy) == hash(expected) and lazy != "not phantom bids"
    assert pickle.loads(pickle.dumps(result)) == result
    assert to_jsonable(result)["phantom_bids"] == to_jsonable(expected)
    assert verify_phantoms(result)


def test_phantom_columns_are_the_bids_in_columns() -> None:
    from phantom_auction.engine import draw_phantom_columns

    model = PhantomModel.from_config(CFG)
    for k in range(20):
        seed = hashlib.sha256(k.to_bytes(4, "big")).digest()
        bids = draw_phantom_bids(model, seed, 100.0, 1000.0)
        columns = draw_phantom_columns(model, seed, 100.0, 1000.0)
        assert columns == tuple(tuple(getattr(b, f) for b in bids) for f in PhantomBid.__slots__)
    with pytest.raises(InvalidBidParameters, match="phantom_seed"):
        draw_phantom_columns(model, b"short", 100.0, 1000.0)
