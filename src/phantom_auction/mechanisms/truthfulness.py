"""Does reporting one's true value pay best? A search over the reports that matter.

Utility is always measured with the TRUE value: ``true_value * x - p`` (SPEC). Under
every rule here a bidder's allocation and payment change only where its report crosses
another bid's value or the reserve, and between those breakpoints utility is linear
in the report, so the best report is at a breakpoint, just beside one, or at an end.
The candidates are therefore: each other bid's value and the reserve, each also just
above and just below (relative step :data:`STEP`), 0, ``true_value``, and a grid of
:data:`GRID_POINTS` reports from 0 to twice the largest value in play.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ..errors import InvalidBidParameters
from .clearing import FloatArray, canonical_mechanism, check_scalar, clear
from .vcg import VCGAuction, bid_arrays

__all__ = ["GRID_POINTS", "STEP", "TOLERANCE", "candidate_reports", "verify_truthfulness"]

STEP: Final = 1e-6
"""Relative distance of the 'just above / just below' reports (absolute near 0)."""
GRID_POINTS: Final = 65
TOLERANCE: Final = 1e-9
"""A lie must gain more than this, relative to the truthful stakes, to count."""


def candidate_reports(others: FloatArray, reserve: float, true_value: float) -> FloatArray:
    """The sorted, distinct, non-negative reports :func:`verify_truthfulness` tries."""
    points = np.concatenate((others, [reserve]))
    step = STEP * np.maximum(np.abs(points), 1.0)
    top = 2.0 * max(float(points.max()), true_value, 1.0)
    reports = np.concatenate(
        (
            points,
            points + step,
            points - step,
            [0.0, true_value],
            np.linspace(0.0, top, GRID_POINTS),
        )
    )
    return np.unique(reports[reports >= 0.0])


def verify_truthfulness(
    auction: VCGAuction, bidder_id: str, true_value: float, *, mechanism: str = "vcg"
) -> bool:
    """True iff no candidate report beats reporting ``true_value`` for ``bidder_id``.

    The bidder's quantity and everyone else's bids stay as in ``auction``; only the
    reported value per unit varies. A report beats the truth when its true utility is
    higher by more than :data:`TOLERANCE` times ``max(1, true_value * quantity)``.
    Raises :class:`InvalidBidParameters` if ``bidder_id`` has no bid in ``auction``.
    """
    check_scalar("true_value", true_value)
    name = canonical_mechanism(mechanism)
    ids, values, quantities = bid_arrays(auction.bids)
    try:
        i = ids.index(bidder_id)
    except ValueError:
        raise InvalidBidParameters("bidder_id", bidder_id, "has no bid in this auction") from None

    def true_utility(report: float) -> float:
        values[i] = report
        cleared = clear(
            values,
            quantities,
            supply=auction.supply,
            reserve=auction.reserve_price,
            mechanism=name,
            multi_unit=auction.enable_multi_unit,
        )
        return true_value * float(cleared.allocation[i]) - float(cleared.payment[i])

    truthful = true_utility(true_value)
    slack = TOLERANCE * max(1.0, true_value * float(quantities[i]), abs(truthful))
    others = np.delete(values, i)
    for report in candidate_reports(others, auction.reserve_price, true_value):
        if true_utility(float(report)) > truthful + slack:
            return False
    return True
