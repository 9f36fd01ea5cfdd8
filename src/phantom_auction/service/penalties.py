"""No-reveal penalties: a smoothed no-reveal rate and a doubling block (UniswapX's fade breaker).

A bidder that commits and never reveals spoils the auction for everyone (its sealed bid
may have kept rivals out), so each finalized auction in which it committed updates an
exponentially weighted moving average of its no-reveal rate:

    rate <- (1 - alpha) * rate + alpha * x,   x = 1 if it did not reveal, else 0

with ``alpha = security.no_reveal_smoothing``. A no-reveal that leaves the rate above
``security.no_reveal_threshold`` blocks the bidder for
``min(block_base_s * 2**block_count, block_max_s)`` seconds and increments
``block_count``: each repeat doubles the block. A revealed bid lowers the rate but
never blocks. Pure functions on a frozen state: the service persists the result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..config import SecurityConfig

__all__ = ["PenaltyState", "is_blocked", "record_reveal_outcome"]

US_PER_S = 1_000_000


@dataclass(frozen=True, slots=True)
class PenaltyState:
    """A bidder's penalty record.

    ``no_reveal_rate`` is the EWMA in [0, 1]; ``blocked_until_us`` is the end of the
    current or last block (unix microseconds, 0 if never blocked); ``block_count`` the
    number of blocks so far; ``reason`` says why the last block was imposed.
    """

    no_reveal_rate: float = 0.0
    blocked_until_us: int = 0
    block_count: int = 0
    reason: str | None = None


def is_blocked(state: PenaltyState, now_us: int) -> bool:
    """True while ``now_us`` (unix microseconds) is before the end of the bidder's block."""
    return now_us < state.blocked_until_us


def record_reveal_outcome(
    state: PenaltyState, *, revealed: bool, now_us: int, security: SecurityConfig
) -> PenaltyState:
    """The state after one finalized auction in which the bidder committed.

    ``revealed`` is False when the engine lists the bidder among the auction's
    ``unrevealed``. Blocks start at ``now_us`` (unix microseconds).
    """
    alpha = security.no_reveal_smoothing
    rate = (1.0 - alpha) * state.no_reveal_rate + alpha * (0.0 if revealed else 1.0)
    if revealed or rate <= security.no_reveal_threshold:
        return replace(state, no_reveal_rate=rate)
    # 2**k overflows a float past k = 1023: long before that the cap applies anyway.
    doubling = 2.0 ** min(state.block_count, 1000)
    block_s = min(security.block_base_s * doubling, security.block_max_s)
    until = max(state.blocked_until_us, now_us + round(block_s * US_PER_S))
    reason = (
        f"no_reveal_rate={rate:.3f} above security.no_reveal_threshold="
        f"{security.no_reveal_threshold}: blocked {block_s:g} s (block {state.block_count + 1})"
    )
    return PenaltyState(
        no_reveal_rate=rate,
        blocked_until_us=until,
        block_count=state.block_count + 1,
        reason=reason,
    )
