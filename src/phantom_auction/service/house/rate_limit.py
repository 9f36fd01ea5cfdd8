"""Rate limiting: a token bucket per bidder (``resources.max_messages_per_second``)."""

from __future__ import annotations

__all__ = ["FLOOD_CLOSE_AFTER", "FloodGauge", "TokenBucket", "over_limit_detail"]

#: How many refusals for the rate limit, net of those drained at the rate itself, close
#: a WebSocket (1008 ``rate_limited``): a client far past the limit is cut off within a
#: second or so (at 10x the default 200/s, ~0.6 s), one a little over it never is.
FLOOD_CLOSE_AFTER = 1_000


class FloodGauge:
    """Refusals for the rate limit, drained at ``rate`` per second (a leaky bucket)."""

    __slots__ = ("level", "rate", "stamp")

    def __init__(self, rate: float, now: float = 0.0) -> None:
        self.rate = rate
        self.level = 0.0
        self.stamp = now

    def refused(self, now: float) -> bool:
        """Count one refusal at ``now`` (monotonic s); whether the level is past
        :data:`FLOOD_CLOSE_AFTER`."""
        self.level = max(0.0, self.level - (now - self.stamp) * self.rate) + 1.0
        self.stamp = now
        return self.level > FLOOD_CLOSE_AFTER


def over_limit_detail(rate: float) -> str:
    """The ``detail`` of a ``rate_limited`` refusal."""
    return f"more than resources.max_messages_per_second={rate:g} messages per second"


class TokenBucket:
    """``rate`` messages per second on average, bursts up to ``capacity`` messages.

    Times are seconds on a monotonic clock (the house's ``clock.monotonic()``).
    """

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float | None = None, *, now: float = 0.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate if capacity is None else capacity)
        self.tokens = self.capacity
        self.stamp = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one (``now`` in monotonic seconds)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
