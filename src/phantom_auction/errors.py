"""Errors raised by phantom-auction.

Every error derives from :class:`PhantomAuctionError`, and every message names the
offending field and value so that a caller can fix its input without reading code.
"""

from __future__ import annotations

__all__ = [
    "AuctionTimeout",
    "ConfigError",
    "FieldError",
    "InsufficientParticipants",
    "InvalidBidParameters",
    "PhantomAuctionError",
]


class PhantomAuctionError(Exception):
    """Base class of every error this package raises on purpose."""


class FieldError(PhantomAuctionError):
    """An error about one named field and its value: ``field=value: reason``."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled with its own arguments (Exception's default passes the message alone,
        # which __init__ cannot take): raised in a worker process, it reaches the caller.
        return (type(self), (self.field, self.value, self.reason))


class InvalidBidParameters(FieldError, ValueError):
    """A bid or auction parameter violates its constraints (names field and value)."""


class InsufficientParticipants(PhantomAuctionError):
    """Fewer participants than ``min_participants`` where the caller asked for strictness."""

    def __init__(self, participants: int, required: int) -> None:
        self.participants = participants
        self.required = required
        super().__init__(f"num_participants={participants}: below min_participants={required}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.participants, self.required))


class AuctionTimeout(PhantomAuctionError, TimeoutError):
    """The deadline leaves less time than the shortest window the engine will run."""

    def __init__(self, available_ms: float, required_ms: float) -> None:
        self.available_ms = available_ms
        self.required_ms = required_ms
        super().__init__(
            f"deadline leaves {available_ms:.3f} ms: below the minimum window of "
            f"{required_ms:.3f} ms (auction_mechanics.min_window_ms)"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.available_ms, self.required_ms))


class ConfigError(PhantomAuctionError, ValueError):
    """A configuration key is unknown, mistyped or out of range (names key, value, source)."""

    def __init__(self, key: str, value: object, source: str, reason: str) -> None:
        self.key = key
        self.value = value
        self.source = source
        self.reason = reason
        super().__init__(f"{key}={value!r} (from {source}): {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.key, self.value, self.source, self.reason))
