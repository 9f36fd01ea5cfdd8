"""Aggressive bidding: frequent small raises up to (almost) one's value."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar

import numpy as np

from .base import FloatArray, cumsum_rows
from .ladder import LadderStrategy

__all__ = ["AggressiveStrategy"]


class AggressiveStrategy(LadderStrategy):
    """The seed's aggressive filler: re-bids every ~10 ms in small 10–15 bps steps, low fees.

    Opens at ``open_bps`` (uniform in 10–15 bps) within ``interval_ms`` of the auction's
    start and raises by ``step_bps`` (uniform in 10–15 bps) every ``interval_ms`` (±10 %
    jitter), never below the accepted minimum, never above its value less a thin
    ``margin`` (2 %) nor above the accepted maximum. It bids for the whole order with a
    priority fee of ``fee_fraction`` (0–10 %) of the largest allowed fee. Abstains when
    even the capped bid would be below the accepted minimum. Best for liquid markets:
    by the end of the window it has shaded little.
    """

    name: ClassVar[str] = "aggressive"
    classifier: ClassVar[Mapping[str, bool]] = {
        "stochastic": True,
        "learns": False,
        "truthful": False,
        "uses_private_value": True,
        "rebids": True,
        "vectorised": True,
    }

    def __init__(
        self,
        interval_ms: float = 10.0,
        open_bps: tuple[float, float] = (10.0, 15.0),
        step_bps: tuple[float, float] = (10.0, 15.0),
        margin: float = 0.02,
        fee_fraction: tuple[float, float] = (0.0, 0.1),
    ) -> None:
        self.interval_ms = float(interval_ms)
        self.open_bps = (float(open_bps[0]), float(open_bps[1]))
        self.step_bps = (float(step_bps[0]), float(step_bps[1]))
        self.margin = float(margin)
        self.fee_fraction = (float(fee_fraction[0]), float(fee_fraction[1]))

    def _schedule(self, u: list[float], r: int) -> Iterator[tuple[float, float]]:
        o0, o1 = self.open_bps
        s0, s1 = self.step_bps
        interval = self.interval_ms
        t = interval * u[0]
        level = o0 + (o1 - o0) * u[r]
        yield t, level
        for k in range(1, r):
            t += interval * (0.9 + 0.2 * u[k])
            level += s0 + (s1 - s0) * u[r + k]
            yield t, level

    def _batch_schedule(self, u: FloatArray, r: int) -> tuple[FloatArray, FloatArray]:
        o0, o1 = self.open_bps
        s0, s1 = self.step_bps
        # Every column the later slots' way, then the first one's own: one pass over the
        # strided uniforms into a fresh array and in-place passes over it, rather than
        # temporaries copied into a slice (numpy walks a short-rowed strided 2-D array a
        # row at a time: ~1 ms a pass per 65,536 rows). x * y == y * x and x + y == y +
        # x bit for bit, so the scalar form's figures.
        gaps = np.multiply(u[:, :r], 0.2)
        gaps += 0.9
        gaps *= self.interval_ms
        np.multiply(u[:, 0], self.interval_ms, out=gaps[:, 0])
        steps = np.multiply(u[:, r : 2 * r], s1 - s0)
        steps += s0
        np.multiply(u[:, r], o1 - o0, out=steps[:, 0])
        steps[:, 0] += o0
        return cumsum_rows(gaps), cumsum_rows(steps)
