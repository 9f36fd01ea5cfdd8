"""Parameter sweeps: one Monte Carlo per grid point, one table row per point.

:func:`sweep` is the Python face of ``phantom-auction sweep`` (the command calls it),
so the two give the same table on the same seed. Every grid point runs with the same
seed (common random numbers: differences between points are not seed noise).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._extras import require
from ..errors import InvalidBidParameters
from .analysis import analyze_results
from .market import MarketConditions
from .parallel import ProgressCallback, run_monte_carlo
from .results import SWEEP_METRICS, MonteCarloResults
from .settings import SimulationConfig
from .simulator import PhantomSimulator

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["grid_point_row", "grid_points", "sweep", "sweep_field"]

#: The statistics a sweep keeps per metric (``<metric>_<statistic>`` columns).
SWEEP_STATISTICS = ("mean", "ci95_low", "ci95_high", "std", "p05", "p95")


def _field_names(cls: type[Any]) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init}


def sweep_field(name: str) -> tuple[str, str]:
    """``("simulation" | "market", field)`` for a grid key, optionally prefixed
    ``simulation.`` or ``market.``; raises :class:`InvalidBidParameters` if unknown."""
    prefix, _, bare = name.rpartition(".")
    sim, market = _field_names(SimulationConfig), _field_names(MarketConditions)
    if prefix in ("", "simulation") and bare in sim:
        return "simulation", bare
    if prefix in ("", "market") and bare in market:
        return "market", bare
    raise InvalidBidParameters(
        "grid",
        name,
        f"unknown field; SimulationConfig fields: {sorted(sim)}; "
        f"MarketConditions fields: {sorted(market)}",
    )


def grid_points(grid: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last field varying fastest.

    Raises :class:`InvalidBidParameters` on an unknown field, a field named twice (bare
    and prefixed), or values that are not a list (any iterable but a string)."""
    seen: dict[tuple[str, str], str] = {}
    for name in grid:
        where = sweep_field(name)
        first = seen.setdefault(where, name)
        if first != name:
            # Both would set it in every point, the last winning, and label its column.
            raise InvalidBidParameters(
                "grid",
                [first, name],
                f"{first!r} and {name!r} are the same field, {'.'.join(where)}: name it once",
            )
    points: list[dict[str, Any]] = [{}]
    for name, given in grid.items():
        # A string would sweep its characters, a number fail inside list().
        if isinstance(given, str | bytes) or not isinstance(given, Iterable):
            raise InvalidBidParameters(
                f"grid[{name!r}]", given, f"must be a list of values, e.g. [{given!r}]"
            )
        values = list(given)
        if not values:
            raise InvalidBidParameters(f"grid[{name!r}]", values, "give at least one value")
        points = [{**p, name: v} for p in points for v in values]
    return points


def point_simulator(
    config: SimulationConfig,
    market: MarketConditions,
    point: Mapping[str, Any],
    strategies: Sequence[Any] | None = None,
) -> PhantomSimulator:
    """The simulator of one grid point (the base config and market with the point's values)."""
    changes: dict[str, dict[str, Any]] = {"simulation": {}, "market": {}}
    for name, value in point.items():
        section, key = sweep_field(name)
        changes[section][key] = value
    point_config = dataclasses.replace(config, **changes["simulation"])
    point_market = dataclasses.replace(market, **changes["market"])
    chosen = None if strategies is None else list(strategies)
    return PhantomSimulator(point_config, point_market, chosen)


def grid_point_row(point: Mapping[str, Any], results: MonteCarloResults) -> dict[str, Any]:
    """One table row: the point's fields (bare names), ``num_auctions``, then
    ``<metric>_<statistic>`` for each of :data:`~.results.SWEEP_METRICS` (the same
    statistics as :func:`analyze_results`: ddof 1, 95 % CI of the mean)."""
    analysis = analyze_results(results)
    row: dict[str, Any] = {k.rpartition(".")[2]: v for k, v in point.items()}
    row["num_auctions"] = len(results)
    for metric in SWEEP_METRICS:
        stats = analysis.get(metric)
        if isinstance(stats, Mapping):
            for statistic in SWEEP_STATISTICS:
                row[f"{metric}_{statistic}"] = float(stats[statistic])
    return row


