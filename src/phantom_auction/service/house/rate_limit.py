"""Rate limiting: a token bucket per bidder (``resources.max_messages_per_second``)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


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
