"""Calibrate phantoms for the user: the phantom model that gives the best price once
bidders respond to it.

:func:`optimize_phantoms` searches the phantom model (mean and sd of the phantom
improvements on a grid, then the number of slots and their bid probability) and the
phantom policy for the largest expected user improvement (bps over the baseline)
against real bidders playing the symmetric equilibrium *for that phantom model and
policy* (:mod:`.equilibrium`), not against fixed heuristics. Every candidate is one
Monte Carlo run with the same seed (common random numbers, so candidates are compared
on the same auctions); its mean improvement comes with a 95 % confidence interval
(1.96 standard errors of the mean; auctions are independent). The winner is then
re-run with a fresh seed beside three references, so that its figure carries no
winner's curse: no phantoms, the configuration's phantoms (today's default), and
Myerson's optimal fixed reserve (:func:`optimal_reserve`) with no phantoms.

This is not the seed's :func:`~.analysis.calibrate_parameters`, which *fits* the phantom
model to observed real bids (so that phantoms look like real bids); this one *chooses*
it for the user's price, given how bidders respond.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..engine.phantoms import PhantomModel
from ..errors import InvalidBidParameters
from .equilibrium import PHANTOM_POLICIES
from .market import MarketConditions
from .settings import SimulationConfig

__all__ = [
    "CandidateResult",
    "PhantomCalibration",
    "optimal_reserve",
    "optimize_phantoms",
    "phantom_toml",
]

FloatArray = NDArray[np.float64]

#: Default search grid: phantom improvement means and sds (bps), slots x probability.
DEFAULT_MEANS: tuple[float, ...] = (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0)
DEFAULT_SDS: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
DEFAULT_PRESENCE: tuple[tuple[int, float], ...] = ((1, 0.5), (1, 1.0), (3, 0.5), (20, 0.3))
#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054


def optimal_reserve(value_distribution: Any) -> float:
    """Myerson's (1981) optimal reserve for i.i.d. values from ``value_distribution``:
    the root of the virtual value ``ψ(r) = r - (1 - F(r)) / f(r)`` (bps; unique for a
    regular F). Any frozen scipy distribution with ``sf``, ``pdf`` and ``ppf``, or a
    tuple as :class:`~.settings.SimulationConfig` takes it: ``("uniform", low, high)``,
    ``("normal", mean, sd)`` or ``("lognormal", mu, sigma)`` (bps)."""
    from scipy.optimize import brentq

    from .market import value_distribution as parse_value_distribution

    dist = value_distribution
    needed = ("sf", "pdf", "ppf")
    if not all(hasattr(dist, a) for a in needed):
        # The one conversion SimulationConfig and BiddingGame use (a tuple had no .ppf).
        dist = parse_value_distribution(value_distribution)
    if not all(hasattr(dist, a) for a in needed):
        raise InvalidBidParameters(
            "value_distribution",
            value_distribution,
            "must have sf, pdf and ppf (a frozen scipy distribution) or be "
            '("uniform" | "normal" | "lognormal", a, b)',
        )

    def psi(v: float) -> float:
        return float(v - dist.sf(v) / max(float(dist.pdf(v)), 1e-300))

    lo, hi = float(dist.ppf(1e-6)), float(dist.ppf(1.0 - 1e-6))
    if psi(lo) >= 0.0:
        return lo
    if psi(hi) <= 0.0:
        raise InvalidBidParameters(
            "value_distribution", value_distribution, "has no root of ψ in its support"
        )
    return float(brentq(psi, lo, hi, xtol=1e-9))


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """One phantom model (``None``: no phantoms) under one policy and reserve: the
    user's mean improvement (bps) with its standard error and 95 % CI; ``improvements``:
    the per-auction improvements (bps), for paired comparisons on the same auctions."""

    label: str
    policy: str
    model: PhantomModel | None
    reserve_bps: float | None
    mean_bps: float
    se_bps: float
    phantom_win_rate: float
    auctions: int
    improvements: FloatArray = field(repr=False, compare=False)

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.mean_bps - Z95 * self.se_bps, self.mean_bps + Z95 * self.se_bps)

    def paired_difference(self, other: CandidateResult) -> tuple[float, float]:
        """Mean and standard error (bps) of ``self - other`` auction by auction: both
        ran on the same auctions (same seed and size: the market draws are common), so
        the shared noise cancels and the difference is far more precise than either."""
        if other.auctions != self.auctions:
            raise InvalidBidParameters("other", other.label, "ran on different auctions")
        diff = self.improvements - other.improvements
        n = diff.size
        return float(diff.mean()), (float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf)

    def as_row(self, reference: CandidateResult | None = None) -> dict[str, Any]:
        """The result as a flat row; with ``reference``, also the paired difference to
        it (``vs_reference_bps`` and its 95 % CI)."""
        low, high = self.ci95
        model = self.model
        paired: dict[str, Any] = {}
        if reference is not None:
            d, se = self.paired_difference(reference)
            paired = {
                "vs_reference_bps": d,
                "vs_reference_ci95_low": d - Z95 * se,
                "vs_reference_ci95_high": d + Z95 * se,
            }
        return {
            "label": self.label,
            "policy": self.policy,
            "reserve_bps": self.reserve_bps,
            "phantom_slots": 0 if model is None else model.max_phantom_bidders,
            "bid_probability": None if model is None else model.bid_probability,
            "phantom_mean_bps": None if model is None else model.mean_bps,
            "phantom_sd_bps": None if model is None else model.sd_bps,
            "improvement_bps": self.mean_bps,
            "ci95_low": low,
            "ci95_high": high,
            "phantom_win_rate": self.phantom_win_rate,
            "auctions": self.auctions,
            **paired,
        }


@dataclass(frozen=True, slots=True)
class PhantomCalibration:
    """What :func:`optimize_phantoms` found.

    ``winners``: per policy, the best finalist (``num_simulations`` auctions, search
    seed); ``best``: the best of them; ``comparison``: the winners and the references
    re-run on fresh auctions (no phantoms, the configured phantoms under each policy,
    Myerson's reserve, the calibrated models); ``surfaces``: per policy, the
    improvement (and its standard error, ``search_simulations`` auctions a cell) over
    the grid of phantom means (rows) x sds (columns) at that policy's winning presence;
    ``gains``: the same cells' paired difference to no phantoms on the same auctions
    (mean and standard error, bps; ``surface_reference_bps``: no phantoms' mean there);
    ``candidates``: every run of the search (grid, refinements, finalists).
    """

    best: CandidateResult
    winners: dict[str, CandidateResult]
    comparison: tuple[CandidateResult, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]
    surfaces: dict[str, tuple[FloatArray, FloatArray]]
    gains: dict[str, tuple[FloatArray, FloatArray]]
    surface_reference_bps: float
    candidates: tuple[CandidateResult, ...]
    myerson_reserve_bps: float
    search_simulations: int
    config: SimulationConfig = field(repr=False)

    @property
    def recommended(self) -> CandidateResult:
        """The best of the re-run calibrated models and "no phantoms" (fresh auctions):
        what to configure. Myerson's reserve and today's phantoms are references only."""
        choices = [
            c for c in self.comparison if c.label.startswith("calibrated") or c.model is None
        ]
        choices = [c for c in choices if c.reserve_bps is None]
        return max(choices, key=lambda c: c.mean_bps)

    def table(self) -> list[dict[str, Any]]:
        """The comparison as rows (for printing or a DataFrame), each with its paired
        difference to the first row ("no phantoms", on the same fresh auctions)."""
        reference = self.comparison[0]
        return [c.as_row(reference) for c in self.comparison]


def _config_for(
    config: SimulationConfig,
    model: PhantomModel | None,
    policy: str,
    reserve_bps: float | None,
    seed: int,
) -> SimulationConfig:
    """``config`` with this phantom model, policy and reserve, equilibrium bidders."""
    base = config.auction_config
    if base is None:
        from ..config import load_config

        base = load_config()
    pa_updates: dict[str, Any] = {}
    if "phantom_policy" in type(base.phantom_auction).model_fields:
        pa_updates["phantom_policy"] = policy
    elif policy != "reserve":
        raise InvalidBidParameters(
            "policy", policy, "this build has only the 'reserve' phantom policy"
        )
    auction_config = base.model_copy(
        update={"phantom_auction": base.phantom_auction.model_copy(update=pa_updates)}
    )
    changes: dict[str, Any] = {
        "num_phantom_bidders": 0 if model is None else model.max_phantom_bidders,
        "phantom_model": model,
        "real_strategy": "equilibrium",
        "seed": seed,
        "auction_config": auction_config,
    }
    if reserve_bps is not None:
        changes["reserve_bps"] = reserve_bps
    return replace(config, **changes)


def _evaluate(
    label: str,
    config: SimulationConfig,
    market: MarketConditions,
    model: PhantomModel | None,
    policy: str,
    reserve_bps: float | None,
    seed: int,
    baseline: tuple[float, float],
    workers: int | None,
) -> CandidateResult:
    from .parallel import run_monte_carlo
    from .simulator import PhantomSimulator

    sim = PhantomSimulator(_config_for(config, model, policy, reserve_bps, seed), market)
    columns = run_monte_carlo(sim, *baseline, workers=workers, keep_rows=True).columns
    improvement = np.asarray(columns["improvement_bps"], dtype=np.float64)
    n = improvement.size
    return CandidateResult(
        label=label,
        policy=policy,
        model=model,
        reserve_bps=reserve_bps,
        mean_bps=float(improvement.mean()),
        se_bps=float(improvement.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf,
        phantom_win_rate=float(np.mean(columns["phantom_won"])),
        auctions=n,
        improvements=improvement,
    )


def _model(
    template: PhantomModel, slots: int, probability: float, mean: float, sd: float
) -> PhantomModel:
    return replace(
        template,
        max_phantom_bidders=slots,
        bid_probability=probability,
        mean_bps=mean,
        sd_bps=sd,
    )


def _refined(grid: tuple[float, ...], best: float, geometric: bool) -> list[float]:
    """The midpoints between ``best`` and its neighbours on ``grid`` (arithmetic, or
    geometric for sds), new points only."""
    ordered = sorted(set(grid))
    i = ordered.index(best)
    out = []
    for j in (i - 1, i + 1):
        if 0 <= j < len(ordered):
            a, b = ordered[j], best
            out.append(round(math.sqrt(a * b), 2) if geometric else (a + b) / 2.0)
    return [x for x in out if x not in ordered]


def _finite_grid(name: str, values: Sequence[float]) -> tuple[float, ...]:
    """``values`` as a non-empty tuple of finite floats (bps), or the error naming ``name``."""
    if isinstance(values, str):
        raise InvalidBidParameters(name, values, "must be a sequence of numbers (bps)")
    out: list[float] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidBidParameters(name, value, "must be a number (bps)")
        if not math.isfinite(value):
            raise InvalidBidParameters(name, value, "must be a finite number (bps)")
        out.append(float(value))
    if not out:
        raise InvalidBidParameters(name, tuple(values), "must not be empty")
    return tuple(out)


def _checked_presence(presence: Sequence[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """``presence`` as ``(slots, bid_probability)`` pairs: slots an integer in
    [1, MAX_BIDDERS], the probability in (0, 1]; or the error naming ``presence``."""
    from .settings import MAX_BIDDERS

    pairs = tuple(presence)
    if not pairs:
        raise InvalidBidParameters("presence", pairs, "must not be empty")
    for pair in pairs:
        try:
            slots, probability = pair
        except (TypeError, ValueError):
            raise InvalidBidParameters(
                "presence", pair, "each item must be (slots, bid_probability)"
            ) from None
        if (
            isinstance(slots, bool)
            or not isinstance(slots, numbers.Integral)
            or not 1 <= slots <= MAX_BIDDERS
        ):
            raise InvalidBidParameters(
                "presence", pair, f"slots must be an integer in [1, {MAX_BIDDERS:,}]"
            )
        if (
            isinstance(probability, bool)
            or not isinstance(probability, numbers.Real)
            or not 0.0 < probability <= 1.0
        ):
            raise InvalidBidParameters("presence", pair, "bid_probability must be in (0, 1]")
    return pairs


def optimize_phantoms(
    config: SimulationConfig,
    market: MarketConditions | None = None,
    *,
    policy: str | Sequence[str] = PHANTOM_POLICIES,
    objective: str = "user_improvement",
    means: Sequence[float] = DEFAULT_MEANS,
    sds: Sequence[float] = DEFAULT_SDS,
    presence: Sequence[tuple[int, float]] = DEFAULT_PRESENCE,
    search_simulations: int | None = None,
    finalists: int = 3,
    refine: bool = True,
    baseline_price: float = 100.0,
    baseline_quantity: float = 1000.0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_candidate: Callable[[CandidateResult, int], None] | None = None,
) -> PhantomCalibration:
    """The phantom model and policy with the largest expected user improvement.

    ``config`` fixes the auctions (real bidders, mechanism, values or market mode,
    ``num_simulations`` for the finalists and the comparison, ``seed``; its phantom
    settings are the "today's default" reference); real bidders always play the
    equilibrium. The search, in three stages on the same auctions (``seed``):

    1. *grid*: for each policy and each ``(slots, bid_probability)`` in ``presence``,
       every ``mean x sd``, ``search_simulations`` auctions each (default
       ``min(num_simulations, 5_000)``);
    2. *refine* (``refine=True``): around each policy's best, the midpoints to its
       neighbouring means and (geometric) sds, and their combinations;
    3. *finalists*: each policy's ``finalists`` best re-run with ``num_simulations``
       auctions; the best of them is that policy's winner.

    Then the winners and the references are re-run with ``seed + 1`` (fresh auctions,
    so the figures carry no winner's curse). The phantom bounds are the configuration's
    (``min_bps``/``max_bps``). ``on_candidate(result, seed)`` is told each candidate run
    as it finishes (a caller interrupted mid-search keeps those).
    """
    if objective != "user_improvement":
        raise InvalidBidParameters("objective", objective, "only 'user_improvement' is offered")
    policies = (policy,) if isinstance(policy, str) else tuple(policy)
    if not policies:
        raise InvalidBidParameters(
            "policy", policy, f"give at least one of {', '.join(PHANTOM_POLICIES)}"
        )
    for p in policies:
        if p not in PHANTOM_POLICIES:
            raise InvalidBidParameters("policy", p, f"must be one of {', '.join(PHANTOM_POLICIES)}")
    if len(set(policies)) != len(policies):
        raise InvalidBidParameters("policy", policy, "lists a policy twice")
    if config.seed is None:
        raise InvalidBidParameters("seed", None, "give a seed: candidates share their auctions")
    mean_grid = _finite_grid("means", means)
    sd_grid = _finite_grid("sds", sds)
    if any(s <= 0.0 for s in sd_grid):
        raise InvalidBidParameters("sds", sd_grid, "must all be > 0 bps")
    presence = _checked_presence(presence)
    if isinstance(finalists, bool) or not isinstance(finalists, int) or finalists < 1:
        raise InvalidBidParameters("finalists", finalists, "must be an integer >= 1")
    search_n = (
        min(config.num_simulations, 5_000) if search_simulations is None else search_simulations
    )
    if isinstance(search_n, bool) or not isinstance(search_n, int) or search_n < 2:
        raise InvalidBidParameters("search_simulations", search_n, "must be an integer >= 2")
    market = market if market is not None else MarketConditions()
    baseline = (baseline_price, baseline_quantity)
    template = config.resolved_phantom_model
    for mean in mean_grid:
        # A mean past a bound piles every phantom at that bound: the candidate would not
        # be the model its label names (and the search would try the same one twice).
        if not template.min_bps <= mean <= template.max_bps:
            raise InvalidBidParameters(
                "means",
                mean,
                f"must lie within the phantoms' bounds [{template.min_bps:g}, "
                f"{template.max_bps:g}] bps (phantom_auction.min_improvement_bps and "
                "max_improvement_bps)",
            )
    seed = int(config.seed)
    search_config = replace(config, num_simulations=search_n)
    refinements = 8 if refine and len(mean_grid) * len(sd_grid) > 1 else 0
    total = (
        len(policies) * (len(presence) * len(mean_grid) * len(sd_grid) + refinements + finalists)
        + len(policies)  # the calibrated models on fresh auctions
        + 3  # no phantoms (search and fresh auctions), Myerson's reserve
        + (len(policies) if config.num_phantom_bidders else 0)  # today's phantoms
    )
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, total), total)

    def run(
        label: str,
        model: PhantomModel | None,
        p: str,
        run_seed: int,
        run_config: SimulationConfig = config,
        reserve_bps: float | None = None,
    ) -> CandidateResult:
        result = _evaluate(
            label, run_config, market, model, p, reserve_bps, run_seed, baseline, workers
        )
        if on_candidate is not None:
            on_candidate(result, run_seed)
        tick()
        return result

    def label(slots: int, probability: float, mean: float, sd: float) -> str:
        return f"{slots} x {probability:g} @ N({mean:g}, {sd:g})"

    candidates: list[CandidateResult] = []
    grids: dict[tuple[str, int, float], tuple[FloatArray, ...]] = {}
    # No phantoms on the search's auctions: each cell's paired gain is against it.
    reference = run("no phantoms", None, "reserve", seed, search_config)
    winners: dict[str, CandidateResult] = {}
    for p in policies:
        searched: list[CandidateResult] = []
        for slots, probability in presence:
            values = np.zeros((len(mean_grid), len(sd_grid)))
            errors, gains, gain_errors = (np.zeros_like(values) for _ in range(3))
            for i, mean in enumerate(mean_grid):
                for j, sd in enumerate(sd_grid):
                    model = _model(template, int(slots), float(probability), mean, sd)
                    result = run(
                        label(int(slots), float(probability), mean, sd),
                        model,
                        p,
                        seed,
                        search_config,
                    )
                    searched.append(result)
                    values[i, j], errors[i, j] = result.mean_bps, result.se_bps
                    gains[i, j], gain_errors[i, j] = result.paired_difference(reference)
            grids[(p, int(slots), float(probability))] = (values, errors, gains, gain_errors)
        best = max(searched, key=lambda c: c.mean_bps)
        assert best.model is not None
        if refinements:
            m0, s0 = best.model.mean_bps, best.model.sd_bps
            near_means = [m0, *_refined(mean_grid, m0, geometric=False)]
            near_sds = [s0, *_refined(sd_grid, s0, geometric=True)]
            for mean in near_means:
                for sd in near_sds:
                    if (mean, sd) == (m0, s0):
                        continue
                    slots, probability = best.model.max_phantom_bidders, best.model.bid_probability
                    model = _model(template, slots, probability, mean, sd)
                    searched.append(
                        run(label(slots, probability, mean, sd), model, p, seed, search_config)
                    )
            done += refinements - (len(near_means) * len(near_sds) - 1)
        ranked = sorted(searched, key=lambda c: c.mean_bps, reverse=True)[:finalists]
        done += finalists - len(ranked)
        final = [run(c.label, c.model, p, seed) for c in ranked]
        winners[p] = max(final, key=lambda c: c.mean_bps)
        candidates.extend(searched)
        candidates.extend(final)
    best = max(winners.values(), key=lambda c: c.mean_bps)
    surfaces, surface_gains = {}, {}
    for p, winner in winners.items():
        assert winner.model is not None
        grid = grids[(p, winner.model.max_phantom_bidders, winner.model.bid_probability)]
        surfaces[p], surface_gains[p] = (grid[0], grid[1]), (grid[2], grid[3])
    fresh = seed + 1
    dist = config.distribution
    if dist is None:
        from .market import ValueModel

        dist = ValueModel.build(
            market, max(config.num_real_bidders, 1), baseline_quantity, None
        ).marginal
    myerson = optimal_reserve(dist)
    comparison = [run("no phantoms", None, "reserve", fresh)]
    if config.num_phantom_bidders:
        today = config.resolved_phantom_model
        for p in policies:
            comparison.append(
                run(
                    f"today's phantoms ({p}): "
                    + label(
                        today.max_phantom_bidders,
                        today.bid_probability,
                        today.mean_bps,
                        today.sd_bps,
                    ),
                    today,
                    p,
                    fresh,
                )
            )
    comparison.append(
        run(f"Myerson reserve {myerson:.2f} bps", None, "reserve", fresh, reserve_bps=myerson)
    )
    for p in policies:
        comparison.append(run(f"calibrated ({p}): {winners[p].label}", winners[p].model, p, fresh))
    if progress is not None:
        progress(total, total)
    return PhantomCalibration(
        best=best,
        winners=winners,
        comparison=tuple(comparison),
        means=mean_grid,
        sds=sd_grid,
        surfaces=surfaces,
        gains=surface_gains,
        surface_reference_bps=reference.mean_bps,
        candidates=tuple(candidates),
        myerson_reserve_bps=myerson,
        search_simulations=search_n,
        config=config,
    )


def phantom_toml(model: PhantomModel | None, policy: str) -> str:
    """The ``[phantom_auction]`` keys that select ``model`` and ``policy`` (TOML), for
    the live engine, and in a comment the ``simulate`` command that runs the same
    phantoms: the simulator draws them from its own ``num_phantom_bidders`` slots (15
    by default), not from ``max_phantom_bidders``. ``None``: no phantoms."""
    if model is None:
        return (
            "[phantom_auction]\nmax_phantom_bidders = 0\n"
            "# In the simulator: phantom-auction simulate --phantoms 0\n"
        )
    keys = {
        "phantom_policy": policy,
        "max_phantom_bidders": model.max_phantom_bidders,
        "bid_probability": model.bid_probability,
        "phantom_improvement_mean_bps": model.mean_bps,
        "phantom_improvement_sd_bps": model.sd_bps,
    }
    table = "".join(
        f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v!r}\n" for k, v in keys.items()
    )
    variables = " ".join(
        f"AUCTION_PHANTOM_AUCTION_{k.upper()}={v}"
        for k, v in keys.items()
        if k != "max_phantom_bidders"
    )
    return (
        "[phantom_auction]\n"
        + table
        + "# In the simulator, whose phantom slots are its own num_phantom_bidders:\n"
        + f"# {variables} phantom-auction simulate --phantoms {model.max_phantom_bidders}\n"
    )
