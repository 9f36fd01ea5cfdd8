"""The seed pool (engine/phantom_pool.py): a fresh auction's seed and draw come from a
batch worked out with numpy, and must be exactly the scalar sampler's draw of that seed
(every proposal, the fallback past the hashed words), ln_array exactly ln, seeds never
reused (not across a fork either), and auctions opened from the pool verifiable."""

from __future__ import annotations

import math
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantom_auction import finalize_auction, verify_phantoms
from phantom_auction.engine import PhantomModel, draw_phantom_bids
from phantom_auction.engine.phantom_pool import BATCH, SeedPool, ln_array
from phantom_auction.engine.phantoms import (
    _EXPONENTIAL,
    _NORMAL,
    _POINT,
    _UNIFORM_CENTRE,
    _UNIFORM_TAIL,
    _SeedSampler,
    ln,
    phantom_commitment,
)

from .engine_support import T0, clear_bids, config, ms, offer

MODELS = {
    "default (uniform centre)": (PhantomModel(), _UNIFORM_CENTRE),
    "narrow normal": (PhantomModel(mean_bps=27.5, sd_bps=3.16), _NORMAL),
    "far upper tail (exponential)": (PhantomModel(mean_bps=0.0, sd_bps=3.0), _EXPONENTIAL),
    "lower tail (exponential)": (PhantomModel(mean_bps=60.0, sd_bps=5.0), _EXPONENTIAL),
    "near tail (uniform)": (
        PhantomModel(mean_bps=5.0, sd_bps=10.0, min_bps=10.0, max_bps=12.0),
        _UNIFORM_TAIL,
    ),
    "point": (PhantomModel(min_bps=20.0, max_bps=20.0), _POINT),
    "every slot": (
        PhantomModel(bid_probability=1.0, mean_bps=27.5, sd_bps=3.16),
        _NORMAL,
    ),
    "no slot bids": (PhantomModel(bid_probability=0.0), _UNIFORM_CENTRE),
    "no slots": (PhantomModel(max_phantom_bidders=0), _UNIFORM_CENTRE),
}


def _bits(columns: tuple[tuple[float | int, ...], ...]) -> list[bytes | int]:
    return [struct.pack(">d", x) if isinstance(x, float) else x for col in columns for x in col]


@pytest.mark.parametrize("name", MODELS)
def test_pooled_draws_are_the_scalar_draws_bit_for_bit(name: str) -> None:
    model, proposal = MODELS[name]
    sampler = _SeedSampler(model)
    assert sampler._proposal == proposal
    pool = SeedPool(sampler)
    seeds = set()
    for i in range(3 * BATCH + 5):  # several batches, one started
        baseline, amount = 100.0 + 0.37 * i, 1000.0 / (1 + i % 7)
        seed, commitment, columns = pool.take(baseline, amount)
        seeds.add(seed)
        assert commitment == phantom_commitment(seed)
        expected = sampler.draw_columns(seed, baseline, amount)
        assert _bits(columns) == _bits(expected), (name, i)
    assert len(seeds) == 3 * BATCH + 5  # never the same seed twice


def test_draws_past_the_hashed_words_fall_back_to_the_scalar_sampler() -> None:
    # Hash only two attempts' words per seed: draws that need more are left to the
    # scalar sampler, and still come out the same (the stream is the same words). Four
    # slots: ~20% of seeds fall back, so a batch of 64 has both kinds but with chance
    # ~1e-6 (with 20 slots ~98% fall back, and a whole batch did in 23% of runs).
    sampler = _SeedSampler(PhantomModel(max_phantom_bidders=4, mean_bps=27.5, sd_bps=3.16))
    sampler._spare = 4
    pool = SeedPool(sampler)
    entries = pool._batch(BATCH)
    assert any(entry[2] is None for entry in entries)
    assert any(entry[2] is not None for entry in entries)  # no slot bids, or two did
    for _ in range(2 * BATCH):
        seed, commitment, columns = pool.take(101.0, 900.0)
        assert commitment == phantom_commitment(seed)
        assert _bits(columns) == _bits(sampler.draw_columns(seed, 101.0, 900.0))


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False, allow_infinity=False))
def test_ln_array_is_ln_bit_for_bit(x: float) -> None:
    assert struct.pack(">d", float(ln_array(np.array([x]))[0])) == struct.pack(">d", ln(x))


def test_ln_array_on_edges() -> None:
    xs = [
        5e-324,
        2.2250738585072014e-308,
        2.0**-53,
        0.5,
        math.sqrt(0.5),
        math.nextafter(math.sqrt(0.5), 0.0),
        math.nextafter(1.0, 0.0),
        1.0,
        2.0,
        math.e,
        1e300,
    ]
    got = ln_array(np.array(xs)).tolist()
    assert [struct.pack(">d", g) for g in got] == [struct.pack(">d", ln(x)) for x in xs]


def test_a_forked_child_does_not_reuse_the_parents_seeds() -> None:
    pool = SeedPool(_SeedSampler(PhantomModel()))
    pool.take(100.0, 1000.0)  # the parent holds a batch now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, pool.take(100.0, 1000.0)[0])
        finally:
            os._exit(0)
    os.close(write)
    child_seed = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    parent_seed = pool.take(100.0, 1000.0)[0]
    assert len(child_seed) == 32
    assert child_seed != parent_seed


def test_auctions_opened_from_the_pool_verify() -> None:
    from phantom_auction.engine import Auction, SettlementRequest

    cfg = config(max_phantom_bidders=20, bid_probability=0.5)
    request = SettlementRequest(token_in=1, token_out=2, amount=1000.0)
    seeds = set()
    for k in range(20):
        auction = Auction(
            request, 100.0, 1000.0, T0 + ms(100), config=cfg, auction_id=f"pool-{k}", now=T0
        )
        seeds.add(auction.phantom_seed)
        model = PhantomModel.from_config(cfg)
        assert auction.phantom_bids == draw_phantom_bids(model, auction.phantom_seed, 100.0, 1000.0)
        result = clear_bids(auction, [offer(auction, "alice", 100.45, 800.0)])
        assert verify_phantoms(result)
        assert finalize_auction(auction) is result
    assert len(seeds) == 20
