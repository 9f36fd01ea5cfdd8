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

import itertools
import math
from collections.abc import Sequence
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
    auction: VCGAuction,
    bidder_id: str,
    true_value: float | Sequence[float],
    *,
    mechanism: str = "vcg",
) -> bool:
    """True iff no candidate report beats reporting ``true_value`` for ``bidder_id``.

    The bidder's quantities and everyone else's bids stay as in ``auction``; only the
    reported values per unit vary. A stepped bidder (several bids with its id) has one
    true value per step (non-increasing; a single number means the same for every step):
    each step's report is varied over the candidates between its neighbours' true values,
    and the whole ladder is also moved to each candidate at once. A report beats the
    truth when its true utility is higher by more than :data:`TOLERANCE` times
    ``max(1, true value of its quantity)``. Raises :class:`InvalidBidParameters` if
    ``bidder_id`` has no bid in ``auction`` or the true values do not fit its steps.
    """
    name = canonical_mechanism(mechanism)
    ids, values, quantities = bid_arrays(auction.bids)
    mine = [j for j, owner in enumerate(ids) if owner == bidder_id]
    if not mine:
        raise InvalidBidParameters("bidder_id", bidder_id, "has no bid in this auction")
    if isinstance(true_value, int | float):
        check_scalar("true_value", true_value)
        truths = [float(true_value)] * len(mine)
    else:
        truths = [float(t) for t in true_value]
        for t in truths:
            check_scalar("true_value", t)
        if len(truths) != len(mine) or any(b > a for a, b in itertools.pairwise(truths)):
            raise InvalidBidParameters(
                "true_value", true_value, f"must be {len(mine)} non-increasing values, one per step"
            )
    owners = ids if len(set(ids)) < len(ids) else None
    where = np.array(mine)

    def true_utility(reports: Sequence[float]) -> float:
        values[where] = reports
        cleared = clear(
            values,
            quantities,
            supply=auction.supply,
            reserve=auction.reserve_price,
            mechanism=name,
            multi_unit=auction.enable_multi_unit,
            owners=owners,
        )
        x, paid = cleared.allocation[where], cleared.payment[where]
        return float(np.dot(truths, x) - paid.sum())

    truthful = true_utility(truths)
    stakes = float(np.dot(truths, quantities[where]))
    slack = TOLERANCE * max(1.0, stakes, abs(truthful))
    others = np.delete(values, where)
    candidates = candidate_reports(others, auction.reserve_price, max(truths)).tolist()
    for k in range(len(mine)):
        high = truths[k - 1] if k > 0 else math.inf
        low = truths[k + 1] if k + 1 < len(mine) else 0.0
        for report in candidates:
            if low <= report <= high:
                lie = list(truths)
                lie[k] = report
                if true_utility(lie) > truthful + slack:
                    return False
    if len(mine) > 1:
        for report in candidates:
            if true_utility([report] * len(mine)) > truthful + slack:
                return False
    return True
