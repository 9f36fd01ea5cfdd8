"""``phantom-auction sweep``: one Monte Carlo per grid point, a table, Parquet and plots."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..._extras import require
from ..app import app, bad_value, err_console, interrupted, out_console
from ..output import OutputFormat, check_writable_dir, pandas_module, write_frame
from ..scenario import (
    ClusterOpt,
    ConfigFileOpt,
    LiquidityOpt,
    MechanismOpt,
    PhantomsOpt,
    RealOpt,
    Scenario,
    SchedulerOpt,
    TrendOpt,
    VolatilityOpt,
    WorkersOpt,
    build_simulator,
    cluster_client,
    field_section,
    parse_field_value,
    run_scenario,
    scenario_from_options,
    scenario_parameters,
)
from ..tables import compact

if TYPE_CHECKING:
    import pandas as pd


def _parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["num_phantom_bidders=0,5", "volatility=0.1,0.3"]`` -> ``{field: [values]}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            bad_value("--grid", spec, "expected FIELD=v1,v2,...")
        try:
            field_section(name)
        except KeyError as exc:
            bad_value("--grid", spec, str(exc.args[0]))
        if name in grid:
            bad_value("--grid", spec, f"{name} is swept twice")
        parsed: list[Any] = []
        for text in values.split(","):
            try:
                value = parse_field_value(name, text)
            except ValueError as exc:
                bad_value("--grid", spec, str(exc))
            if value in parsed:
                bad_value("--grid", spec, f"{text.strip()!r} is listed twice")
            parsed.append(value)
        grid[name] = parsed
    if not grid:
        bad_value("--grid", "", "give at least one --grid FIELD=v1,v2,...")
    return grid


def _sweep_on_cluster(
    client: Any,
    base: Scenario,
    scenarios: Sequence[Scenario],
    keep: Callable[[int, Any], None],
) -> None:
    """Every grid point's chunks queued on the cluster at once; ``keep`` each as it ends."""
    from ...simulation.distributed import sweep_on_cluster
    from ..progress import MonteCarloProgress  # rich.progress: only when running

    progress = MonteCarloProgress(err_console(), "sweep")
    with progress.running():
        completed = sweep_on_cluster(
            [build_simulator(s) for s in scenarios],
            float(base.baseline_price),
            float(base.baseline_quantity),
            client,
            progress=progress,
        )
        try:
            for index, results in completed:
                keep(index, results)
        finally:
            # Cancels the chunks not yet run (Ctrl-C, or an error in keep).
            close = getattr(completed, "close", None)
            if callable(close):
                close()


#: Per-auction columns a sweep summarises per grid point (mean, std, p05, p95).
SWEEP_COLUMNS = (
    "improvement_bps",
    "mev_capture_rate",
    "real_fill_fraction",
    "phantom_won",
    "price_discovery_efficiency",
    "bid_shading",
    "welfare",
    "clearing_price",
)


