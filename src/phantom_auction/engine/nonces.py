"""Replay protection: each bidder's nonces strictly increase across every auction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from ..errors import InvalidBidParameters

__all__ = ["NonceRegistry"]


class NonceRegistry:
    """The last accepted nonce of each bidder, shared by every auction that uses it.

    A commit is fresh only if its nonce is strictly above the bidder's last accepted
    one, so a replayed sealed bid is refused in its own auction and in every later one.
    Not thread-safe: share one registry per event loop (or lock around it).
    Persist it with ``dict(registry.items())`` and restore with ``NonceRegistry(saved)``.
    """

    __slots__ = ("_last",)

    def __init__(self, last: Mapping[str, int] | None = None) -> None:
        self._last: dict[str, int] = {}
        for bidder_id, nonce in (last or {}).items():
            self.restore(bidder_id, nonce)

    def last(self, bidder_id: str) -> int | None:
        """The bidder's last accepted nonce, or None if it never committed."""
        return self._last.get(bidder_id)

    def is_fresh(self, bidder_id: str, nonce: int) -> bool:
        """True if ``nonce`` is above every nonce accepted from ``bidder_id``."""
        last = self._last.get(bidder_id)
        return last is None or nonce > last

    def record(self, bidder_id: str, nonce: int) -> None:
        """Mark ``nonce`` used; raises :class:`InvalidBidParameters` if it is not fresh."""
        if not self.is_fresh(bidder_id, nonce):
            last = self.last(bidder_id)
            raise InvalidBidParameters(
                "nonce", nonce, f"not above {bidder_id!r}'s last accepted nonce {last}"
            )
        self._last[bidder_id] = nonce

    def release(self, bidder_id: str, nonce: int, previous: int | None) -> None:
        """Undo :meth:`record` of ``nonce`` (a commit withdrawn because it could not be
        stored): the bidder's last nonce goes back to ``previous``, unless a later
        commit has already moved it past ``nonce``."""
        if self._last.get(bidder_id) != nonce:
            return
        if previous is None:
            del self._last[bidder_id]
        else:
            self._last[bidder_id] = previous

    def restore(self, bidder_id: str, nonce: int) -> None:
        """Raise the bidder's last nonce to ``nonce`` if it is lower (rebuilding from a log)."""
        if type(nonce) is not int or nonce < 0:
            raise InvalidBidParameters("nonce", nonce, "must be an integer >= 0")
        last = self._last.get(bidder_id)
        if last is None or nonce > last:
            self._last[bidder_id] = nonce

    def items(self) -> Iterator[tuple[str, int]]:
        """``(bidder_id, last nonce)`` pairs, for persistence."""
        return iter(list(self._last.items()))

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, bidder_id: object) -> bool:
        return bidder_id in self._last

    def __repr__(self) -> str:
        return f"NonceRegistry({len(self._last)} bidders)"
