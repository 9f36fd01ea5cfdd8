"""Independent references for the mechanisms, written from the definitions only.

- :func:`brute_force_vcg`: enumerate every integer allocation (small n), take the one
  of highest welfare (seller keeping unsold units at the reserve), and charge each
  bidder the welfare its presence costs the others: ``p_i = max welfare of the others
  without i - welfare of the others in the chosen allocation``.
- :func:`lp_vcg`: the same for divisible supply, each optimum a linear program
  (``scipy.optimize.linprog``), re-solved without each bidder for its payment.

Neither shares code with ``phantom_auction.mechanisms``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog


@dataclass(frozen=True)
class Outcome:
    allocation: list[float]
    payment: list[float]
    welfare: float  # bidders' realised value, sum v_i x_i


def _best(
    values: Sequence[float],
    caps: Sequence[int],
    supply: int,
    reserve: float,
    skip: int | None = None,
) -> tuple[float, tuple[int, ...]]:
    """Highest total welfare (bidders + seller at ``reserve``) over integer allocations."""
    ranges = [range(1 if i == skip else cap + 1) for i, cap in enumerate(caps)]
    best, best_x = -math.inf, ()
    for x in itertools.product(*ranges):
        sold = sum(x)
        if sold > supply:
            continue
        welfare = sum(v * xi for v, xi in zip(values, x, strict=True)) + reserve * (supply - sold)
        if welfare > best + 1e-12:
            best, best_x = welfare, x
    return best, best_x


def brute_force_vcg(
    values: Sequence[float],
    quantities: Sequence[int],
    supply: int,
    reserve: float,
    *,
    unit_demand: bool = False,
) -> Outcome:
    """VCG by enumeration; needs a unique welfare optimum (distinct values, none at r)."""
    caps = [min(1, int(q)) if unit_demand else int(q) for q in quantities]
    total, x = _best(values, caps, supply, reserve)
    payments = []
    for i, v in enumerate(values):
        without_i, _ = _best(values, caps, supply, reserve, skip=i)
        others_with_i = total - v * x[i]
        payments.append(without_i - others_with_i)
    welfare = sum(v * xi for v, xi in zip(values, x, strict=True))
    return Outcome([float(xi) for xi in x], payments, welfare)


def _lp(
    values: np.ndarray, quantities: np.ndarray, supply: float, reserve: float
) -> tuple[float, np.ndarray]:
    """max r*S + Σ (v_i - r) x_i  s.t.  Σ x_i <= S, 0 <= x_i <= q_i."""
    if values.size == 0:
        return reserve * supply, values.copy()
    res = linprog(
        c=-(values - reserve),
        A_ub=np.ones((1, values.size)),
        b_ub=[supply],
        bounds=list(zip(np.zeros(values.size), quantities, strict=True)),
        method="highs",
    )
    assert res.status == 0, res.message
    return reserve * supply - float(res.fun), np.asarray(res.x)


def lp_vcg(values: np.ndarray, quantities: np.ndarray, supply: float, reserve: float) -> Outcome:
    """VCG for divisible supply, each welfare optimum solved as a linear program."""
    total, x = _lp(values, quantities, supply, reserve)
    payments = []
    for i in range(values.size):
        keep = np.arange(values.size) != i
        without_i, _ = _lp(values[keep], quantities[keep], supply, reserve)
        payments.append(without_i - (total - values[i] * x[i]))
    return Outcome(list(map(float, x)), payments, float(values @ x))