def _results_of(
    simulators: Sequence[PhantomSimulator],
    baseline_price: float,
    baseline_quantity: float,
    *,
    workers: int | None,
    client: Any,
    progress: ProgressCallback | None,
    on_start: Callable[[int], None] | None,
) -> Iterator[tuple[int, MonteCarloResults]]:
    """``(index, results)`` per grid point: in order locally; as they finish on a cluster."""
    if client is None:
        for index, simulator in enumerate(simulators):
            if on_start is not None:
                on_start(index)
            yield (
                index,
                run_monte_carlo(
                    simulator, baseline_price, baseline_quantity, workers=workers, progress=progress
                ),
            )
        return
    from .distributed import sweep_on_cluster

    if workers is not None:
        raise InvalidBidParameters("workers", workers, "give workers or client, not both")
    completed = sweep_on_cluster(
        simulators, baseline_price, baseline_quantity, client, progress=progress
    )
    try:
        yield from completed
    finally:
        # Cancels the chunks not yet run (Ctrl-C, or an error in the caller).
        close = getattr(completed, "close", None)
        if callable(close):
            close()


def sweep(
    config: SimulationConfig,
    market: MarketConditions | None = None,
    grid: Mapping[str, Iterable[Any]] | None = None,
    *,
    baseline_price: float = 100.0,
    baseline_quantity: float = 1000.0,
    strategies: Sequence[Any] | None = None,
    workers: int | None = None,
    client: Any = None,
    progress: ProgressCallback | None = None,
    on_point: Callable[[int, dict[str, Any]], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """One Monte Carlo of ``config.num_simulations`` auctions per point of ``grid``, at
    ``baseline_price`` (token B per token A) and ``baseline_quantity`` (token A).

    ``config`` is a :class:`SimulationConfig` (of a simulator: ``simulator.config``),
    ``market`` a :class:`MarketConditions`, or None for the defaults. ``grid`` maps
    their field names (optionally prefixed ``simulation.`` / ``market.``; each field
    named once) to a list of the values to try; several fields are crossed. Returns a
    pandas DataFrame (the ``reports`` extra) with one row per point in grid order: the
    swept fields, ``num_auctions``, and for each metric of
    :data:`~.results.SWEEP_METRICS` the columns ``<metric>_mean``, ``_ci95_low``,
    ``_ci95_high`` (95 % confidence interval of the mean, as :func:`analyze_results`),
    ``_std`` (ddof 1), ``_p05`` and ``_p95``.

    Runs in local processes (``workers``, default ``config.workers``) or on a Dask
    cluster (``client``, a ``distributed.Client``: every point's chunks are queued at
    once). Every point is checked before the first one runs. ``progress(done, total)``
    counts auctions within a local point, over the whole sweep on a cluster;
    ``on_point(index, row)`` is called as each point finishes (the command line writes
    its file there), ``on_start(index)`` before a local point starts.
    """
    # A simulator (or a swapped pair) failed inside dataclasses.replace, naming neither.
    if not isinstance(config, SimulationConfig):
        hint = (
            ": pass simulator.config (and simulator.market as market)"
            if isinstance(config, PhantomSimulator)
            else ""
        )
        raise TypeError(f"sweep: config={type(config).__name__} is not a SimulationConfig{hint}")
    if market is not None and not isinstance(market, MarketConditions):
        hint = ": pass simulator.market" if isinstance(market, PhantomSimulator) else ""
        raise TypeError(
            f"sweep: market={type(market).__name__} is not a MarketConditions or None{hint}"
        )
    pd_mod = require("pandas", "reports")
    if not grid:
        raise InvalidBidParameters("grid", grid, "give at least one field and its values")
    market = MarketConditions() if market is None else market
    points = grid_points(grid)
    simulators = [point_simulator(config, market, p, strategies) for p in points]
    rows: dict[int, dict[str, Any]] = {}
    for index, results in _results_of(
        simulators,
        baseline_price,
        baseline_quantity,
        workers=workers,
        client=client,
        progress=progress,
        on_start=on_start,
    ):
        rows[index] = grid_point_row(points[index], results)
        if on_point is not None:
            on_point(index, rows[index])
    frame: pd.DataFrame = pd_mod.DataFrame([rows[i] for i in sorted(rows)])
    return frame