def _grid_point_row(point: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    import numpy as np

    row: dict[str, Any] = {k.rpartition(".")[2]: v for k, v in point.items()}
    row["num_auctions"] = len(frame)
    for column in SWEEP_COLUMNS:
        if column not in frame:
            continue
        values = np.asarray(frame[column], dtype=np.float64)
        values = values[np.isfinite(values)]
        empty = values.size == 0
        row[f"{column}_mean"] = float("nan") if empty else float(values.mean())
        row[f"{column}_std"] = float("nan") if empty else float(values.std())
        row[f"{column}_p05"] = float("nan") if empty else float(np.quantile(values, 0.05))
        row[f"{column}_p95"] = float("nan") if empty else float(np.quantile(values, 0.95))
    return row


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for name, values in grid.items():
        points = [{**p, name: v} for p in points for v in values]
    return points


def _sweep_display(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> Table:
    plural = "s" if len(rows) != 1 else ""
    table = Table(
        title=f"Sweep: {len(rows)} grid point{plural} (means)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    names = [f.rpartition(".")[2] for f in fields]
    shown = [
        ("improvement_bps_mean", "improvement bps"),
        ("mev_capture_rate_mean", "MEV capture"),
        ("real_fill_fraction_mean", "real fill"),
        ("phantom_won_mean", "phantom win"),
    ]
    for name in names:
        table.add_column(name, no_wrap=True)
    for _, title in shown:
        table.add_column(title, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            *(str(row[n]) for n in names),
            *(compact(row.get(key, float("nan")), 3) for key, _ in shown),
        )
    return table


@app.command()
def sweep(
    grid_specs: Annotated[
        list[str],
        typer.Option(
            "--grid",
            help="FIELD=v1,v2,... of SimulationConfig or MarketConditions; repeat to cross.",
        ),
    ],
    config_file: ConfigFileOpt = None,
    simulations: Annotated[
        int, typer.Option("--simulations", "-n", min=1, help="Monte Carlo auctions per point.")
    ] = 2_000,
    real: RealOpt = None,
    phantoms: PhantomsOpt = None,
    mechanism: MechanismOpt = None,
    volatility: VolatilityOpt = None,
    liquidity: LiquidityOpt = None,
    trend: TrendOpt = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", min=0, help="Seed shared by every grid point (common numbers)."),
    ] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    out: Annotated[
        Path, typer.Option("--out", help="Directory for sweep.parquet, plots and index.html.")
    ] = Path("reports/sweep"),
    plots: Annotated[
        bool, typer.Option("--plots/--no-plots", help="Plot each metric against the grid.")
    ] = True,
) -> None:
    """Run one Monte Carlo per grid point and plot each metric against the swept fields.

    Example: --grid num_phantom_bidders=0,5,10,20 --grid volatility=0.1,0.3,0.8
    """
    grid = _parse_grid(grid_specs)
    check_writable_dir("--out", out)
    base = scenario_from_options(
        config_file,
        simulations=simulations,
        real=real,
        phantoms=phantoms,
        mechanism=mechanism,
        volatility=volatility,
        liquidity=liquidity,
        trend=trend,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
    )
    pd = pandas_module()
    require("pyarrow", "reports")
    if plots:
        require("matplotlib", "reports")
    points = _grid_points(grid)
    scenarios = []
    for point in points:
        scenario = base
        for name, value in point.items():
            scenario = scenario.with_field(name, value, "--grid")
        # Every grid point is checked before the first one runs.
        build_simulator(scenario)
        scenarios.append(scenario)
    console = out_console()
    fields = list(grid)
    console.print(
        f"{len(points)} grid points × {simulations:,} auctions, "
        f"seed {base.simulation['seed']} at every point"
    )
    out.mkdir(parents=True, exist_ok=True)
    parquet = out / "sweep.parquet"
    finished: dict[int, dict[str, Any]] = {}

    def keep(index: int, results: Any) -> None:
        finished[index] = _grid_point_row(points[index], results.to_frame())
        # Rewritten after every point, so an interrupted sweep keeps what it finished.
        done = [finished[i] for i in sorted(finished)]
        write_frame(pd.DataFrame(done), parquet, OutputFormat.parquet)

    stopped = False
    try:
        with cluster_client(base) as client:
            if client is None:
                for index, (point, scenario) in enumerate(zip(points, scenarios, strict=True)):
                    step = f"[{index + 1}/{len(points)}]"
                    console.print(f"{step} " + ", ".join(f"{k}={v}" for k, v in point.items()))
                    from ..progress import MonteCarloProgress  # rich.progress: only when running

                    progress = MonteCarloProgress(err_console(), step)
                    with progress.running():
                        results = run_scenario(build_simulator(scenario), scenario, progress)
                    keep(index, results)
            else:
                _sweep_on_cluster(client, base, scenarios, keep)
    except KeyboardInterrupt:
        stopped = True
    rows = [finished[i] for i in sorted(finished)]
    if rows:
        console.print(_sweep_display(rows, fields))
        console.print(f"wrote {parquet}", soft_wrap=True)
        if plots:
            from ...report import write_sweep_report

            names = [f.rpartition(".")[2] for f in fields]
            page = write_sweep_report(
                out,
                pd.DataFrame(rows),
                names,
                parameters={**scenario_parameters(base), "grid": json.dumps(grid)},
            ).html
            console.print(f"report: {page}", soft_wrap=True)
    if stopped:
        interrupted(
            f"Interrupted: kept {len(rows)} of {len(points)} completed grid points"
            + (f" in {parquet}" if rows else "")
        )
