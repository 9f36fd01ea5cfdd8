"""Fresh phantom seeds for live auctions, drawn a batch at a time (issue 12, engine cost).

An auction that is given no seed takes one from its model's :class:`SeedPool`: 32
bytes of ``os.urandom``, as before, drawn for :data:`BATCH` auctions in one call,
with the part of each draw that depends on the seed alone -- which slots hold a bid,
their improvements, and the fractions that scale their volumes and fees -- worked out
for the whole batch at once with numpy. The opening then only scales those by its
baseline and amount. Every number is the one :meth:`_SeedSampler.draw_columns` gives
for the same seed, bit for bit: the same words of the same SHAKE-256 stream, the same
IEEE-754 operations in the same order elementwise (numpy adds, multiplies, divides and
takes square roots correctly rounded, without fusing them), and :func:`ln_array` is
:func:`~.phantoms.ln` on arrays. A seed whose draw runs past the words hashed for it
(under 2 % with the default models) is drawn by the scalar sampler when it is taken.

Why: the draw is a rejection sampler over a few dozen numbers, and in Python one
auction's draw cost ~18 us (~21 us with a normal proposal: a logarithm per attempt),
the largest piece of an opening; per seed, the batch costs its SHAKE-256 call and a
share of a few dozen numpy operations.

Seeds stay secret as before: they sit in this process's memory from the batch until
their auction reveals them, and a forked child drops the pool it inherited (so two
processes never share a seed).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Final, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .phantoms import (
    _EXPONENTIAL,
    _NO_COLUMNS,
    _NORMAL,
    _POINT,
    _SLOT_WORDS,
    _SQRT_HALF,
    _TWO_POW_M53,
    _UNIFORM_CENTRE,
    _UNIFORM_TAIL,
    MAX_ATTEMPTS,
    PHANTOM_SEED_SIZE,
    PHANTOM_STREAM_DOMAIN,
    PhantomColumns,
    _ln_reduced,
    _SeedSampler,
)

__all__ = ["BATCH", "SeedPool", "ln_array", "pool_for"]

FloatArray = NDArray[np.floating[Any]]

#: Seeds drawn per batch: enough to spread numpy's per-call cost thin, few enough that
#: one refill (~0.2 ms) stays a small bump in the opening that pays for it.
BATCH: Final = 64

#: A pooled seed, its commitment (SHA-256) and the seed-only part of its draw: present
#: slots, improvements (bps), volume fractions and fee fractions (None when the scalar
#: sampler must draw it).
_Entry: TypeAlias = tuple[
    bytes,
    bytes,
    tuple[int, ...] | None,
    list[float] | None,
    list[float] | None,
    list[float] | None,
]

_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):  # no fork, nothing to guard against (Windows)
    os.register_at_fork(after_in_child=_after_fork_in_child)


def ln_array(x: FloatArray) -> FloatArray:
    """:func:`~.phantoms.ln` of every element of ``x`` (positive and finite), bit for
    bit: the same reduction and polynomial, one numpy operation per step."""
    m, k = np.frexp(x)
    small = m < _SQRT_HALF
    m = np.where(small, m * 2.0, m)
    kf = np.where(small, k - 1, k).astype(np.float64)
    out: FloatArray = _ln_reduced(m - 1.0, kf)
    return out


class SeedPool:
    """Fresh seeds of one phantom model, each with its draw's seed-only part; see the
    module docstring. ``take`` is safe across threads (a seed is popped once)."""

    __slots__ = ("_entries", "_generation", "_sampler")

    def __init__(self, sampler: _SeedSampler) -> None:
        self._sampler = sampler
        self._entries: list[_Entry] = []
        self._generation = _fork_generation

    def take(self, baseline_price: float, amount: float) -> tuple[bytes, bytes, PhantomColumns]:
        """A fresh seed, its commitment (:func:`~.phantoms.phantom_commitment`) and its
        draw for ``baseline_price`` and ``amount``: what ``draw_columns(seed,
        baseline_price, amount)`` gives, bit for bit."""
        if self._generation != _fork_generation:  # inherited across a fork: not ours
            self._entries = []
            self._generation = _fork_generation
        while True:
            try:
                entry = self._entries.pop()
                break
            except IndexError:  # empty (another thread may empty a new batch first)
                self._entries = self._batch(BATCH)
        seed, commitment, slots, improvements, volume_fractions, fee_fractions = entry
        if slots is None or improvements is None or volume_fractions is None:
            return seed, commitment, self._sampler.draw_columns(seed, baseline_price, amount)
        if not slots:
            return seed, commitment, _NO_COLUMNS
        assert fee_fractions is not None
        # draw_columns()'s own expressions on the seed-only parts.
        volumes = [amount * fraction for fraction in volume_fractions]
        fee_ratio = self._sampler._fee_ratio
        return (
            seed,
            commitment,
            (
                slots,
                tuple([baseline_price * (1.0 + bps / 10_000.0) for bps in improvements]),
                tuple(volumes),
                tuple([v * fee_ratio * f for v, f in zip(volumes, fee_fractions, strict=True)]),
            ),
        )

    def _batch(self, count: int) -> list[_Entry]:
        """``count`` fresh seeds with their seed-only parts (see the module docstring)."""
        sampler = self._sampler
        raw = os.urandom(PHANTOM_SEED_SIZE * count)
        seeds = [raw[i : i + PHANTOM_SEED_SIZE] for i in range(0, len(raw), PHANTOM_SEED_SIZE)]
        # phantom_commitment() of each, here in one loop rather than one call per opening.
        sha256 = hashlib.sha256
        commitments = [sha256(seed).digest() for seed in seeds]
        n = sampler._slots
        if not n:
            return [(seed, c, (), [], [], []) for seed, c in zip(seeds, commitments, strict=True)]
        fixed = _SLOT_WORDS * n
        # Pairs of words for the improvements' attempts, fewer than MAX_ATTEMPTS so that
        # no slot can give up inside them (a draw that needs more is drawn scalar).
        pairs = min(sampler._spare // 2, MAX_ATTEMPTS - 1)
        width = fixed + 2 * pairs
        shake, domain = hashlib.shake_256, PHANTOM_STREAM_DOMAIN
        stream = b"".join([shake(domain + seed).digest(8 * width) for seed in seeds])
        words = np.frombuffer(stream, dtype=">u8").reshape(count, width).astype(np.uint64)
        top = words >> np.uint64(11)  # u = top * 2**-53, exact
        presence = sampler._presence
        if presence >= 2**64:  # bid_probability 1: every slot
            present = np.ones((count, n), dtype=bool)
        else:
            present = words[:, 0:fixed:_SLOT_WORDS] < np.uint64(presence)
        counts = present.sum(axis=1)
        volume_u = top[:, 1:fixed:_SLOT_WORDS] * _TWO_POW_M53
        fee_u = top[:, 2:fixed:_SLOT_WORDS] * _TWO_POW_M53
        volume_fraction = sampler._vol_low + sampler._vol_span * volume_u
        fee_fraction = sampler._fee_low + sampler._fee_span * fee_u
        point = sampler._proposal == _POINT
        if point:  # no attempts: every improvement is min_bps
            bps_flat: list[float] = []
            taken = np.zeros(count, dtype=np.int64)
            complete = np.ones(count, dtype=bool)
        else:
            u1 = top[:, fixed : fixed + 2 * pairs : 2] * _TWO_POW_M53
            v = 1.0 - top[:, fixed + 1 : fixed + 2 * pairs : 2] * _TWO_POW_M53
            accepted, bps = _attempts(sampler, u1, v)
            # Slot j of a seed takes its j-th accepted attempt (attempts run in order).
            ranks = np.cumsum(accepted, axis=1)
            found = ranks[:, -1] if pairs else np.zeros(count, dtype=np.int64)
            complete = found >= counts
            taken = np.minimum(found, counts)
            bps_flat = bps[accepted & (ranks <= counts[:, None])].tolist()
        slots_flat = np.nonzero(present)[1].tolist()
        volume_flat = volume_fraction[present].tolist()
        fee_flat = fee_fraction[present].tolist()
        min_bps = sampler._min_bps
        entries: list[_Entry] = []
        at = used = 0
        for seed, commitment, c, t, ok in zip(
            seeds, commitments, counts.tolist(), taken.tolist(), complete.tolist(), strict=True
        ):
            if ok:
                entries.append(
                    (
                        seed,
                        commitment,
                        tuple(slots_flat[at : at + c]),
                        [min_bps] * c if point else bps_flat[used : used + c],
                        volume_flat[at : at + c],
                        fee_flat[at : at + c],
                    )
                )
            else:
                entries.append((seed, commitment, None, None, None, None))
            at += c
            used += t
        return entries


def pool_for(sampler: _SeedSampler) -> SeedPool:
    """The seed pool of ``sampler`` (one per phantom model: samplers are shared per
    model), kept on the sampler and made on first use."""
    pool: SeedPool | None = sampler.pool
    if pool is None:
        pool = sampler.pool = SeedPool(sampler)
    return pool


def _attempts(
    sampler: _SeedSampler, u1: FloatArray, v: FloatArray
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Every attempt of the truncated-normal sampler on the uniform pairs ``(u1, v)``
    (``v = 1 - u2``): whether it is accepted, and the improvement (bps, clamped) it gives
    if it is; ``_SeedSampler._improvements`` operation for operation."""
    proposal, sign, low, high = sampler._proposal, sampler._sign, sampler._low, sampler._high
    mean, sd = sampler._mean, sampler._sd
    with np.errstate(all="ignore"):  # rejected attempts may compute nonsense: masked
        if proposal == _NORMAL:  # polar method, first coordinate
            x = 2.0 * u1 - 1.0
            y = 2.0 * v - 1.0
            r = x * x + y * y
            inside = (r < 1.0) & (r != 0.0)
            r_safe = np.where(inside, r, 0.5)
            z = x * np.sqrt((-2.0 * ln_array(r_safe)) / r_safe)
            accepted = inside & (low <= z) & (z <= high)
            bps = mean + sd * (sign * z)
        else:
            if proposal == _EXPONENTIAL:  # tail: low + Exp(alpha)
                alpha = sampler._alpha
                z = low - ln_array(1.0 - u1) / alpha
                fits = z <= high
                d = z - alpha
                h = -0.5 * (d * d)
                bps = mean + sd * (sign * z)
            else:  # uniform on [low, high]: _uniform_improvements's expressions
                assert proposal in (_UNIFORM_CENTRE, _UNIFORM_TAIL)
                peak = low if proposal == _UNIFORM_TAIL else 0.0
                z = low + (high - low) * u1
                fits = np.ones(z.shape, dtype=bool)
                h = 0.5 * ((peak - z) * (peak + z))
                bps = mean + (sd * sign) * z
            w = v - 1.0
            accepted = fits & ((w <= h) | ((w <= h * v) & (ln_array(v) <= h)))
        min_bps, max_bps = sampler._min_bps, sampler._max_bps
        bps = np.where(
            np.isnan(bps) | (bps < min_bps), min_bps, np.where(bps > max_bps, max_bps, bps)
        )
    return accepted, bps
